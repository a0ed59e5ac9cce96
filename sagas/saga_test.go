package sagas_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
	"github.com/keel-cloud/keel/metrics"
	"github.com/keel-cloud/keel/sagas"
)

// noHosts is a read model that shows no host.
type noHosts struct{}

func (noHosts) Snapshot(context.Context) ([]scheduler.Host, error) { return nil, nil }

// The runner, subscribed to the in-memory log, carries a create with no
// host to its end (placement fails, the server fails, the operation ends
// failed and is counted), then a delete to success.
func TestServerSagaOnTheInMemoryLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	m := metrics.New()
	saga := &sagas.ServerSaga{App: app, Snapshot: noHosts{}, Timeouts: sagas.DefaultTimeouts, Metrics: m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, log) }()

	meta := commands.Meta{CommandID: "c1", Actor: domain.Actor{User: "test"}, CorrelationID: "op-create"}
	_, err := app.Servers.Create(ctx, "srv-1", server.Create{ID: "srv-1", Name: "web-1", ImageID: "img", Operation: "op-create",
		Flavor: server.Flavor{ID: "f", Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, At: time.Now().UTC()}, meta)
	if err != nil {
		t.Fatal(err)
	}
	create := waitEnded(ctx, t, app, "op-create")
	if create.Status != operation.Failed || !strings.Contains(create.Error, "no valid host") {
		t.Fatalf("create: %s %q", create.Status, create.Error)
	}
	if sv, _, _ := app.Servers.Load(ctx, "srv-1"); sv.Status != server.StatusError {
		t.Fatalf("server after a failed build: %s", sv.Status)
	}

	_, delOp, err := app.ActOnServer(ctx, "srv-1", commands.ActionDelete, commands.Meta{CommandID: "c2", Actor: domain.Actor{User: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if del := waitEnded(ctx, t, app, delOp); del.Status != operation.Succeeded {
		t.Fatalf("delete: %s %q", del.Status, del.Error)
	}
	if n := counted(t, m, "server.create", "failed"); n != 1 {
		t.Fatalf("failed creates counted: %v", n)
	}
	cancel()
	<-done
}

func waitEnded(ctx context.Context, t *testing.T, app *commands.App, opID string) operation.State {
	t.Helper()
	for ctx.Err() == nil {
		st, _, err := app.Operations.Load(ctx, opID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Terminal() {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("operation %s did not end", opID)
	return operation.State{}
}

// counted returns the saga operations counted with these labels.
func counted(t *testing.T, m *metrics.Set, kind, outcome string) float64 {
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetType().String() != "COUNTER" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// threeHosts is a read model that shows three empty hosts.
type threeHosts struct{}

func (threeHosts) Snapshot(context.Context) ([]scheduler.Host, error) {
	var out []scheduler.Host
	for _, name := range []string{"h1", "h2", "h3"} {
		out = append(out, scheduler.Host{Name: name, Enabled: true, Up: true, Limit: host.Resources{VCPUs: 8, RAMMiB: 16384, DiskGiB: 100}})
	}
	return out, nil
}

// A build whose spawn fails on every host, each host reporting the user's
// reason and its own account: the operation ends failed with the reason in
// the user's words, and keeps the last host's account beside it, on the
// operation and on its spawn step, for admins.
func TestFailedSpawnLeavesTheHostsAccountOnTheOperation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := memlog.New()
	app := commands.NewApp(log)
	for _, name := range []string{"h1", "h2", "h3"} {
		id := commands.HostID(name)
		_, err := app.Hosts.Handle(ctx, id, host.Register{ID: id, Spec: host.Spec{Name: name, Driver: "fake", VCPUs: 8, RAMMiB: 16384, DiskGiB: 100}, At: time.Now().UTC()},
			commands.Meta{CommandID: "register-" + name, Actor: domain.Actor{User: "test"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	saga := &sagas.ServerSaga{App: app, Snapshot: threeHosts{}, Timeouts: sagas.DefaultTimeouts,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, log) }()

	meta := commands.Meta{CommandID: "c1", Actor: domain.Actor{User: "test"}, CorrelationID: "op-create"}
	_, err := app.Servers.Create(ctx, "srv-1", server.Create{ID: "srv-1", Name: "web-1", ImageID: "img", Operation: "op-create",
		Flavor: server.Flavor{ID: "f", Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, At: time.Now().UTC()}, meta)
	if err != nil {
		t.Fatal(err)
	}
	const reason = "the hypervisor could not start the server"
	account := func(h string) string {
		return "virDomainCreateWithFlags: /var/lib/keel/" + h + "/srv-1/domain.xml: internal error: process exited while connecting to monitor"
	}
	var last string
	for attempt := range server.MaxBuildAttempts {
		// Wait until the server is spawning on a host and the operation at
		// its spawn step, then fail it there as the host's agent would.
		var sv server.State
		for sv.Task != server.Spawning || sv.Attempts != attempt {
			if ctx.Err() != nil {
				t.Fatalf("attempt %d: server never spawned (%s, %d attempts)", attempt+1, sv.Task, sv.Attempts)
			}
			time.Sleep(5 * time.Millisecond)
			sv, _, _ = app.Servers.Load(ctx, "srv-1")
		}
		for op, _, _ := app.Operations.Load(ctx, "op-create"); op.CurrentStep() != sagas.StepSpawn; op, _, _ = app.Operations.Load(ctx, "op-create") {
			if ctx.Err() != nil {
				t.Fatalf("attempt %d: operation never reached the spawn step", attempt+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		last = account(sv.Host)
		_, err := app.Servers.Handle(ctx, "srv-1", server.Report{Host: sv.Host, Kind: server.ReportSpawnFailed, Reason: reason, Detail: last, At: time.Now().UTC()},
			commands.Meta{CommandID: fmt.Sprintf("report-%d", attempt), Actor: domain.Actor{User: "agent:test"}, CorrelationID: "op-create"})
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt+1, err)
		}
	}
	op := waitEnded(ctx, t, app, "op-create")
	if op.Status != operation.Failed || !strings.HasPrefix(op.Error, "build failed on 3 hosts") || !strings.HasSuffix(op.Error, ": "+reason) {
		t.Fatalf("the user reads %s %q", op.Status, op.Error)
	}
	if strings.Contains(op.Error, "/var/lib/keel") || strings.Contains(op.Error, "virDomain") {
		t.Fatalf("the reason shows the host's internals: %q", op.Error)
	}
	if op.Detail != last {
		t.Fatalf("the operation's detail is %q, want the last host's account %q", op.Detail, last)
	}
	if spawn := op.Steps[1]; spawn.Name != sagas.StepSpawn || spawn.Status != operation.StepIsFailed || spawn.Detail != last {
		t.Fatalf("spawn step: %+v", spawn)
	}
	cancel()
	<-done
}

// The saga passes a host's report detail on to the operation as it is: the
// operation must accept every detail a report may carry.
func TestOperationTakesAnyReportDetail(t *testing.T) {
	if operation.MaxDetail < server.MaxReportDetail {
		t.Fatalf("operation.MaxDetail %d is below server.MaxReportDetail %d: a long report would make the operation refuse its failure",
			operation.MaxDetail, server.MaxReportDetail)
	}
}
