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

// AssociationFinder lists floating IPs associated, before a time, with a
// port the read model does not show.
type AssociationFinder interface {
	OrphanedAssociations(ctx context.Context, before time.Time, n int) ([]Association, error)
}

// FloatingIPSweep disassociates floating IPs from ports that are gone, as
// Neutron does when a port is deleted: a server's delete deletes its ports
// without asking which floating IPs point at them. The port is read from
// the log before anything is done (commands.DisassociatePortFloatingIPs),
// so a read model that is behind changes nothing. Command ids derive from
// the floating IP and the port, so replicas sweeping at once do each once.
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

// Pass disassociates the floating IPs seen pointing at a gone port and
// says how many it looked at; it returns the first error met.
func (s *FloatingIPSweep) Pass(ctx context.Context) (int, error) {
	found, err := s.Find.OrphanedAssociations(ctx, clock(s.Now).Add(-s.Grace), 200)
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
	return len(found), first
}
