package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/server"
)

// Hold is a quota reservation as the read model shows it.
type Hold struct {
	Project string
	Key     string // the id of the server, port, network or security group
	Amounts map[string]int
	At      time.Time
	Kind    string // HoldServer, HoldPort, HoldNetwork, HoldSecurityGroup, HoldRouter or HoldFloatingIP
}

// What a hold is for, told by the quota it holds.
const (
	HoldServer        = "server"
	HoldPort          = "port"
	HoldNetwork       = "network"
	HoldSecurityGroup = "securitygroup"
	HoldRouter        = "router"
	HoldFloatingIP    = "floatingip"
)

// HoldFinder lists reservations made before a time whose server, port,
// network, security group, router or floating IP the read model does not
// show.
type HoldFinder interface {
	SuspectHolds(ctx context.Context, before time.Time, n int) ([]Hold, error)
}

// QuotaSweep gives back quota reservations whose resource never came to
// be: a process that died between a create's reservation and the first
// commit of the server (port, network, security group) leaves one behind.
// For each suspect older than Grace it first abandons the id (Abandon,
// refused if the resource exists, so a create that did commit keeps its
// reservation, and a late retry of the create is refused instead of making
// a resource that holds no quota), then releases the reservation. A port,
// network or group that was deleted while its release was lost has its
// reservation released too; a server's is the delete saga's. Both commands have ids derived from the key:
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
			q.Log.Warn("give back quota reservation", "project", h.Project, h.Kind, h.Key, "err", err)
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
	gone, err := q.abandon(ctx, h, m)
	if err != nil || !gone {
		return false, err
	}
	q.Log.Info("giving back a quota reservation whose "+h.Kind+" never came to be or is gone", "project", h.Project, h.Kind, h.Key, "amounts", h.Amounts)
	m.CommandID = "quota-sweep/" + h.Key + "/release"
	_, err = q.App.Projects.HandleBatched(ctx, h.Project, project.Release{Key: h.Key, Amounts: h.Amounts, At: clock(q.Now)}, m)
	if domain.KindOf(err) == domain.NotFound {
		return false, nil // the project is gone
	}
	return err == nil, err
}

// abandon closes the id of a hold's resource unless it exists; it reports
// whether the reservation is no one's (abandoned now or before, or the
// resource deleted).
func (q *QuotaSweep) abandon(ctx context.Context, h Hold, m commands.Meta) (bool, error) {
	const reason = "its create was cut short before its first commit"
	at := clock(q.Now)
	switch h.Kind {
	case HoldServer:
		return abandonID(ctx, q.App.Servers, h.Key, server.Command(server.Abandon{Reason: reason, At: at}), m, func(server.State) bool { return false })
	case HoldPort:
		return abandonID(ctx, q.App.Ports, h.Key, port.Command(port.Abandon{Reason: reason, At: at}), m, func(s port.State) bool { return s.Deleted })
	case HoldNetwork:
		return abandonID(ctx, q.App.Networks, h.Key, network.Command(network.Abandon{Reason: reason, At: at}), m, func(s network.State) bool { return s.Deleted })
	case HoldSecurityGroup:
		return abandonID(ctx, q.App.SecurityGroups, h.Key, secgroup.Command(secgroup.Abandon{Reason: reason, At: at}), m, func(s secgroup.State) bool { return s.Deleted })
	case HoldRouter:
		return abandonID(ctx, q.App.Routers, h.Key, router.Command(router.Abandon{Reason: reason, At: at}), m, func(s router.State) bool { return s.Deleted })
	case HoldFloatingIP:
		return abandonID(ctx, q.App.FloatingIPs, h.Key, floatingip.Command(floatingip.Abandon{Reason: reason, At: at}), m, func(s floatingip.State) bool { return s.Deleted })
	}
	return false, nil
}

// abandonID sends an Abandon to id; when the aggregate exists (a conflict)
// it reports whether it is deleted.
func abandonID[S, C any](ctx context.Context, h *commands.Handler[S, C], id string, cmd C, m commands.Meta, deleted func(S) bool) (bool, error) {
	_, err := h.Handle(ctx, id, cmd, m)
	if domain.KindOf(err) != domain.Conflict {
		return err == nil, err
	}
	st, _, err := h.LoadLatest(ctx, id)
	return err == nil && deleted(st), err
}
