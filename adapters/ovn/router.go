package ovn

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
)

// RouterOptions are what a router needs beyond its state.
type RouterOptions struct {
	// GatewayChassis is the chassis (ovn-controller's system-id) that
	// hosts the gateway port; "" leaves the gateway port without one, and
	// so without a place to do NAT.
	GatewayChassis string
}

// leg is one of a router's ports: an interface or the gateway.
type leg struct {
	port     port.State
	ip, cidr string
	gateway  bool
}

// EnsureRouter makes or repairs the router's Logical_Router, a router port
// lrp-<port id> per interface and for the gateway (with its gateway
// chassis), the switch-side ports of type router on their networks'
// switches, and the SNAT rules, in one transaction. ports are the
// router's interface and gateway ports (for their MAC and network); the
// switches must be there.
func (c *Client) EnsureRouter(ctx context.Context, r router.State, ports []port.State, o RouterOptions) error {
	var l opList
	c.routerOps(&l, r, ports, o)
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "ensure router "+string(r.ID), l.ops)
}

// DeleteRouter deletes the router (its ports and NAT rules go with it) and
// the switch-side ports that pointed at it.
func (c *Client) DeleteRouter(ctx context.Context, id router.ID) error {
	var l opList
	lr, err := c.findRouter(string(id))
	if err != nil || lr == nil {
		return err
	}
	lrps, err := list(c, func(p *nbdb.LogicalRouterPort) bool { return slices.Contains(lr.Ports, p.UUID) })
	if err != nil {
		return err
	}
	for _, p := range lrps {
		if pid := p.ExternalIDs[KeyPort]; pid != "" {
			c.deleteLSPOps(&l, pid)
		}
	}
	l.add(c.nb.Where(lr).Delete())
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "delete router "+string(id), l.ops)
}

func (c *Client) findRouter(id string) (*nbdb.LogicalRouter, error) {
	return one(c, "router "+id, func(lr *nbdb.LogicalRouter) bool { return byID(lr.ExternalIDs, KeyRouter, id) })
}

// legs pairs the router's interfaces and gateway with their ports.
func legs(r router.State, ports []port.State) ([]leg, error) {
	byID := map[string]port.State{}
	for _, p := range ports {
		byID[string(p.ID)] = p
	}
	var out []leg
	add := func(id, ip, cidr string, gw bool) error {
		p, ok := byID[id]
		if !ok {
			return fmt.Errorf("ovn: router %s: port %s not given", r.ID, id)
		}
		out = append(out, leg{port: p, ip: ip, cidr: cidr, gateway: gw})
		return nil
	}
	for _, i := range r.Interfaces {
		if err := add(i.Port, i.IP, i.CIDR, false); err != nil {
			return nil, err
		}
	}
	if g := r.Gateway; g != nil {
		if err := add(g.Port, g.IP, g.CIDR, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *Client) routerOps(l *opList, r router.State, ports []port.State, o RouterOptions) {
	legs, err := legs(r, ports)
	if err != nil {
		l.fail(err)
		return
	}
	for _, g := range legs {
		c.switchSideOps(l, g.port)
	}
	want := routerRow(r)
	lr, err := c.findRouter(string(r.ID))
	if err != nil {
		l.fail(err)
		return
	}
	if lr == nil {
		want.UUID = namedUUID("lr", string(r.ID))
		for _, g := range legs {
			want.Ports = append(want.Ports, c.createLRP(l, r, g, o))
		}
		want.Nat = c.createNATs(l, string(r.ID), snatRows(r))
		l.add(c.nb.Create(&want))
		return
	}
	if lr.Name != want.Name || !maps.Equal(lr.ExternalIDs, want.ExternalIDs) {
		want.UUID = lr.UUID
		l.add(c.nb.Where(&want).Update(&want, &want.Name, &want.ExternalIDs))
	}
	c.lrpOps(l, lr, r, legs, o)
	c.natOps(l, lr, snatRows(r), func(n *nbdb.NAT) bool { return n.ExternalIDs[KeyFloatingIP] == "" })
}

// switchSideOps ensures the router-type LSP of a router's port.
func (c *Client) switchSideOps(l *opList, p port.State) {
	ls, err := c.findSwitch(network.ID(p.Network))
	if err != nil || ls == nil {
		l.fail(fmt.Errorf("ovn: router port %s: switch of network %s: %w", p.ID, p.Network, errNotFound))
		return
	}
	c.lspOps(l, ls.UUID, portRow(p, ""))
}

// lrpRow is the wanted router port of g.
func lrpRow(r router.State, g leg) (nbdb.LogicalRouterPort, error) {
	return routerPortRow(r, string(g.port.ID), g.port.MAC, g.ip, g.cidr)
}

// chassisRow is the gateway chassis of a gateway port, or nil.
func chassisRow(lrp string, g leg, o RouterOptions) *nbdb.GatewayChassis {
	if !g.gateway || o.GatewayChassis == "" {
		return nil
	}
	return &nbdb.GatewayChassis{Name: lrp + "_" + o.GatewayChassis, ChassisName: o.GatewayChassis, Priority: 1}
}

// createLRP adds the creation of g's router port (and gateway chassis) to
// l and returns its named UUID.
func (c *Client) createLRP(l *opList, r router.State, g leg, o RouterOptions) string {
	lrp, err := lrpRow(r, g)
	if err != nil {
		l.fail(err)
		return ""
	}
	lrp.UUID = namedUUID("lrp", string(g.port.ID))
	if gc := chassisRow(lrp.Name, g, o); gc != nil {
		gc.UUID = namedUUID("gc", string(g.port.ID))
		l.add(c.nb.Create(gc))
		lrp.GatewayChassis = []string{gc.UUID}
	}
	l.add(c.nb.Create(&lrp))
	return lrp.UUID
}

// lrpOps makes lr's Keel router ports exactly those of legs.
func (c *Client) lrpOps(l *opList, lr *nbdb.LogicalRouter, r router.State, legs []leg, o RouterOptions) {
	have, err := list(c, func(p *nbdb.LogicalRouterPort) bool { return slices.Contains(lr.Ports, p.UUID) })
	if err != nil {
		l.fail(err)
		return
	}
	byName := map[string]*nbdb.LogicalRouterPort{}
	for i := range have {
		byName[have[i].Name] = &have[i]
	}
	var add, drop []string
	for _, g := range legs {
		want, err := lrpRow(r, g)
		if err != nil {
			l.fail(err)
			return
		}
		cur := byName[want.Name]
		delete(byName, want.Name)
		if cur == nil {
			add = append(add, c.createLRP(l, r, g, o))
			continue
		}
		c.updateLRPOps(l, cur, want, chassisRow(want.Name, g, o))
	}
	for _, stale := range byName {
		if stale.ExternalIDs[KeyRouter] != "" {
			drop = append(drop, stale.UUID)
		}
	}
	if len(drop) > 0 {
		l.add(c.mutate(lr, &lr.UUID, mutateDelete(&lr.Ports, drop...)))
	}
	if len(add) > 0 {
		l.add(c.mutate(lr, &lr.UUID, mutateInsert(&lr.Ports, add...)))
	}
}

// updateLRPOps brings an existing router port in line.
func (c *Client) updateLRPOps(l *opList, cur *nbdb.LogicalRouterPort, want nbdb.LogicalRouterPort, gc *nbdb.GatewayChassis) {
	if cur.MAC != want.MAC || !sameSet(cur.Networks, want.Networks) || !maps.Equal(cur.ExternalIDs, want.ExternalIDs) {
		want.UUID = cur.UUID
		l.add(c.nb.Where(&want).Update(&want, &want.MAC, &want.Networks, &want.ExternalIDs))
	}
	if c.chassisMatches(cur, gc) {
		return
	}
	want.UUID = cur.UUID
	want.GatewayChassis = nil
	if gc != nil {
		gc.UUID = namedUUID("gc", cur.Name)
		l.add(c.nb.Create(gc))
		want.GatewayChassis = []string{gc.UUID}
	}
	l.add(c.nb.Where(&want).Update(&want, &want.GatewayChassis))
}

// chassisMatches reports whether the port's gateway chassis are want.
func (c *Client) chassisMatches(lrp *nbdb.LogicalRouterPort, want *nbdb.GatewayChassis) bool {
	if want == nil {
		return len(lrp.GatewayChassis) == 0
	}
	if len(lrp.GatewayChassis) != 1 {
		return false
	}
	have, err := list(c, func(gc *nbdb.GatewayChassis) bool { return gc.UUID == lrp.GatewayChassis[0] })
	return err == nil && len(have) == 1 && have[0].ChassisName == want.ChassisName &&
		have[0].Name == want.Name && have[0].Priority == want.Priority
}

// createNATs adds the creation of nats to l and returns their named UUIDs.
func (c *Client) createNATs(l *opList, owner string, nats []nbdb.NAT) []string {
	var uuids []string
	for i := range nats {
		nats[i].UUID = namedUUID("nat", fmt.Sprintf("%s_%d", owner, i))
		l.add(c.nb.Create(&nats[i]))
		uuids = append(uuids, nats[i].UUID)
	}
	return uuids
}

// natKey identifies a NAT rule by the columns Keel sets.
func natKey(n nbdb.NAT) string {
	ids := make([]string, 0, len(n.ExternalIDs))
	for k, v := range n.ExternalIDs {
		ids = append(ids, k+"="+v)
	}
	slices.Sort(ids)
	return strings.Join([]string{n.Type, n.ExternalIP, n.LogicalIP, strings.Join(ids, ",")}, "|")
}

// natOps makes the NAT rules of lr that mine keeps exactly want (Keel's
// rules only: those carry keel:router).
func (c *Client) natOps(l *opList, lr *nbdb.LogicalRouter, want []nbdb.NAT, mine func(*nbdb.NAT) bool) {
	have, err := list(c, func(n *nbdb.NAT) bool {
		return slices.Contains(lr.Nat, n.UUID) && n.ExternalIDs[KeyRouter] != "" && mine(n)
	})
	if err != nil {
		l.fail(err)
		return
	}
	wanted := map[string]bool{}
	for _, n := range want {
		wanted[natKey(n)] = true
	}
	kept := map[string]bool{}
	var drop []string
	for _, n := range have {
		if k := natKey(n); wanted[k] && !kept[k] {
			kept[k] = true
		} else {
			drop = append(drop, n.UUID)
		}
	}
	var missing []nbdb.NAT
	for _, n := range want {
		if !kept[natKey(n)] {
			missing = append(missing, n)
		}
	}
	if len(drop) > 0 {
		l.add(c.mutate(lr, &lr.UUID, mutateDelete(&lr.Nat, drop...)))
	}
	if uuids := c.createNATs(l, lr.Name, missing); len(uuids) > 0 {
		l.add(c.mutate(lr, &lr.UUID, mutateInsert(&lr.Nat, uuids...)))
	}
}

// EnsureFloatingIP makes the floating IP's dnat_and_snat rule on the
// router it names, or removes it when it points nowhere (or is deleted),
// from every router, in one transaction. The router must be there.
func (c *Client) EnsureFloatingIP(ctx context.Context, f floatingip.State) error {
	var l opList
	c.fipOps(&l, f)
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "ensure floating ip "+string(f.ID), l.ops)
}

// DeleteFloatingIP removes the floating IP's NAT rule from every router.
func (c *Client) DeleteFloatingIP(ctx context.Context, id floatingip.ID) error {
	return c.EnsureFloatingIP(ctx, floatingip.State{ID: id})
}

func (c *Client) fipOps(l *opList, f floatingip.State) {
	want := fipRow(f)
	routers, err := list(c, func(lr *nbdb.LogicalRouter) bool { return lr.ExternalIDs[KeyRouter] != "" })
	if err != nil {
		l.fail(err)
		return
	}
	found := false
	for i := range routers {
		lr := &routers[i]
		var rows []nbdb.NAT
		if want != nil && lr.ExternalIDs[KeyRouter] == f.Assoc.Router {
			rows, found = []nbdb.NAT{*want}, true
		}
		c.natOps(l, lr, rows, func(n *nbdb.NAT) bool { return n.ExternalIDs[KeyFloatingIP] == string(f.ID) })
	}
	if want != nil && !found {
		l.fail(fmt.Errorf("ovn: floating ip %s: router %s: %w", f.ID, f.Assoc.Router, errNotFound))
	}
}
