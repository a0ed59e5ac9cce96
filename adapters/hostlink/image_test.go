package hostlink_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// A host that builds a server reads the bytes of its image through the
// link, whole and unchanged, a chunk at a time (the image is several
// chunks long).
func TestHostReadsItsServersImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := jstest.Server(t, "")
	js, err := jetstream.New(e.Conn)
	must(t, err)
	images, err := keeljs.OpenImages(ctx, js, 1)
	must(t, err)
	want := make([]byte, 3<<20+12345)
	_, _ = rand.Read(want)
	_, sum, err := images.Put(ctx, "obj-1", bytes.NewReader(want))
	must(t, err)

	log := memlog.New()
	app := commands.NewApp(log)
	quiet := slog.New(slog.DiscardHandler)
	local, err := hostlink.StartLocal(ctx, e.Conn, nil, app, log, images, nil, quiet)
	must(t, err)
	creds, err := local.Keys.Issue(ctx, "h-1")
	must(t, err)
	link := hostlink.NewClient(e.Conn, creds, quiet)
	must(t, link.Register(ctx, info("h-1")))
	schedule(t, ctx, app, "h-1", "vm", imageBytes{object: "obj-1", size: int64(len(want)), sha256: sum})

	r, err := link.Image(ctx, "h-1", "obj-1")
	must(t, err)
	got, err := io.ReadAll(r)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d of the image", len(got), len(want))
	}
}
