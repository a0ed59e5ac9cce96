package jetstream_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// onlyReader hides every method but Read, so Put cannot seek or stat.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestImagesPutGetDelete(t *testing.T) {
	_, s := openStore(t, 0)
	ctx := ctxT(t)
	im, err := keeljs.OpenImages(ctx, s.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5<<20+12345) // several MiB, not a multiple of the chunk size
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)

	size, sum, err := im.Put(ctx, "img-1", onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("Put = size %d sha256 %s; want %d %x", size, sum, len(data), want)
	}
	r, err := im.Get(ctx, "img-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes that differ from the %d stored", len(got), len(data))
	}

	// Reopening the bucket (another replica, a restart) sees the object.
	im2, err := keeljs.OpenImages(ctx, s.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := im2.Get(ctx, "img-1"); err != nil {
		t.Fatalf("Get through a reopened bucket: %v", err)
	} else {
		r.Close()
	}

	if err := im.Delete(ctx, "never-stored"); err != nil {
		t.Fatalf("Delete of a missing object: %v; want nil", err)
	}
	if err := im.Delete(ctx, "img-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := im.Delete(ctx, "img-1"); err != nil {
		t.Fatalf("second Delete: %v; want nil", err)
	}
	if r, err := im.Get(ctx, "img-1"); err == nil {
		r.Close()
		t.Fatal("Get after Delete succeeded")
	}
}

func TestKVCreateUpdateDelete(t *testing.T) {
	_, s := openStore(t, 0)
	ctx := ctxT(t)
	kv, err := keeljs.OpenKV(ctx, s.JS, keeljs.NamesBucket, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := kv.Get(ctx, "k"); err != nil || v != nil {
		t.Fatalf("Get of a missing key = %q, %v; want nil, nil", v, err)
	}
	if e, err := kv.GetEntry(ctx, "k"); err != nil || e != nil {
		t.Fatalf("GetEntry of a missing key = %+v, %v; want nil, nil", e, err)
	}
	if err := kv.Create(ctx, "k", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Create(ctx, "k", []byte("two")); !errors.Is(err, keeljs.ErrKeyExists) {
		t.Fatalf("second Create: %v; want ErrKeyExists", err)
	}
	e, err := kv.GetEntry(ctx, "k")
	if err != nil || e == nil || string(e.Value) != "one" || e.Revision == 0 || e.Created.IsZero() {
		t.Fatalf("GetEntry = %+v, %v; want value one", e, err)
	}
	if err := kv.Update(ctx, "k", []byte("three"), e.Revision); err != nil {
		t.Fatalf("Update at the current revision: %v", err)
	}
	if err := kv.Update(ctx, "k", []byte("four"), e.Revision); !errors.Is(err, keeljs.ErrKeyExists) {
		t.Fatalf("Update at a stale revision: %v; want ErrKeyExists", err)
	}
	if v, err := kv.Get(ctx, "k"); err != nil || string(v) != "three" {
		t.Fatalf("Get = %q, %v; want three", v, err)
	}
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v; want nil", err)
	}
	if v, err := kv.Get(ctx, "k"); err != nil || v != nil {
		t.Fatalf("Get after Delete = %q, %v; want nil, nil", v, err)
	}
	// A deleted key can be created again (a freed name is reusable).
	if err := kv.Create(ctx, "k", []byte("five")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if err := kv.Put(ctx, "k", []byte("six")); err != nil {
		t.Fatal(err)
	}
	if v, _ := kv.Get(ctx, "k"); string(v) != "six" {
		t.Fatalf("Get after Put = %q", v)
	}
}

// A taken key is given once: of two takers the second gets nothing, as
// does a taker of a key never set.
func TestKVTakeGivesOnce(t *testing.T) {
	_, s := openStore(t, 0)
	ctx := ctxT(t)
	kv, err := keeljs.OpenKV(ctx, s.JS, keeljs.ConsoleTokensBucket, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Create(ctx, "tok", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := kv.Take(ctx, "tok"); err != nil || string(v) != "v" {
		t.Fatalf("first take: %q, %v", v, err)
	}
	if v, err := kv.Take(ctx, "tok"); err != nil || v != nil {
		t.Fatalf("second take: %q, %v; want nothing", v, err)
	}
	if v, err := kv.Take(ctx, "never"); err != nil || v != nil {
		t.Fatalf("take of a key never set: %q, %v", v, err)
	}
}
