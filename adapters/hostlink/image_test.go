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
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
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
	link, err := hostlink.NewClient(e.Conn, creds, "t", quiet)
	must(t, err)
	must(t, link.Register(ctx, info("h-1")))
	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}} }
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "f", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, m("flavor"))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "i", DiskFormat: "raw"}, m("image"))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "obj-1", Size: int64(len(want)), SHA256: sum, At: time.Now()}, m("upload"))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Hosts.Handle(ctx, commands.HostID("h-1"), host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, Operation: opID, At: time.Now()}, m("claim"))
	must(t, err)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "h-1", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)

	r, err := link.Image(ctx, "h-1", "obj-1")
	must(t, err)
	got, err := io.ReadAll(r)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d of the image", len(got), len(want))
	}
}
