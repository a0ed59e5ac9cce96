package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// RouterPortFinder lists ports a router owns (an interface's or a
// gateway's), made before a time, that no router the read model shows
// lists.
type RouterPortFinder interface {
	OrphanedRouterPorts(ctx context.Context, before time.Time, n int) ([]string, error)
}

// RouterPortSweep deletes router ports no router lists: a crash between a
// leg's port create and the router's interface_added (or gateway_set)
// leaves one, holding an address (for an interface, its subnet's gateway,
// which no other router could take). Each is read from the log with its
// router before it is deleted (commands.DropOrphanedLegPort), and a late
// retry of the request that made it is refused rather than recording a
// leg on a deleted port. Command ids derive from the port, so replicas
// sweeping at once do each once.
type RouterPortSweep struct {
	App   *commands.App
	Find  RouterPortFinder
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (s *RouterPortSweep) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("router port sweep", "err", err)
		}
	})
}

// Pass deletes the orphaned router ports seen now and says how many; it
// returns the first error met (the rest of the pass is still done).
func (s *RouterPortSweep) Pass(ctx context.Context) (int, error) {
	found, err := s.Find.OrphanedRouterPorts(ctx, clock(s.Now).Add(-s.Grace), 200)
	if err != nil {
		return 0, fmt.Errorf("list router ports: %w", err)
	}
	var first error
	dropped := 0
	for _, id := range found {
		m := commands.Meta{CommandID: "router-port-sweep/" + id, Actor: domain.Actor{User: "saga"}}
		ok, err := s.App.DropOrphanedLegPort(ctx, id, m)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("delete a router port no router lists", "port", id, "err", err)
			first = cmpErr(first, err)
		}
		if ok {
			s.Log.Info("deleted a router port no router lists", "port", id)
			dropped++
		}
	}
	return dropped, first
}
