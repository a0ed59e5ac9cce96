package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/subnet"
)

// Allocation is an address a subnet handed out, as the read model shows it.
type Allocation struct {
	Subnet string
	Key    string // the port id it was handed out to
	IP     string
	At     time.Time
}

// AllocationFinder lists addresses handed out before a time that no port
// the read model shows holds.
type AllocationFinder interface {
	SuspectAllocations(ctx context.Context, before time.Time, n int) ([]Allocation, error)
}

// AddressSweep gives back addresses no port or floating IP holds: a port
// (or floating IP) create cut short between the address allocation and its
// first commit, or a delete whose release was lost, leaves one behind. An
// allocation's key is a port id or a floating IP id; for each suspect older
// than Grace it abandons the id as both (port.Abandon, floatingip.Abandon:
// each refused if that resource exists, so a late retry of the create is
// refused instead of taking an address handed out again; abandoning an id
// that is the other kind's closes an id no create will ever use). Unless a
// live port or floating IP holds the address after all, it releases it.
// Command ids derive from the key and address, so replicas sweeping at
// once do each once. The quota reservation is the QuotaSweep's.
type AddressSweep struct {
	App   *commands.App
	Find  AllocationFinder
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (s *AddressSweep) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("address sweep", "err", err)
		}
	})
}

// Pass gives back the addresses seen held by no port now and says how
// many; it returns the first error met (the rest of the pass is still done).
func (s *AddressSweep) Pass(ctx context.Context) (int, error) {
	found, err := s.Find.SuspectAllocations(ctx, clock(s.Now).Add(-s.Grace), 200)
	if err != nil {
		return 0, fmt.Errorf("list suspect addresses: %w", err)
	}
	var first error
	released := 0
	for _, a := range found {
		ok, err := s.releaseIfUnheld(ctx, a)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("give back an address", "subnet", a.Subnet, "ip", a.IP, "port", a.Key, "err", err)
			first = cmpErr(first, err)
		}
		if ok {
			released++
		}
	}
	return released, first
}

func (s *AddressSweep) releaseIfUnheld(ctx context.Context, a Allocation) (bool, error) {
	m := commands.Meta{CommandID: "address-sweep/" + a.Key + "/abandon", Actor: domain.Actor{User: "saga"}}
	const reason = "its create was cut short before its first commit"
	_, err := s.App.Ports.Handle(ctx, a.Key, port.Abandon{Reason: reason, At: clock(s.Now)}, m)
	if held, err := s.heldAfterAll(ctx, a, err, func() (bool, error) {
		st, _, err := s.App.Ports.LoadLatest(ctx, a.Key)
		return st.Live() && slices.Contains(st.FixedIPs, port.FixedIP{Subnet: a.Subnet, IP: a.IP}), err
	}); held || err != nil {
		return false, err
	}
	m.CommandID = "address-sweep/" + a.Key + "/abandon-floating-ip"
	_, err = s.App.FloatingIPs.Handle(ctx, a.Key, floatingip.Abandon{Reason: reason, At: clock(s.Now)}, m)
	if held, err := s.heldAfterAll(ctx, a, err, func() (bool, error) {
		st, _, err := s.App.FloatingIPs.LoadLatest(ctx, a.Key)
		return st.Live() && st.Subnet == a.Subnet && st.IP == a.IP, err
	}); held || err != nil {
		return false, err
	}
	s.Log.Info("giving back an address no port or floating IP holds", "subnet", a.Subnet, "ip", a.IP, "key", a.Key)
	m.CommandID = "address-sweep/" + a.Key + "/" + a.IP + "/release"
	_, err = s.App.Subnets.HandleBatched(ctx, a.Subnet, subnet.Release{Key: a.Key, IP: a.IP, At: clock(s.Now)}, m)
	return err == nil, err
}

// heldAfterAll reads the answer to an Abandon: refused as existing, the
// resource may hold the address after all (the read model was behind).
func (s *AddressSweep) heldAfterAll(ctx context.Context, a Allocation, err error, holds func() (bool, error)) (bool, error) {
	if domain.KindOf(err) == domain.Conflict {
		return holds()
	}
	return false, err
}
