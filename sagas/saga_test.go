package sagas_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
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
