package ovn

import (
	"context"
	"errors"
	"fmt"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// Desired is everything Keel wants in the NB: the live resources. States
// that are not live count as not desired.
type Desired struct {
	Networks       []network.State
	Subnets        []subnet.State
	SecurityGroups []secgroup.State
	Ports          []port.State
	Routers        []DesiredRouter
	FloatingIPs    []floatingip.State
}

// DesiredRouter is a router with what EnsureRouter needs besides it.
type DesiredRouter struct {
	Router  router.State
	Ports   []port.State
	Options RouterOptions
}

// Kinds counted in a Report.
const (
	KindNetwork       = "network"
	KindSubnet        = "subnet"
	KindSecurityGroup = "security_group"
	KindPort          = "port"
	KindRouter        = "router"
	KindFloatingIP    = "floatingip"
)

// Report says what a Reconcile changed, by kind: resources whose rows it
// made or repaired, and resources no longer desired whose rows it deleted.
// Errors are per resource; one failing does not stop the others.
type Report struct {
	Repaired     map[string]int
	Deleted      map[string]int
	Transactions int64
	Errors       []error
}

// Changed reports whether the Reconcile wrote anything.
func (r Report) Changed() bool { return r.Transactions > 0 }

// Reconcile makes the NB match desired: it ensures every desired resource
// (one transaction per resource that needs a change, none when all is in
// place) and deletes the rows that carry Keel's ids for a resource not in
// desired. Rows without Keel's ids are never touched. It returns the
// resources' errors joined, and the report in any case.
func (c *Client) Reconcile(ctx context.Context, desired Desired) (Report, error) {
	rep := Report{Repaired: map[string]int{}, Deleted: map[string]int{}}
	start := c.Transactions()
	step := func(kind, what string, deleted bool, build func(*opList)) {
		var l opList
		build(&l)
		err := l.err
		if err == nil && len(l.ops) > 0 {
			err = c.transact(ctx, what, l.ops)
			if err == nil && deleted {
				rep.Deleted[kind]++
			} else if err == nil {
				rep.Repaired[kind]++
			}
		}
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("%s: %w", what, err))
		}
	}
	c.ensureAll(desired, step)
	c.deleteStrays(desired, step)
	rep.Transactions = c.Transactions() - start
	return rep, errors.Join(rep.Errors...)
}

// stepFunc runs one resource's operations as one transaction.
type stepFunc func(kind, what string, deleted bool, build func(*opList))

// ensureAll ensures the desired resources, in dependency order.
func (c *Client) ensureAll(d Desired, step stepFunc) {
	for _, n := range d.Networks {
		if n.Live() {
			step(KindNetwork, "network "+string(n.ID), false, func(l *opList) { c.reconcileNetworkOps(l, n) })
		}
	}
	mtu := map[string]int{}
	for _, n := range d.Networks {
		mtu[string(n.ID)] = n.MTU
	}
	for _, s := range d.Subnets {
		if s.Live() {
			step(KindSubnet, "subnet "+string(s.ID), false, func(l *opList) { c.subnetOps(l, s, mtu[s.Network]) })
		}
	}
	for _, g := range d.SecurityGroups {
		if g.Live() {
			step(KindSecurityGroup, "security group "+string(g.ID), false, func(l *opList) { c.groupOps(l, g) })
		}
	}
	for _, p := range d.Ports {
		if p.Live() {
			step(KindPort, "port "+string(p.ID), false, func(l *opList) { c.portOps(l, p) })
		}
	}
	for _, r := range d.Routers {
		if r.Router.Live() {
			step(KindRouter, "router "+string(r.Router.ID), false, func(l *opList) { c.routerOps(l, r.Router, r.Ports, r.Options) })
		}
	}
	for _, f := range d.FloatingIPs {
		step(KindFloatingIP, "floating ip "+string(f.ID), false, func(l *opList) { c.fipOps(l, f) })
	}
}

func (c *Client) reconcileNetworkOps(l *opList, n network.State) {
	ops, err := c.networkOps(n, nil)
	if err != nil {
		l.fail(err)
		return
	}
	l.add(ops.ops, nil)
}

// liveIDs are the ids of the live states among items.
func liveIDs[T any](items []T, id func(T) (string, bool)) map[string]bool {
	ids := map[string]bool{}
	for _, it := range items {
		if s, live := id(it); live {
			ids[s] = true
		}
	}
	return ids
}

// strays returns the distinct values of external_ids[key] on rows of T
// that are not in want.
func strays[T any](c *Client, key string, ids func(*T) map[string]string, want map[string]bool) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	_, err := list(c, func(row *T) bool {
		if id := ids(row)[key]; id != "" && !want[id] && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
		return false
	})
	return out, err
}

// deleteStrays deletes Keel's rows of resources not desired, dependents
// first.
func (c *Client) deleteStrays(d Desired, step stepFunc) {
	fips := liveIDs(d.FloatingIPs, func(f floatingip.State) (string, bool) { return string(f.ID), f.Live() })
	eachStray(c, step, KindFloatingIP, KeyFloatingIP, natIDs, fips, func(l *opList, id string) {
		c.fipOps(l, floatingip.State{ID: floatingip.ID(id)})
	})
	routers := liveIDs(d.Routers, func(r DesiredRouter) (string, bool) { return string(r.Router.ID), r.Router.Live() })
	eachStray(c, step, KindRouter, KeyRouter, routerIDs, routers, func(l *opList, id string) {
		if lr, err := c.findRouter(id); err != nil || lr == nil {
			l.fail(err)
		} else {
			l.add(c.nb.Where(lr).Delete())
		}
	})
	ports := liveIDs(d.Ports, func(p port.State) (string, bool) { return string(p.ID), p.Live() })
	for _, r := range d.Routers {
		for _, p := range r.Ports {
			ports[string(p.ID)] = true
		}
	}
	eachStray(c, step, KindPort, KeyPort, lspIDs, ports, func(l *opList, id string) { c.deleteLSPOps(l, id) })
	groups := liveIDs(d.SecurityGroups, func(g secgroup.State) (string, bool) { return string(g.ID), g.Live() })
	eachStray(c, step, KindSecurityGroup, KeySecGroup, pgIDs, groups, func(l *opList, id string) {
		if pg, err := c.findPortGroup(PortGroupName(id)); err != nil || pg == nil {
			l.fail(err)
		} else {
			l.add(c.nb.Where(pg).Delete())
		}
	})
	subnets := liveIDs(d.Subnets, func(s subnet.State) (string, bool) { return string(s.ID), s.Live() && s.DHCP })
	eachStray(c, step, KindSubnet, KeySubnet, dhcpIDs, subnets, func(l *opList, id string) {
		c.deleteDHCPOps(l, func(o *nbdb.DHCPOptions) bool { return byID(o.ExternalIDs, KeySubnet, id) })
	})
	networks := liveIDs(d.Networks, func(n network.State) (string, bool) { return string(n.ID), n.Live() })
	eachStray(c, step, KindNetwork, KeyNetwork, switchIDs, networks, func(l *opList, id string) {
		ops, err := c.deleteNetworkOps(network.ID(id))
		if err != nil {
			l.fail(err)
			return
		}
		l.add(ops.ops, nil)
	})
}

// eachStray runs del, as a step, for each id of kind found under key on
// rows of T but not in want.
func eachStray[T any](c *Client, step stepFunc, kind, key string, ids func(*T) map[string]string, want map[string]bool, del func(*opList, string)) {
	found, err := strays(c, key, ids, want)
	if err != nil {
		step(kind, "list "+kind, true, func(l *opList) { l.fail(err) })
		return
	}
	for _, id := range found {
		step(kind, kind+" "+id, true, func(l *opList) { del(l, id) })
	}
}

func natIDs(n *nbdb.NAT) map[string]string               { return n.ExternalIDs }
func routerIDs(r *nbdb.LogicalRouter) map[string]string  { return r.ExternalIDs }
func lspIDs(p *nbdb.LogicalSwitchPort) map[string]string { return p.ExternalIDs }
func pgIDs(g *nbdb.PortGroup) map[string]string          { return g.ExternalIDs }
func dhcpIDs(o *nbdb.DHCPOptions) map[string]string      { return o.ExternalIDs }
func switchIDs(s *nbdb.LogicalSwitch) map[string]string  { return s.ExternalIDs }
