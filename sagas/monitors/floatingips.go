package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// Association is a floating IP's association as the read model shows it.
type Association struct {
	FloatingIP string
	Port       string
}

// RouterFloatingIP is a floating IP a router lists, as the read model
// shows it, with the sequence of the commit that attached it.
type RouterFloatingIP struct {
	Router     string
	FloatingIP string
	Seq        int64
}

// AssociationFinder lists floating IPs associated, before a time, with a
// port the read model does not show, and floating IPs a router has listed
// since before a time that are not associated through it.
type AssociationFinder interface {
	OrphanedAssociations(ctx context.Context, before time.Time, n int) ([]Association, error)
	StaleRouterFloatingIPs(ctx context.Context, before time.Time, n int) ([]RouterFloatingIP, error)
}

// FloatingIPSweep disassociates floating IPs from ports that are gone, as
// Neutron does when a port is deleted: a server's delete deletes its ports
// without asking which floating IPs point at them. The port is read from
// the log before anything is done (commands.DisassociatePortFloatingIPs),
// so a read model that is behind changes nothing. Command ids derive from
// the floating IP and the port, so replicas sweeping at once do each once.
//
// It also makes routers let go of floating IPs they list that are not
// associated through them: an association cut short after the router's
// attach, or a disassociation (or delete) cut short before the router's
// detach, leaves one, and the router then refuses to clear its gateway or
// remove the interface for it. The floating IP is read from the log first
// (commands.ReleaseRouterFloatingIP); command ids derive from the router,
// the floating IP and the attach's commit.
type FloatingIPSweep struct {
	App   *commands.App
	Find  AssociationFinder
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (s *FloatingIPSweep) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("floating ip sweep", "err", err)
		}
	})
}

// Pass disassociates the floating IPs seen pointing at a gone port, and
// makes routers let go of floating IPs not associated through them; it
// says how many it looked at and returns the first error met.
func (s *FloatingIPSweep) Pass(ctx context.Context) (int, error) {
	before := clock(s.Now).Add(-s.Grace)
	found, err := s.Find.OrphanedAssociations(ctx, before, 200)
	if err != nil {
		return 0, fmt.Errorf("list floating ip associations: %w", err)
	}
	var first error
	for _, f := range found {
		m := commands.Meta{CommandID: "floating-ip-sweep/" + f.FloatingIP + "/" + f.Port, Actor: domain.Actor{User: "saga"}}
		if err := s.App.DisassociatePortFloatingIPs(ctx, f.Port, []string{f.FloatingIP}, m); err != nil && ctx.Err() == nil {
			s.Log.Warn("disassociate a floating ip from a deleted port", "floating_ip", f.FloatingIP, "port", f.Port, "err", err)
			first = cmpErr(first, err)
		}
	}
	stale, err := s.Find.StaleRouterFloatingIPs(ctx, before, 200)
	if err != nil {
		return len(found), cmpErr(first, fmt.Errorf("list router floating ips: %w", err))
	}
	for _, x := range stale {
		m := commands.Meta{CommandID: fmt.Sprintf("router-floating-ip-sweep/%s/%s/%d", x.Router, x.FloatingIP, x.Seq), Actor: domain.Actor{User: "saga"}}
		released, err := s.App.ReleaseRouterFloatingIP(ctx, x.Router, x.FloatingIP, m)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("make a router let go of a floating ip not associated through it", "router", x.Router, "floating_ip", x.FloatingIP, "err", err)
			first = cmpErr(first, err)
		}
		if released {
			s.Log.Info("a router let go of a floating ip not associated through it", "router", x.Router, "floating_ip", x.FloatingIP)
		}
	}
	return len(found) + len(stale), first
}
