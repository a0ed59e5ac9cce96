package monitors_test

import (
	"context"
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
	"github.com/keel-cloud/keel/sagas"
	"github.com/keel-cloud/keel/sagas/monitors"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cloud is the server saga on the in-memory log with hosts that have no
// agent: a spawn is never answered.
type cloud struct {
	log   *memlog.Log
	app   *commands.App
	hosts []string
}

func (c *cloud) Snapshot(context.Context) ([]scheduler.Host, error) {
	var out []scheduler.Host
	for _, name := range c.hosts {
		out = append(out, scheduler.Host{Name: name, Enabled: true, Up: true,
			Limit: host.Resources{VCPUs: 8, RAMMiB: 16384, DiskGiB: 100}})
	}
	return out, nil
}

func newCloud(ctx context.Context, t *testing.T, hosts ...string) *cloud {
	t.Helper()
	log := memlog.New()
	c := &cloud{log: log, app: commands.NewApp(log), hosts: hosts}
	for _, name := range hosts {
		id := commands.HostID(name)
		_, err := c.app.Hosts.Handle(ctx, id, host.Register{ID: id, Spec: host.Spec{Name: name, Driver: "fake", VCPUs: 8, RAMMiB: 16384, DiskGiB: 100}, At: time.Now().UTC()},
			commands.Meta{CommandID: "register-" + name, Actor: domain.Actor{User: "test"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	saga := &sagas.ServerSaga{App: c.app, Snapshot: c, Timeouts: sagas.DefaultTimeouts, Log: quiet}
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, log) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("saga: %v", err)
		}
	})
	return c
}

// create asks for a server and waits until it is spawning on a host and
// its operation is at the spawn step (the server is placed first, and the
// saga then moves the operation on).
func (c *cloud) create(ctx context.Context, t *testing.T, sid, opID string) server.State {
	t.Helper()
	meta := commands.Meta{CommandID: "create-" + sid, Actor: domain.Actor{User: "test"}, CorrelationID: opID}
	_, err := c.app.Servers.Create(ctx, sid, server.Create{ID: server.ID(sid), Name: sid, ImageID: "img", Operation: opID,
		Flavor: server.Flavor{ID: "f", Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, At: time.Now().UTC()}, meta)
	if err != nil {
		t.Fatal(err)
	}
	sv := c.waitServer(ctx, t, sid, func(sv server.State) bool { return sv.Task == server.Spawning && sv.Host != "" })
	for c.operation(ctx, t, opID).CurrentStep() != sagas.StepSpawn {
		if ctx.Err() != nil {
			t.Fatalf("operation %s never reached the spawn step", opID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sv
}

func (c *cloud) waitServer(ctx context.Context, t *testing.T, sid string, ok func(server.State) bool) server.State {
	t.Helper()
	for ctx.Err() == nil {
		sv, _, err := c.app.Servers.Load(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		if ok(sv) {
			return sv
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("server %s: condition not reached", sid)
	return server.State{}
}

func (c *cloud) operation(ctx context.Context, t *testing.T, opID string) operation.State {
	t.Helper()
	op, _, err := c.app.Operations.Load(ctx, opID)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// overdue is a read model that shows the given steps overdue and the given
// operations stalled.
type overdue struct {
	steps   []monitors.OverdueStep
	stalled []string
}

func (o overdue) Overdue(context.Context, time.Time, int) ([]monitors.OverdueStep, error) {
	return o.steps, nil
}

func (o overdue) StalledCompensations(context.Context, time.Time, int) ([]string, error) {
	return o.stalled, nil
}

// A spawn past its deadline counts as a spawn that failed on its host: the
// server is built on the other host, and the reason names the silent one.
func TestOverdueSpawnIsTriedOnAnotherHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newCloud(ctx, t, "h1", "h2")
	first := c.create(ctx, t, "srv-1", "op-1")
	op := c.operation(ctx, t, "op-1")
	deadline := op.Steps[op.Current].Deadline
	late := func() time.Time { return deadline.Add(time.Second) }
	d := &monitors.Deadlines{App: c.app, Find: overdue{steps: []monitors.OverdueStep{{Operation: "op-1", Step: sagas.StepSpawn, Deadline: deadline}}}, Log: quiet, Now: late}

	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	second := c.waitServer(ctx, t, "srv-1", func(sv server.State) bool { return sv.Task == server.Spawning && sv.Host != first.Host })
	if second.Attempts != 1 || len(second.FailedHosts) != 1 || second.FailedHosts[0] != first.Host {
		t.Fatalf("after the timeout: %d attempts, failed hosts %v", second.Attempts, second.FailedHosts)
	}
	commits, err := c.log.Load(ctx, server.AggregateType, "srv-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, env := range commits {
		said = said || strings.Contains(string(env.Raw), "host "+first.Host+" did not answer within 2m0s")
	}
	if !said {
		t.Fatal("no spawn failure names the silent host")
	}
	// A second pass over the same (now stale) view, before the new spawn's
	// own deadline, changes nothing.
	d.Now = nil
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if sv, _, _ := c.app.Servers.Load(ctx, "srv-1"); sv.Host != second.Host || sv.Task != server.Spawning {
		t.Fatalf("a stale overdue row moved the server: %s %s", sv.Host, sv.Task)
	}
}

// A step whose deadline has not passed by the operation's own clock is left
// alone, whatever the read model says.
func TestDeadlineNotPassedIsLeftAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newCloud(ctx, t, "h1")
	c.create(ctx, t, "srv-1", "op-1")
	op := c.operation(ctx, t, "op-1")
	early := func() time.Time { return op.Steps[op.Current].Deadline.Add(-time.Second) }
	d := &monitors.Deadlines{App: c.app, Find: overdue{steps: []monitors.OverdueStep{{Operation: "op-1", Step: sagas.StepSpawn, Deadline: op.Steps[op.Current].Deadline}}}, Log: quiet, Now: early}
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if after := c.operation(ctx, t, "op-1"); after.Status != operation.Running || after.CurrentStep() != sagas.StepSpawn {
		t.Fatalf("operation after an early pass: %s %s", after.Status, after.CurrentStep())
	}
}

// An operation whose compensation never finishes is ended as failed with a
// reason, so that none stays in progress forever.
func TestStalledCompensationIsEnded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newCloud(ctx, t, "h1")
	c.create(ctx, t, "srv-1", "op-1")
	d := &monitors.Deadlines{App: c.app, Find: overdue{stalled: []string{"op-1"}}, Log: quiet}
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	op := c.operation(ctx, t, "op-1")
	if op.Status != operation.Failed || !strings.Contains(op.Error, "compensation did not finish") {
		t.Fatalf("stalled operation: %s %q", op.Status, op.Error)
	}
}

// claims is a read model that shows the given claims as suspect.
type claims []monitors.Claim

func (c claims) SuspectClaims(context.Context, time.Time, int) ([]monitors.Claim, error) {
	return c, nil
}

// A claim whose server is on that host is kept, whatever the read model
// says; a claim that no server uses is released and its capacity returns.
func TestOrphanedClaimIsReleasedAndUsedOneKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newCloud(ctx, t, "h1")
	sv := c.create(ctx, t, "srv-1", "op-1")
	hid := commands.HostID("h1")
	m := commands.Meta{CommandID: "orphan-claim", Actor: domain.Actor{User: "test"}}
	if _, err := c.app.Hosts.Handle(ctx, hid, host.Claim{Server: "srv-gone", Resources: host.Resources{VCPUs: 2, RAMMiB: 1024, DiskGiB: 1}, Operation: "op-gone", At: time.Now().UTC()}, m); err != nil {
		t.Fatal(err)
	}
	o := &monitors.Orphans{App: c.app, Find: claims{{Host: sv.Host, ServerID: "srv-1"}, {Host: "h1", ServerID: "srv-gone"}}, Log: quiet}
	if err := o.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	h, _, err := c.app.Hosts.Load(ctx, hid)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Claims["srv-gone"]; ok {
		t.Fatal("the orphaned claim is still held")
	}
	if _, ok := h.Claims["srv-1"]; !ok {
		t.Fatal("the claim of a server spawning on the host was released")
	}
}
