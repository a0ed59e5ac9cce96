package ovn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-org/libovsdb/client"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
)

// EnsurePort makes or repairs the port's Logical_Switch_Port on its
// network's switch, and its membership in the port groups of its security
// groups (and keel_drop), in one transaction. The switch and the groups
// must be there (EnsureNetwork, EnsureSecurityGroup); keel_drop is made
// when missing. The LSP points at the DHCP options of its first fixed
// IP's subnet when they exist; a subnet whose options come later is
// picked up by the next EnsurePort or Reconcile.
func (c *Client) EnsurePort(ctx context.Context, p port.State) error {
	var l opList
	c.portOps(&l, p)
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "ensure port "+string(p.ID), l.ops)
}

// DeletePort removes the port's LSP from its switch (the NB drops the row
// and its port group memberships with the last reference).
func (c *Client) DeletePort(ctx context.Context, id port.ID) error {
	var l opList
	c.deleteLSPOps(&l, string(id))
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "delete port "+string(id), l.ops)
}

// portOps brings p's LSP and group memberships in line.
func (c *Client) portOps(l *opList, p port.State) {
	ls, err := c.findSwitch(network.ID(p.Network))
	if err != nil || ls == nil {
		l.fail(errors.Join(err, fmt.Errorf("ovn: port %s: switch of network %s: %w", p.ID, p.Network, errNotFound)))
		return
	}
	dhcp, err := c.portDHCP(p)
	if err != nil {
		l.fail(err)
		return
	}
	uuid := c.lspOps(l, ls.UUID, portRow(p, dhcp))
	c.membershipOps(l, uuid, portGroups(p))
}

// portDHCP is the UUID of the DHCP options of p's first fixed IP's
// subnet, or "".
func (c *Client) portDHCP(p port.State) (string, error) {
	if len(p.FixedIPs) == 0 || isRouterPort(p) {
		return "", nil
	}
	sub := p.FixedIPs[0].Subnet
	d, err := one(c, "subnet "+sub, func(d *nbdb.DHCPOptions) bool { return byID(d.ExternalIDs, KeySubnet, sub) })
	if err != nil || d == nil {
		return "", err
	}
	return d.UUID, nil
}

func (c *Client) findLSP(name string) (*nbdb.LogicalSwitchPort, error) {
	lsp := &nbdb.LogicalSwitchPort{Name: name}
	err := c.nb.Get(context.Background(), lsp)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil
	}
	return lsp, err
}

// lspOps makes want on switch lsUUID, or updates the LSP of its name to
// match, and returns its UUID (a named one when it is made).
func (c *Client) lspOps(l *opList, lsUUID string, want nbdb.LogicalSwitchPort) string {
	cur, err := c.findLSP(want.Name)
	if err != nil {
		l.fail(err)
		return ""
	}
	if cur == nil {
		want.UUID = namedUUID("lsp", want.Name)
		l.add(c.nb.Create(&want))
		ls := &nbdb.LogicalSwitch{UUID: lsUUID}
		l.add(c.mutate(ls, &ls.UUID, mutateInsert(&ls.Ports, want.UUID)))
		return want.UUID
	}
	if !lspEqual(cur, &want) {
		want.UUID = cur.UUID
		l.add(c.nb.Where(&want).Update(&want, &want.Type, &want.Addresses, &want.PortSecurity,
			&want.Options, &want.Tag, &want.Dhcpv4Options, &want.ExternalIDs))
	}
	return cur.UUID
}

// lspEqual compares the columns Keel sets.
func lspEqual(a, b *nbdb.LogicalSwitchPort) bool {
	return a.Type == b.Type && sameSet(a.Addresses, b.Addresses) && sameSet(a.PortSecurity, b.PortSecurity) &&
		maps.Equal(a.Options, b.Options) && maps.Equal(a.ExternalIDs, b.ExternalIDs) &&
		samePtr(a.Tag, b.Tag) && samePtr(a.Dhcpv4Options, b.Dhcpv4Options)
}

// membershipOps puts LSP uuid into exactly the Keel port groups named in
// want; groups without Keel's ids keep it.
func (c *Client) membershipOps(l *opList, uuid string, want []string) {
	found := map[string]bool{}
	if slices.Contains(want, DropPortGroup) && c.dropGroupOps(l, uuid) {
		found[DropPortGroup] = true // made with uuid in it
	}
	groups, err := list(c, func(pg *nbdb.PortGroup) bool { return isKeelGroup(pg) })
	if err != nil {
		l.fail(err)
		return
	}
	for i := range groups {
		pg := &groups[i]
		in, wanted := slices.Contains(pg.Ports, uuid), slices.Contains(want, pg.Name)
		found[pg.Name] = true
		switch {
		case wanted && !in:
			l.add(c.mutate(pg, &pg.UUID, mutateInsert(&pg.Ports, uuid)))
		case !wanted && in:
			l.add(c.mutate(pg, &pg.UUID, mutateDelete(&pg.Ports, uuid)))
		}
	}
	for _, name := range want {
		if !found[name] {
			l.fail(fmt.Errorf("ovn: port group %s: %w", name, errNotFound))
		}
	}
}

// isKeelGroup: a security group's port group, or keel_drop.
func isKeelGroup(pg *nbdb.PortGroup) bool {
	return pg.ExternalIDs[KeySecGroup] != "" || pg.ExternalIDs[KeyOwner] == "keel"
}

// deleteLSPOps removes LSP name from whichever switch holds it.
func (c *Client) deleteLSPOps(l *opList, name string) {
	cur, err := c.findLSP(name)
	if err != nil || cur == nil {
		l.fail(err)
		return
	}
	switches, err := list(c, func(ls *nbdb.LogicalSwitch) bool { return slices.Contains(ls.Ports, cur.UUID) })
	if err != nil {
		l.fail(err)
		return
	}
	for i := range switches {
		ls := &switches[i]
		l.add(c.mutate(ls, &ls.UUID, mutateDelete(&ls.Ports, cur.UUID)))
	}
}

// namedUUID is a transaction-local name for a row made in it.
func namedUUID(kind, id string) string {
	return "u_" + kind + "_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, id)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func samePtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
