package sagas

import (
	"context"
	"fmt"
	"time"

	"github.com/keel-cloud/keel/domain/operation"
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
			// A step can run again after a rewind; its deadline keeps the ids apart.
			id := fmt.Sprintf("%s/expire/%d", st.Step, st.Deadline.UnixMicro())
			err := s.op(ctx, st.Operation, id, operation.ExpireStep{Step: st.Step, At: now})
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("expire step", "operation", st.Operation, "step", st.Step, "err", err)
			}
		}
	}
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
