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
	registerHost(t, ctx, app, "h-1")
	sid := schedule(t, ctx, app, "h-1", "vm", imageBytes{object: "o", size: 1, sha256: "ab"})
	report(t, ctx, app, sid, "h-1", server.ReportSpawned)
	_, _, err := app.ActOnServer(ctx, sid, commands.ActionStop, meta("stop"))
	must(t, err)
	report(t, ctx, app, sid, "h-1", server.ReportStopped)
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStart, meta("start"))
	must(t, err)
	report(t, ctx, app, sid, "h-1", server.ReportStarted)
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionHardReboot, meta("reboot"))
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
	link := hostlink.NewClient(e.Conn, creds, quiet)
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
	registerHost(t, ctx, app, "h-1")
	sid := schedule(t, ctx, app, "h-1", "vm", imageBytes{object: "o", size: 1, sha256: "ab"})
	report(t, ctx, app, sid, "h-1", server.ReportSpawned)
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
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionStop, meta("stop"))
	must(t, err)
	for deadline := time.Now().Add(10 * time.Second); last() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stop never reached the work stream")
		}
	}
	_, _, err = app.ActOnServer(ctx, sid, commands.ActionDelete, meta("delete"))
	must(t, err)

	link := hostlink.NewClient(e.Conn, creds, quiet)
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
