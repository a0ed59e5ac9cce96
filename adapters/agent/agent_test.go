package agent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
)

// The agent needs nothing but the host link: a server scheduled on one of
// its hosts is spawned there (the work reaches that host only) and
// reported running, and a stop is carried out.
func TestAgentActsOnItsHostsWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := newRig(t, ctx, nil, nil)
	app := r.app
	hosts, sims := fake.Fleet("mem", 2, fake.Knobs{}, 16, 16384, 100)
	defer run(t, ctx, &agent.Agent{Name: "mem", Link: r.link, Hosts: hosts, Log: slog.New(slog.DiscardHandler)})()

	m, flID, imID := seedCatalog(t, ctx, app)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: flID, ImageID: imID}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "mem-2", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)

	waitFor(t, app, sid, server.StatusActive)
	if got := sims[1].Servers()[sid]; got != "RUNNING" {
		t.Fatalf("host mem-2 holds server %s as %q, want RUNNING (host mem-1: %v)", sid, got, sims[0].Servers())
	}
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStop, m("stop"))
	must(t, err)
	waitFor(t, app, sid, server.StatusStopped)
	if got := sims[1].Servers()[sid]; got != "SHUTOFF" {
		t.Fatalf("after stop, host mem-2 holds server %s as %q, want SHUTOFF", sid, got)
	}
}

func waitFor(t *testing.T, app *commands.App, sid string, want server.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := app.Servers.LoadLatest(context.Background(), sid)
		must(t, err)
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s is %s (task %s), want %s", sid, st.Status, st.Task, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// What a host runs stays true in the control plane: the agent's sync finds
// a server stopped behind Keel's back and it is started again (an
// operation of its own, carried out by the agent as any start), a server
// not kept running stays stopped, one whose virtual machine is gone is in
// ERROR, and a guest Keel did not create is left alone.
func TestSyncRestoresTheDesiredState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newRig(t, ctx, nil, nil)
	app, log := r.app, r.log
	hosts, sims := fake.Fleet("sync", 1, fake.Knobs{}, 16, 16384, 100)
	ag := &agent.Agent{Name: "sync", Link: r.link, Hosts: hosts, Log: slog.New(slog.DiscardHandler)}
	must(t, ag.Register(ctx))
	defer run(t, ctx, ag)()
	m, flID, imID := seedCatalog(t, ctx, app)
	off := false
	build := func(name string, keep *bool) string {
		res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: name, FlavorID: flID, ImageID: imID, KeepRunning: keep}, m("create-"+name))
		must(t, err)
		sid := string(res.State.ID)
		_, err = app.Hosts.Handle(ctx, commands.HostID("sync-1"), host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, Operation: opID, At: time.Now()}, m("claim-"+name))
		must(t, err)
		_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "sync-1", Operation: opID, At: time.Now()}, m("schedule-"+name))
		must(t, err)
		waitFor(t, app, sid, server.StatusActive)
		return sid
	}
	kept, loose, gone := build("kept", nil), build("loose", &off), build("gone", nil)

	// Behind Keel's back: two servers stop, one disappears, a stranger runs.
	sims[0].Force(kept, "SHUTOFF")
	sims[0].Force(loose, "SHUTOFF")
	sims[0].Forget(gone)
	sims[0].Force("not-keels", "RUNNING")
	must(t, ag.Sync(ctx, hosts[0]))

	// The kept server is being started again, then runs: the host holds it
	// RUNNING and an operation says so.
	waitFor(t, app, kept, server.StatusActive)
	st, _, err := app.Servers.LoadLatest(ctx, kept)
	must(t, err)
	if sims[0].Servers()[kept] != "RUNNING" || st.Power != server.Running || st.Desired != server.WantRunning {
		t.Fatalf("kept server: host holds %q, state %+v", sims[0].Servers()[kept], st)
	}
	// The loose one stays stopped and wants to be.
	st, _, err = app.Servers.LoadLatest(ctx, loose)
	must(t, err)
	if st.Status != server.StatusStopped || st.Desired != server.WantStopped || sims[0].Servers()[loose] != "SHUTOFF" {
		t.Fatalf("server not kept running: host %q, state %+v", sims[0].Servers()[loose], st)
	}
	// The gone one is in ERROR and says why.
	st, _, err = app.Servers.LoadLatest(ctx, gone)
	must(t, err)
	if st.Status != server.StatusError || !strings.Contains(st.Reason, "disappeared from host sync-1") {
		t.Fatalf("lost server %+v", st)
	}
	// The stranger is recorded on the host, and untouched; a second sync
	// changes nothing more.
	hs, _, err := app.Hosts.LoadLatest(ctx, commands.HostID("sync-1"))
	must(t, err)
	if strings.Join(hs.UnknownGuests, ",") != "not-keels" {
		t.Fatalf("host records unknown guests %v", hs.UnknownGuests)
	}
	head, err := log.LastSequence(ctx)
	must(t, err)
	must(t, ag.Sync(ctx, hosts[0]))
	if again, _ := log.LastSequence(ctx); again != head {
		t.Fatalf("a sync with nothing new wrote %d commits", again-head)
	}
	if sims[0].Servers()["not-keels"] != "RUNNING" {
		t.Fatal("a guest Keel did not create was touched")
	}
	// Gone: the host says so.
	sims[0].Forget("not-keels")
	must(t, ag.Sync(ctx, hosts[0]))
	if hs, _, err = app.Hosts.LoadLatest(ctx, commands.HostID("sync-1")); err != nil || len(hs.UnknownGuests) != 0 {
		t.Fatalf("host still records unknown guests %v (%v)", hs.UnknownGuests, err)
	}
}

// A failure is reported twice over: the reason in the user's words, and the
// host's own account (paths, hypervisor messages) as the detail admins find
// in the server's events, made storable (one line, bounded).
func TestFailureReasonAndDetail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := newRig(t, ctx, nil, nil)
	app, log := r.app, r.log
	hosts, _ := fake.Fleet("bad", 1, fake.Knobs{FailRate: 1}, 16, 16384, 100)
	ag := &agent.Agent{Name: "bad", Link: r.link, Hosts: hosts, Log: slog.New(slog.DiscardHandler)}
	must(t, ag.Register(ctx))
	defer run(t, ctx, ag)()
	m, flID, imID := seedCatalog(t, ctx, app)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: flID, ImageID: imID}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "bad-1", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)
	for {
		envs, err := log.Load(ctx, server.AggregateType, sid, 0)
		must(t, err)
		for _, env := range envs {
			for _, raw := range env.Events {
				if raw.Type != server.TypeSpawnFailed {
					continue
				}
				var sf server.SpawnFailed
				must(t, json.Unmarshal(raw.Data, &sf))
				if sf.Reason != "injected failure on simulated host bad-1" || !strings.Contains(sf.Detail, "spawn "+sid+" on bad-1: injected failure") {
					t.Fatalf("reason %q, detail %q", sf.Reason, sf.Detail)
				}
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no spawn failure recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seedCatalog records a flavor and an uploaded image on app, as every test
// server needs, and returns the meta maker and their ids.
func seedCatalog(t *testing.T, ctx context.Context, app *commands.App) (func(string) commands.Meta, string, string) {
	t.Helper()
	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}} }
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, m("flavor"))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "debian", DiskFormat: "qcow2"}, m("image"))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, m("upload"))
	must(t, err)
	return m, string(fl.State.ID), string(im.State.ID)
}
