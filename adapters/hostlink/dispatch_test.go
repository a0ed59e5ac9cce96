package hostlink_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// A dispatcher that reads the log from its start (a new one, after an
// upgrade) gives a host only the work still asked of it: not the build
// and the stop that ended long ago, but the reboot in progress.
func TestDispatcherGivesOnlyWorkStillAskedFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}} }
	hostID := commands.HostID("h-1")
	_, err := app.Hosts.Handle(ctx, hostID, host.Register{ID: hostID, Spec: host.Spec{Name: "h-1", Driver: "libvirt", VCPUs: 8, RAMMiB: 8192, DiskGiB: 100}, At: time.Now()}, m("register"))
	must(t, err)
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "f", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, m("flavor"))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "i", DiskFormat: "raw"}, m("image"))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, m("upload"))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	report := func(kind server.ReportKind, id string) {
		t.Helper()
		_, err := app.Servers.Handle(ctx, sid, server.Report{Host: "h-1", Kind: kind, At: time.Now()}, m(id))
		must(t, err)
	}
	_, err = app.Hosts.Handle(ctx, hostID, host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, Operation: opID, At: time.Now()}, m("claim"))
	must(t, err)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "h-1", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)
	report(server.ReportSpawned, "spawned")
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStop, m("stop"))
	must(t, err)
	report(server.ReportStopped, "stopped")
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStart, m("start"))
	must(t, err)
	report(server.ReportStarted, "started")
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionHardReboot, m("reboot"))
	must(t, err)

	e := jstest.Server(t, "")
	quiet := slog.New(slog.DiscardHandler)
	// The host has its credentials before the dispatcher starts, as a
	// host that ran before the upgrade.
	js, err := jetstream.New(e.Conn)
	must(t, err)
	keys, err := hostlink.OpenKeys(ctx, js, 1, nil, nil, quiet)
	must(t, err)
	creds, err := keys.Issue(ctx, "h-1")
	must(t, err)
	_, err = hostlink.StartLocal(ctx, e.Conn, nil, app, log, nil, nil, quiet)
	must(t, err)
	link, err := hostlink.NewClient(e.Conn, creds, "h-1", quiet)
	must(t, err)
	got := make(chan agent.Work, 8)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = link.Work(wctx, []string{"h-1"}, func(_ context.Context, w agent.Work) error { got <- w; return nil })
	}()
	select {
	case w := <-got:
		if w.Kind != agent.WorkReboot || !w.Hard || w.Server != sid {
			t.Fatalf("first work %+v; want the hard reboot in progress", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reboot in progress was not given")
	}
	select {
	case w := <-got:
		t.Fatalf("work that ended long ago was given again: %+v", w)
	case <-time.After(time.Second):
	}
}

// A host away for a while is not handed, when it comes back, the stop of
// an operation that ended meanwhile (here superseded by a delete): only
// the delete.
func TestWorkNoLongerAskedIsNotHandedOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}} }
	e := jstest.Server(t, "")
	quiet := slog.New(slog.DiscardHandler)
	js, err := jetstream.New(e.Conn)
	must(t, err)
	keys, err := hostlink.OpenKeys(ctx, js, 1, nil, nil, quiet)
	must(t, err)
	creds, err := keys.Issue(ctx, "h-1")
	must(t, err)
	_, err = hostlink.StartLocal(ctx, e.Conn, nil, app, log, nil, nil, quiet)
	must(t, err)
	hostID := commands.HostID("h-1")
	_, err = app.Hosts.Handle(ctx, hostID, host.Register{ID: hostID, Spec: host.Spec{Name: "h-1", Driver: "libvirt", VCPUs: 8, RAMMiB: 8192, DiskGiB: 100}, At: time.Now()}, m("register"))
	must(t, err)
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "f", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, m("flavor"))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "i", DiskFormat: "raw"}, m("image"))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, m("upload"))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Hosts.Handle(ctx, hostID, host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, Operation: opID, At: time.Now()}, m("claim"))
	must(t, err)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "h-1", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)
	_, err = app.Servers.Handle(ctx, sid, server.Report{Host: "h-1", Kind: server.ReportSpawned, At: time.Now()}, m("spawned"))
	must(t, err)
	st, err := js.Stream(ctx, hostlink.WorkStream)
	must(t, err)
	last := func() uint64 {
		si, err := st.Info(ctx)
		must(t, err)
		return si.State.LastSeq
	}
	time.Sleep(300 * time.Millisecond) // the spawn's piece, if any, is in
	before := last()
	// The host is away: the stop waits in the stream, handed out in vain.
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStop, m("stop"))
	must(t, err)
	for deadline := time.Now().Add(10 * time.Second); last() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stop never reached the work stream")
		}
	}
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionDelete, m("delete"))
	must(t, err)

	link, err := hostlink.NewClient(e.Conn, creds, "h-1", quiet)
	must(t, err)
	got := make(chan agent.Work, 8)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = link.Work(wctx, []string{"h-1"}, func(_ context.Context, w agent.Work) error { got <- w; return nil })
	}()
	select {
	case w := <-got:
		if w.Kind != agent.WorkDelete {
			t.Fatalf("first work handed %+v; want the delete", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delete was not handed out")
	}
	select {
	case w := <-got:
		t.Fatalf("more work handed: %+v", w)
	case <-time.After(time.Second):
	}
}
