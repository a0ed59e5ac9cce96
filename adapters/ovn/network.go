package ovn

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/subnet"
)

// EnsureNetwork makes the network's Logical_Switch (with its localnet
// port for a provider network) and the DHCP_Options of the subnets given,
// or repairs them, in one transaction.
func (c *Client) EnsureNetwork(ctx context.Context, n network.State, subnets []subnet.State) error {
	ops, err := c.networkOps(n, subnets)
	if err != nil {
		return err
	}
	return c.transact(ctx, "ensure network "+string(n.ID), ops.ops)
}

// DeleteNetwork deletes the network's switch (its ports go with it, and
// leave their port groups) and the DHCP_Options of its subnets.
func (c *Client) DeleteNetwork(ctx context.Context, id network.ID) error {
	ops, err := c.deleteNetworkOps(id)
	if err != nil {
		return err
	}
	return c.transact(ctx, "delete network "+string(id), ops.ops)
}

// EnsureSubnet makes, repairs or (when DHCP is off) deletes the subnet's
// DHCP_Options. Its network's switch must be there: the DHCP options hand
// out the network's MTU, which the switch keeps.
func (c *Client) EnsureSubnet(ctx context.Context, s subnet.State) error {
	ls, err := c.findSwitch(network.ID(s.Network))
	if err != nil {
		return err
	}
	if ls == nil {
		return fmt.Errorf("ovn: ensure subnet %s: switch of network %s: %w", s.ID, s.Network, errNotFound)
	}
	var l opList
	c.subnetOps(&l, s, switchMTU(ls))
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "ensure subnet "+string(s.ID), l.ops)
}

// DeleteSubnet deletes the subnet's DHCP_Options; ports pointing at them
// lose the reference (a weak one).
func (c *Client) DeleteSubnet(ctx context.Context, id subnet.ID) error {
	var l opList
	c.deleteDHCPOps(&l, func(d *nbdb.DHCPOptions) bool { return byID(d.ExternalIDs, KeySubnet, string(id)) })
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "delete subnet "+string(id), l.ops)
}

func (c *Client) findSwitch(id network.ID) (*nbdb.LogicalSwitch, error) {
	return one(c, "network "+string(id), func(ls *nbdb.LogicalSwitch) bool { return byID(ls.ExternalIDs, KeyNetwork, string(id)) })
}

func switchMTU(ls *nbdb.LogicalSwitch) int {
	mtu, _ := strconv.Atoi(ls.ExternalIDs[KeyMTU])
	return mtu
}

// networkOps are the operations that bring the switch of n, and the DHCP
// options of subnets, to what they should be.
func (c *Client) networkOps(n network.State, subnets []subnet.State) (*opList, error) {
	var l opList
	want := switchRow(n)
	ln := localnetRow(n)
	ls, err := c.findSwitch(n.ID)
	switch {
	case err != nil:
		return nil, err
	case ls == nil:
		want.UUID = namedUUID("ls", string(n.ID))
		if ln != nil {
			ln.UUID = namedUUID("ln", string(n.ID))
			want.Ports = []string{ln.UUID}
			l.add(c.nb.Create(ln))
		}
		l.add(c.nb.Create(&want))
	default:
		if ls.Name != want.Name || !maps.Equal(ls.ExternalIDs, want.ExternalIDs) {
			want.UUID = ls.UUID
			l.add(c.nb.Where(&want).Update(&want, &want.Name, &want.ExternalIDs))
		}
		c.localnetOps(&l, ls, ln, n.ID)
	}
	for _, s := range subnets {
		c.subnetOps(&l, s, n.MTU)
	}
	return &l, l.err
}

// localnetOps brings the localnet port of an existing switch in line.
func (c *Client) localnetOps(l *opList, ls *nbdb.LogicalSwitch, want *nbdb.LogicalSwitchPort, id network.ID) {
	if want != nil {
		c.lspOps(l, ls.UUID, *want)
		return
	}
	cur, err := c.findLSP(LocalnetName(id))
	if err != nil {
		l.fail(err)
		return
	}
	if cur != nil {
		l.add(c.mutate(ls, &ls.UUID, mutateDelete(&ls.Ports, cur.UUID)))
	}
}

// subnetOps brings the DHCP options of s in line.
func (c *Client) subnetOps(l *opList, s subnet.State, mtu int) {
	want, err := dhcpRow(s, mtu)
	if err != nil {
		l.fail(err)
		return
	}
	keep := func(d *nbdb.DHCPOptions) bool { return byID(d.ExternalIDs, KeySubnet, string(s.ID)) }
	cur, err := one(c, "subnet "+string(s.ID), keep)
	switch {
	case err != nil:
		l.fail(err)
	case want == nil:
		c.deleteDHCPOps(l, keep)
	case cur == nil:
		l.add(c.nb.Create(want))
	case cur.Cidr != want.Cidr || !maps.Equal(cur.Options, want.Options) || !maps.Equal(cur.ExternalIDs, want.ExternalIDs):
		want.UUID = cur.UUID
		l.add(c.nb.Where(want).Update(want, &want.Cidr, &want.Options, &want.ExternalIDs))
	}
}

// deleteDHCPOps deletes the DHCP options keep keeps.
func (c *Client) deleteDHCPOps(l *opList, keep func(*nbdb.DHCPOptions) bool) {
	rows, err := list(c, keep)
	if err != nil {
		l.fail(err)
		return
	}
	for i := range rows {
		l.add(c.nb.Where(&rows[i]).Delete())
	}
}

func (c *Client) deleteNetworkOps(id network.ID) (*opList, error) {
	var l opList
	ls, err := c.findSwitch(id)
	if err != nil {
		return nil, err
	}
	if ls != nil {
		l.add(c.nb.Where(ls).Delete())
	}
	c.deleteDHCPOps(&l, func(d *nbdb.DHCPOptions) bool { return byID(d.ExternalIDs, KeyNetwork, string(id)) })
	return &l, l.err
}
