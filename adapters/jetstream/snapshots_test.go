package jetstream_test

import (
	"testing"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
)

// One contract for every SnapshotStore: the KV bucket and the in-memory twin.
func TestSnapshotStoreContract(t *testing.T) {
	_, s := openStore(t, 0)
	kv, err := keeljs.OpenSnapshots(ctxT(t), s.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]commands.SnapshotStore{"kv": kv, "memory": &commands.MemorySnapshots{}} {
		t.Run(name, func(t *testing.T) { snapshotContract(t, store) })
	}
	// Snapshots never touch the event subjects.
	if seq, err := s.LastSequence(ctxT(t)); err != nil || seq != 0 {
		t.Fatalf("KEEL_EVENTS holds %d messages after snapshots were written (%v)", seq, err)
	}
}

func snapshotContract(t *testing.T, s commands.SnapshotStore) {
	ctx := ctxT(t)
	if _, found, err := s.Get(ctx, "host", "none"); err != nil || found {
		t.Fatalf("Get of a missing snapshot: found=%v err=%v", found, err)
	}
	// Ids that are not valid KV key tokens are kept apart all the same.
	ids := []string{"h1", "6f1e0c43-5a7e-4b55-9d3e-2b8f4a1c7d10", "a.b", "a/b", "a b", "été", "=aDE", "aDE", "*", ">"}
	for i, id := range ids {
		if err := s.Put(ctx, "host", id, []byte{byte('0' + i)}); err != nil {
			t.Fatalf("Put %q: %v", id, err)
		}
	}
	if err := s.Put(ctx, "server", "h1", []byte("server")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "host", "h1", []byte("second")); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		want := string([]byte{byte('0' + i)})
		if id == "h1" {
			want = "second"
		}
		got, found, err := s.Get(ctx, "host", id)
		if err != nil || !found || string(got) != want {
			t.Errorf("Get %q = %q found=%v err=%v; want %q", id, got, found, err, want)
		}
	}
	if got, _, _ := s.Get(ctx, "server", "h1"); string(got) != "server" {
		t.Errorf("server h1 = %q: types must not share keys", got)
	}
}
