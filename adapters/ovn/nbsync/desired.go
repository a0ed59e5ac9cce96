package nbsync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// AggregateTypes are the aggregates whose state the NB reflects.
var AggregateTypes = []string{network.AggregateType, subnet.AggregateType, secgroup.AggregateType,
	port.AggregateType, router.AggregateType, floatingip.AggregateType}

// Model is the desired state: the live networking aggregates, folded from
// the log in order with their own deciders. A deleted aggregate is dropped
// (nothing follows a delete), so the model holds what exists. Its states
// are values that Evolve never changes in place, so a reader may keep one
// after the lock is gone.
type Model struct {
	mu       sync.RWMutex
	seq      uint64
	advanced chan struct{} // closed, and replaced, whenever seq moves
	networks map[string]network.State
	subnets  map[string]subnet.State
	groups   map[string]secgroup.State
	ports    map[string]port.State
	routers  map[string]router.State
	fips     map[string]floatingip.State
}

// NewModel returns an empty model, before sequence 1.
func NewModel() *Model {
	return &Model{advanced: make(chan struct{}), networks: map[string]network.State{}, subnets: map[string]subnet.State{},
		groups: map[string]secgroup.State{}, ports: map[string]port.State{}, routers: map[string]router.State{},
		fips: map[string]floatingip.State{}}
}

// Sequence is the last commit folded in (or skipped, for other aggregates).
func (m *Model) Sequence() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seq
}

// Apply folds a batch of commits of the log, in order. Commits of other
// aggregate types only move the sequence on. A commit it cannot decode
// stops it there, with the sequence before it.
func (m *Model) Apply(batch []domain.Envelope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.signal()
	for _, env := range batch {
		if env.Sequence <= m.seq {
			continue // already in
		}
		if err := m.fold(env); err != nil {
			return fmt.Errorf("nbsync: commit %d (%s %s): %w", env.Sequence, env.AggregateType, env.AggregateID, err)
		}
		m.seq = env.Sequence
	}
	return nil
}

func (m *Model) signal() {
	close(m.advanced)
	m.advanced = make(chan struct{})
}

func (m *Model) fold(env domain.Envelope) error {
	switch env.AggregateType {
	case network.AggregateType:
		return fold(m.networks, network.Decider, env, network.State.Live)
	case subnet.AggregateType:
		return fold(m.subnets, subnet.Decider, env, subnet.State.Live)
	case secgroup.AggregateType:
		return fold(m.groups, secgroup.Decider, env, secgroup.State.Live)
	case port.AggregateType:
		return fold(m.ports, port.Decider, env, port.State.Live)
	case router.AggregateType:
		return fold(m.routers, router.Decider, env, router.State.Live)
	case floatingip.AggregateType:
		return fold(m.fips, floatingip.Decider, env, floatingip.State.Live)
	}
	return nil
}

// fold applies one commit to the state of its aggregate in states, and
// keeps the state only while it is live.
func fold[S any, C any](states map[string]S, d domain.Decider[S, C], env domain.Envelope, live func(S) bool) error {
	events, err := d.Registry.DecodeAll(env.Events)
	if err != nil {
		return err
	}
	s, ok := states[env.AggregateID]
	if !ok {
		s = d.Initial(env.AggregateID)
	}
	if s = d.Fold(s, events); live(s) {
		states[env.AggregateID] = s
	} else {
		delete(states, env.AggregateID)
	}
	return nil
}

// WaitFor returns once the model has folded the commit at seq, or ctx's
// error.
func (m *Model) WaitFor(ctx context.Context, seq uint64) error {
	for {
		m.mu.RLock()
		at, advanced := m.seq, m.advanced
		m.mu.RUnlock()
		if at >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-advanced:
		}
	}
}

// Desired is the whole desired state, for ovn.Client.Reconcile, in id
// order. A router lists the ports of its interfaces and gateway that the
// model holds.
func (m *Model) Desired(o ovn.RouterOptions) ovn.Desired {
	m.mu.RLock()
	defer m.mu.RUnlock()
	d := ovn.Desired{Networks: sorted(m.networks), Subnets: sorted(m.subnets), SecurityGroups: sorted(m.groups),
		Ports: sorted(m.ports), FloatingIPs: sorted(m.fips)}
	for _, r := range sorted(m.routers) {
		d.Routers = append(d.Routers, ovn.DesiredRouter{Router: r, Ports: m.routerPorts(r), Options: o})
	}
	return d
}

func sorted[S any](states map[string]S) []S {
	out := make([]S, 0, len(states))
	for _, id := range slices.Sorted(maps.Keys(states)) {
		out = append(out, states[id])
	}
	return out
}

// Network is the live network id, if it is one.
func (m *Model) Network(id string) (network.State, bool) { return get(m, m.networks, id) }

// Subnet is the live subnet id, if it is one.
func (m *Model) Subnet(id string) (subnet.State, bool) { return get(m, m.subnets, id) }

// SecurityGroup is the live security group id, if it is one.
func (m *Model) SecurityGroup(id string) (secgroup.State, bool) { return get(m, m.groups, id) }

// Port is the live port id, if it is one.
func (m *Model) Port(id string) (port.State, bool) { return get(m, m.ports, id) }

// Router is the live router id, if it is one.
func (m *Model) Router(id string) (router.State, bool) { return get(m, m.routers, id) }

// FloatingIP is the live floating IP id, if it is one.
func (m *Model) FloatingIP(id string) (floatingip.State, bool) { return get(m, m.fips, id) }

func get[S any](m *Model, states map[string]S, id string) (S, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := states[id]
	return s, ok
}

// SubnetsOf are the live subnets of network n, in the order it lists them.
func (m *Model) SubnetsOf(n network.State) []subnet.State {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []subnet.State
	for _, id := range n.Subnets {
		if s, ok := m.subnets[id]; ok {
			out = append(out, s)
		}
	}
	return out
}

// RouterPorts are the live ports of r's interfaces and gateway.
func (m *Model) RouterPorts(r router.State) []port.State {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.routerPorts(r)
}

func (m *Model) routerPorts(r router.State) []port.State {
	var ids []string
	for _, i := range r.Interfaces {
		ids = append(ids, i.Port)
	}
	if r.Gateway != nil {
		ids = append(ids, r.Gateway.Port)
	}
	var out []port.State
	for _, id := range ids {
		if p, ok := m.ports[id]; ok {
			out = append(out, p)
		}
	}
	return out
}
