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

// OverdueFinder lists overdue steps (from the read model).
type OverdueFinder interface {
	Overdue(ctx context.Context, now time.Time, limit int) ([]OverdueStep, error)
}

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
