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

// Interface work carries its NIC, and is asked only while the server's
// interface in progress has that port: the attach of an earlier
// operation, ended, is not given again when a later attach runs.
func TestInterfaceWorkIsAskedForItsPortOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	registerHost(t, ctx, app, "h-1")
	sid := schedule(t, ctx, app, "h-1", "vm", imageBytes{object: "o", size: 1, sha256: "ab"})
	report(t, ctx, app, sid, "h-1", server.ReportSpawned)
	nicA := server.NIC{Port: "9a000000-0000-4000-8000-00000000000a", Network: "net-1", MAC: "fa:16:3e:00:00:0a"}
	nicB := server.NIC{Port: "9b000000-0000-4000-8000-00000000000b", Network: "net-1", MAC: "fa:16:3e:00:00:0b"}
	attach := func(op string, nic server.NIC) {
		t.Helper()
		_, err := app.Servers.Handle(ctx, sid, server.AttachInterface{Operation: op, Network: "net-1", At: time.Now()}, meta(op))
		must(t, err)
		_, err = app.Servers.Handle(ctx, sid, server.SetInterfacePort{Operation: op, NIC: nic, At: time.Now()}, meta(op+"/port"))
		must(t, err)
	}
	attach("op-a", nicA)
	_, err := app.Servers.Handle(ctx, sid, server.Report{Host: "h-1", Kind: server.ReportInterfaceAttached, Port: nicA.Port, At: time.Now()}, meta("report-a"))
	must(t, err)
	attach("op-b", nicB)

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
	link := hostlink.NewClient(e.Conn, creds, quiet)
	got := make(chan agent.Work, 8)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = link.Work(wctx, []string{"h-1"}, func(_ context.Context, w agent.Work) error { got <- w; return nil })
	}()
	select {
	case w := <-got:
		if w.Kind != agent.WorkAttachNIC || w.Server != sid || w.NIC == nil || *w.NIC != (agent.NIC{PortID: nicB.Port, MAC: nicB.MAC}) {
			t.Fatalf("first work %+v (NIC %+v); want the attach of port B", w, w.NIC)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the attach in progress was not given")
	}
	select {
	case w := <-got:
		t.Fatalf("work that ended was given again: %+v (NIC %+v)", w, w.NIC)
	case <-time.After(time.Second):
	}
}
