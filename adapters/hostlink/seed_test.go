package hostlink_test

import (
	"context"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
)

func meta(id string) commands.Meta {
	return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}}
}

// registerHost records a libvirt host called name, as its agent would.
func registerHost(t *testing.T, ctx context.Context, app *commands.App, name string) {
	t.Helper()
	id := commands.HostID(name)
	_, err := app.Hosts.Handle(ctx, id, host.Register{ID: id, Spec: host.Spec{Name: name, Driver: "libvirt", VCPUs: 8, RAMMiB: 8192, DiskGiB: 100}, At: time.Now()}, meta("register-"+name))
	must(t, err)
}

// imageBytes is what a seeded image records of its upload.
type imageBytes struct {
	object, sha256 string
	size           int64
}

// schedule records server name (with a flavor and an uploaded image of
// its own) claimed on and scheduled to hostName, and returns its id.
func schedule(t *testing.T, ctx context.Context, app *commands.App, hostName, name string, b imageBytes) string {
	t.Helper()
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "f-" + name, VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, meta("flavor-"+name))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "i-" + name, DiskFormat: "raw"}, meta("image-"+name))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: b.object, Size: b.size, SHA256: b.sha256, At: time.Now()}, meta("upload-"+name))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: name, FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, meta("create-"+name))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Hosts.Handle(ctx, commands.HostID(hostName), host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, Operation: opID, At: time.Now()}, meta("claim-"+name))
	must(t, err)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: hostName, Operation: opID, At: time.Now()}, meta("schedule-"+name))
	must(t, err)
	return sid
}

// report records what hostName says became of server sid.
func report(t *testing.T, ctx context.Context, app *commands.App, sid, hostName string, kind server.ReportKind) {
	t.Helper()
	_, err := app.Servers.Handle(ctx, sid, server.Report{Host: hostName, Kind: kind, At: time.Now()}, meta("report-"+string(kind)+"-"+sid))
	must(t, err)
}
