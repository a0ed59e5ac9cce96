package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/servers"
)

// OverdueStep is a running step whose deadline has passed.
type OverdueStep struct {
	Operation string
	Step      string
	Deadline  time.Time
}

// OverdueFinder lists overdue steps and stalled compensations (from the
// read model).
type OverdueFinder interface {
	Overdue(ctx context.Context, now time.Time, limit int) ([]OverdueStep, error)
	StalledCompensations(ctx context.Context, before time.Time, limit int) ([]string, error)
}

// CompensationTimeout is how long an operation may stay compensating before
// it is ended as failed anyway, so that none stays in progress forever.
const CompensationTimeout = 2 * time.Minute

// Deadlines expires overdue steps and ends stalled compensations. The
// operation aggregate checks the deadline again, so a step that finished in
// the meantime is left alone, and several replicas may run one each.
type Deadlines struct {
	App  *commands.App
	Find OverdueFinder
	Log  *slog.Logger
	Now  func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (d *Deadlines) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if err := d.Pass(ctx); err != nil && ctx.Err() == nil {
			d.Log.Warn("deadlines", "err", err)
		}
	})
}

// Pass expires what is overdue now. It returns the first error met (the
// rest of the pass is still done).
func (d *Deadlines) Pass(ctx context.Context) error {
	now := clock(d.Now)
	steps, err := d.Find.Overdue(ctx, now, 500)
	if err != nil {
		return fmt.Errorf("list overdue steps: %w", err)
	}
	first := d.endStalled(ctx, now)
	for _, st := range steps {
		if err := d.expire(ctx, st, now); err != nil && ctx.Err() == nil {
			d.Log.Warn("expire step", "operation", st.Operation, "step", st.Step, "err", err)
			first = cmpErr(first, err)
		}
	}
	return first
}

// expire ends an overdue step. An overdue spawn counts as a spawn that
// failed on its host, so the build is tried on another host (up to
// server.MaxBuildAttempts) instead of failing at once; any other step
// fails and its operation compensates.
func (d *Deadlines) expire(ctx context.Context, st OverdueStep, now time.Time) error {
	if st.Step == servers.StepSpawn {
		handled, err := d.spawnTimedOut(ctx, st, now)
		if handled || err != nil {
			return err
		}
	}
	// A step can run again after a rewind; its deadline keeps the ids apart.
	id := fmt.Sprintf("%s/expire/%d", st.Step, st.Deadline.UnixMicro())
	_, err := d.App.Operations.Handle(ctx, st.Operation, operation.ExpireStep{Step: st.Step, At: now}, meta(st.Operation, id))
	return tolerate(err)
}

// spawnTimedOut reports the overdue spawn of a create as failed on its
// host, on the host's behalf. It reports false when the server is no longer
// spawning there (the step then simply expires).
func (d *Deadlines) spawnTimedOut(ctx context.Context, st OverdueStep, now time.Time) (bool, error) {
	op, _, err := d.App.Operations.Load(ctx, st.Operation)
	// The step's own deadline, not the read model's: after a rewind the
	// read model may still show the deadline of an earlier attempt.
	if err != nil || op.Kind != servers.KindCreate || op.CurrentStep() != servers.StepSpawn || now.Before(op.Steps[op.Current].Deadline) {
		return false, err
	}
	sv, _, err := d.App.Servers.Load(ctx, op.ResourceID)
	if err != nil || sv.Task != server.Spawning || sv.Host == "" || sv.Operation != st.Operation {
		return false, err
	}
	reason := fmt.Sprintf("host %s did not answer within %s", sv.Host, op.Steps[op.Current].Timeout)
	what := fmt.Sprintf("spawn/timeout/%d", op.Steps[op.Current].Deadline.UnixMicro())
	_, err = d.App.Servers.Handle(ctx, op.ResourceID, server.Report{Host: sv.Host, Kind: server.ReportSpawnFailed, Reason: reason, At: now}, meta(st.Operation, what))
	if tolerate(err) == nil && err != nil {
		return false, nil // the host answered meanwhile, or the server moved on
	}
	return err == nil, err
}

// endStalled ends operations whose compensation did not finish in time.
func (d *Deadlines) endStalled(ctx context.Context, now time.Time) error {
	ops, err := d.Find.StalledCompensations(ctx, now.Add(-CompensationTimeout), 100)
	if err != nil {
		return fmt.Errorf("list stalled compensations: %w", err)
	}
	var first error
	for _, op := range ops {
		reason := fmt.Sprintf("compensation did not finish within %s", CompensationTimeout)
		_, err := d.App.Operations.Handle(ctx, op, operation.Finish{Reason: reason, At: now}, meta(op, "finish/stalled"))
		if err = tolerate(err); err != nil && ctx.Err() == nil {
			d.Log.Warn("end stalled operation", "operation", op, "err", err)
			first = cmpErr(first, err)
		}
	}
	return first
}
