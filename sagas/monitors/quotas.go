package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/server"
)

// Hold is a quota reservation as the read model shows it.
type Hold struct {
	Project string
	Key     string // the server id
	Amounts map[string]int
	At      time.Time
}

// HoldFinder lists reservations made before a time whose server the read
// model does not show.
type HoldFinder interface {
	SuspectHolds(ctx context.Context, before time.Time, n int) ([]Hold, error)
}

// QuotaSweep gives back quota reservations whose server never came to be: a
// process that died between a create's reservation and the server's first
// commit leaves one behind. For each suspect older than Grace it first
// abandons the server id (server.Abandon, refused if the server exists, so
// a create that did commit keeps its reservation, and a late retry of the
// create is refused instead of making a server that holds no quota), then
// releases the reservation. Both commands have ids derived from the key:
// replicas sweeping at once, or a pass cut short, do each once.
type QuotaSweep struct {
	App   *commands.App
	Find  HoldFinder
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (q *QuotaSweep) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if _, err := q.Pass(ctx); err != nil && ctx.Err() == nil {
			q.Log.Warn("quota sweep", "err", err)
		}
	})
}

// Pass gives back the abandoned reservations seen now and says how many; it
// returns the first error met (the rest of the pass is still done).
func (q *QuotaSweep) Pass(ctx context.Context) (int, error) {
	holds, err := q.Find.SuspectHolds(ctx, clock(q.Now).Add(-q.Grace), 200)
	if err != nil {
		return 0, fmt.Errorf("list suspect quota holds: %w", err)
	}
	var first error
	released := 0
	for _, h := range holds {
		ok, err := q.releaseIfAbandoned(ctx, h)
		if err != nil && ctx.Err() == nil {
			q.Log.Warn("give back quota reservation", "project", h.Project, "server", h.Key, "err", err)
			first = cmpErr(first, err)
		}
		if ok {
			released++
		}
	}
	return released, first
}

func (q *QuotaSweep) releaseIfAbandoned(ctx context.Context, h Hold) (bool, error) {
	m := commands.Meta{CommandID: "quota-sweep/" + h.Key + "/abandon", Actor: domain.Actor{User: "saga"}}
	_, err := q.App.Servers.Handle(ctx, h.Key, server.Abandon{Reason: "its create was cut short before the server's first commit", At: clock(q.Now)}, m)
	if domain.KindOf(err) == domain.Conflict {
		return false, nil // the server exists: its reservation is its own
	}
	if err != nil {
		return false, err
	}
	q.Log.Info("giving back the quota reservation of a server that never came to be", "project", h.Project, "server", h.Key, "amounts", h.Amounts)
	m.CommandID = "quota-sweep/" + h.Key + "/release"
	_, err = q.App.Projects.HandleBatched(ctx, h.Project, project.Release{Key: h.Key, Amounts: h.Amounts, At: clock(q.Now)}, m)
	if domain.KindOf(err) == domain.NotFound {
		return false, nil // the project is gone
	}
	return err == nil, err
}
