package agent_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// The agent needs nothing but the event-log ports: on the in-memory log, a
// server scheduled on one of its hosts is spawned there and reported
// running, and a stop is carried out.
func TestAgentActsOnTheInMemoryLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	hosts, sims := fake.Fleet("mem", 2, fake.Knobs{}, 16, 16384, 100)
	ag := &agent.Agent{Name: "mem", App: app, Events: log, Hosts: hosts, Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("agent: %v", err)
		}
	}()

	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}} }
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}, m("flavor"))
	must(t, err)
	im, err := app.CreateImage(ctx, image.Spec{Name: "debian", DiskFormat: "qcow2"}, m("image"))
	must(t, err)
	_, err = app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, m("upload"))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, m("create"))
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
