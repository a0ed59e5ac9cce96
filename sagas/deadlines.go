package sagas

import (
	"context"
	"fmt"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
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

// WatchDeadlines expires overdue steps every interval until ctx ends. The
// operation aggregate checks the deadline again, so a step that finished in
// the meantime is left alone; several replicas may watch at once.
func (s *ServerSaga) WatchDeadlines(ctx context.Context, f OverdueFinder, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now().UTC()
		steps, err := f.Overdue(ctx, now, 500)
		if err != nil {
			s.Log.Warn("list overdue steps", "err", err)
			continue
		}
		s.endStalled(ctx, f, now)
		for _, st := range steps {
			if err := s.expire(ctx, st, now); err != nil && ctx.Err() == nil {
				s.Log.Warn("expire step", "operation", st.Operation, "step", st.Step, "err", err)
			}
		}
	}
}

// expire ends an overdue step. An overdue spawn counts as a spawn that
// failed on its host, so the build is tried on another host (up to
// server.MaxBuildAttempts) instead of failing at once; any other step
// fails and its operation compensates.
func (s *ServerSaga) expire(ctx context.Context, st OverdueStep, now time.Time) error {
	if st.Step == StepSpawn {
		handled, err := s.spawnTimedOut(ctx, st, now)
		if handled || err != nil {
			return err
		}
	}
	// A step can run again after a rewind; its deadline keeps the ids apart.
	id := fmt.Sprintf("%s/expire/%d", st.Step, st.Deadline.UnixMicro())
	return s.op(ctx, st.Operation, id, operation.ExpireStep{Step: st.Step, At: now})
}

// spawnTimedOut reports the overdue spawn of a create as failed on its
// host, on the host's behalf. It reports false when the server is no longer
// spawning there (the step then simply expires).
func (s *ServerSaga) spawnTimedOut(ctx context.Context, st OverdueStep, now time.Time) (bool, error) {
	op, _, err := s.App.Operations.Load(ctx, st.Operation)
	// The step's own deadline, not the read model's: after a rewind the
	// read model may still show the deadline of an earlier attempt.
	if err != nil || op.Kind != KindCreate || op.CurrentStep() != StepSpawn || now.Before(op.Steps[op.Current].Deadline) {
		return false, err
	}
	sv, _, err := s.App.Servers.Load(ctx, op.ResourceID)
	if err != nil || sv.Task != server.Spawning || sv.Host == "" || sv.Operation != st.Operation {
		return false, err
	}
	reason := fmt.Sprintf("host %s did not answer within %s", sv.Host, op.Steps[op.Current].Timeout)
	what := fmt.Sprintf("spawn/timeout/%d", op.Steps[op.Current].Deadline.UnixMicro())
	err = s.server(ctx, op.ResourceID, st.Operation, what, server.Report{Host: sv.Host, Kind: server.ReportSpawnFailed, Reason: reason, At: now})
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		return false, nil // the host answered meanwhile, or the server moved on
	}
	return err == nil, err
}

// endStalled ends operations whose compensation did not finish in time.
func (s *ServerSaga) endStalled(ctx context.Context, f OverdueFinder, now time.Time) {
	ops, err := f.StalledCompensations(ctx, now.Add(-CompensationTimeout), 100)
	if err != nil {
		s.Log.Warn("list stalled compensations", "err", err)
		return
	}
	for _, op := range ops {
		reason := fmt.Sprintf("compensation did not finish within %s", CompensationTimeout)
		if err := s.op(ctx, op, "finish/stalled", operation.Finish{Reason: reason, At: now}); err != nil && ctx.Err() == nil {
			s.Log.Warn("end stalled operation", "operation", op, "err", err)
		}
	}
}
