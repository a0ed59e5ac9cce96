package network_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/network"
)

var (
	t0       = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	created  = []domain.Event{&network.Created{ID: "n-1", Project: "p-1", Name: "web", Kind: network.Overlay, MTU: 1442, CreatedAt: t0}}
	withOne  = dt.Plus(created, &network.SubnetAdded{Subnet: "s-1", At: t0})
	withCIDR = dt.Plus(created, &network.SubnetAdded{Subnet: "s-1", CIDR: "10.0.0.0/24", At: t0})
	deleted  = dt.Plus(created, &network.Deleted{At: t0})
)

func create(f func(c *network.Create)) network.Create {
	c := network.Create{ID: "n-1", Project: "p-1", Name: "web", At: t0}
	f(&c)
	return c
}

func TestCreate(t *testing.T) {
	dt.Run(t, network.Decider, "n-1", []dt.Case[network.Command]{
		{Name: "overlay by default, MTU 1442", When: create(func(*network.Create) {}), Then: dt.Then(created...)},
		{Name: "vlan provider network, MTU 1500", When: create(func(c *network.Create) { c.Kind, c.PhysicalNetwork, c.VLAN = network.VLAN, "physnet1", 100 }),
			Then: dt.Then(&network.Created{ID: "n-1", Project: "p-1", Name: "web", Kind: network.VLAN, PhysicalNetwork: "physnet1", VLAN: 100, MTU: 1500, CreatedAt: t0})},
		{Name: "external flat network with its own MTU", When: create(func(c *network.Create) {
			c.Kind, c.PhysicalNetwork, c.External, c.MTU = network.Flat, "public", true, 9000
		}),
			Then: dt.Then(&network.Created{ID: "n-1", Project: "p-1", Name: "web", Kind: network.Flat, PhysicalNetwork: "public", External: true, MTU: 9000, CreatedAt: t0})},
		{Name: "twice", Given: created, When: create(func(*network.Create) {}), Then: dt.Refused(domain.Conflict, "network n-1 already exists")},
		{Name: "no project", When: create(func(c *network.Create) { c.Project = "" }), Then: dt.Refused(domain.Invalid, "belongs to a project")},
		{Name: "empty name", When: create(func(c *network.Create) { c.Name = "" }), Then: dt.Refused(domain.Invalid, "name must not be empty")},
		{Name: "unknown kind", When: create(func(c *network.Create) { c.Kind = "vxlan" }), Then: dt.Refused(domain.Invalid, `kind must be one of [overlay vlan flat], got "vxlan"`)},
		{Name: "overlay on a physical network", When: create(func(c *network.Create) { c.PhysicalNetwork = "physnet1" }), Then: dt.Refused(domain.Invalid, "use kind vlan or flat")},
		{Name: "external overlay", When: create(func(c *network.Create) { c.External = true }), Then: dt.Refused(domain.Invalid, "an external network must be a provider network")},
		{Name: "vlan without a physical network", When: create(func(c *network.Create) { c.Kind, c.VLAN = network.VLAN, 100 }), Then: dt.Refused(domain.Invalid, "a vlan network needs the name of a physical network")},
		{Name: "physical network with a colon", When: create(func(c *network.Create) { c.Kind, c.PhysicalNetwork = network.Flat, "a:b" }), Then: dt.Refused(domain.Invalid, `got "a:b"`)},
		{Name: "vlan 0", When: create(func(c *network.Create) { c.Kind, c.PhysicalNetwork = network.VLAN, "physnet1" }), Then: dt.Refused(domain.Invalid, "between 1 and 4094, got 0")},
		{Name: "vlan 4095", When: create(func(c *network.Create) { c.Kind, c.PhysicalNetwork, c.VLAN = network.VLAN, "physnet1", 4095 }), Then: dt.Refused(domain.Invalid, "got 4095")},
		{Name: "flat with a vlan id", When: create(func(c *network.Create) { c.Kind, c.PhysicalNetwork, c.VLAN = network.Flat, "physnet1", 5 }), Then: dt.Refused(domain.Invalid, "a flat network is untagged")},
		{Name: "MTU too small", When: create(func(c *network.Create) { c.MTU = 60 }), Then: dt.Refused(domain.Invalid, "MTU must be between 68 and 9216, got 60")},
	})
}

func TestLifecycle(t *testing.T) {
	dt.Run(t, network.Decider, "n-1", []dt.Case[network.Command]{
		{Name: "rename", Given: created, When: network.Rename{Name: "front", At: t0}, Then: dt.Then(&network.Renamed{Name: "front", At: t0})},
		{Name: "rename to the same name", Given: created, When: network.Rename{Name: "web", At: t0}, Then: dt.Then()},
		{Name: "rename to nothing", Given: created, When: network.Rename{At: t0}, Then: dt.Refused(domain.Invalid, "name must not be empty")},
		{Name: "add a subnet", Given: created, When: network.AddSubnet{Subnet: "s-1", At: t0}, Then: dt.Then(&network.SubnetAdded{Subnet: "s-1", At: t0})},
		{Name: "add it again", Given: withOne, When: network.AddSubnet{Subnet: "s-1", At: t0}, Then: dt.Then()},
		{Name: "add one with its CIDR", Given: created, When: network.AddSubnet{Subnet: "s-1", CIDR: "10.0.0.0/24", At: t0},
			Then: dt.Then(&network.SubnetAdded{Subnet: "s-1", CIDR: "10.0.0.0/24", At: t0})},
		{Name: "add one beside it", Given: withCIDR, When: network.AddSubnet{Subnet: "s-2", CIDR: "10.0.1.0/24", At: t0},
			Then: dt.Then(&network.SubnetAdded{Subnet: "s-2", CIDR: "10.0.1.0/24", At: t0})},
		{Name: "add one overlapping it", Given: withCIDR, When: network.AddSubnet{Subnet: "s-2", CIDR: "10.0.0.128/25", At: t0},
			Then: dt.Refused(domain.Conflict, "cidr 10.0.0.128/25 overlaps subnet s-1 (10.0.0.0/24) of network web")},
		{Name: "the overlap is gone with its subnet", Given: dt.Plus(withCIDR, &network.SubnetRemoved{Subnet: "s-1", At: t0}),
			When: network.AddSubnet{Subnet: "s-2", CIDR: "10.0.0.0/16", At: t0}, Then: dt.Then(&network.SubnetAdded{Subnet: "s-2", CIDR: "10.0.0.0/16", At: t0})},
		{Name: "add no subnet", Given: created, When: network.AddSubnet{At: t0}, Then: dt.Refused(domain.Invalid, "a subnet id is needed")},
		{Name: "add to a deleted network", Given: deleted, When: network.AddSubnet{Subnet: "s-1", At: t0}, Then: dt.Refused(domain.NotFound, "network n-1 not found")},
		{Name: "remove a subnet", Given: withOne, When: network.RemoveSubnet{Subnet: "s-1", At: t0}, Then: dt.Then(&network.SubnetRemoved{Subnet: "s-1", At: t0})},
		{Name: "remove one not there", Given: withOne, When: network.RemoveSubnet{Subnet: "s-2", At: t0}, Then: dt.Then()},
		{Name: "delete", Given: created, When: network.Delete{At: t0}, Then: dt.Then(&network.Deleted{At: t0})},
		{Name: "delete with a subnet", Given: withOne, When: network.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "network web still has 1 subnet(s) (s-1); delete them first")},
		{Name: "delete after its subnet went", Given: dt.Plus(withOne, &network.SubnetRemoved{Subnet: "s-1", At: t0}), When: network.Delete{At: t0}, Then: dt.Then(&network.Deleted{At: t0})},
		{Name: "delete twice", Given: deleted, When: network.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
		{Name: "delete unknown", When: network.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "network n-1 not found")},
	})
}

func TestSubnetLimit(t *testing.T) {
	given := created
	for i := range network.MaxSubnets {
		given = dt.Plus(given, &network.SubnetAdded{Subnet: string(rune('a'+i%26)) + string(rune('a'+i/26)), At: t0})
	}
	dt.Decide(t, network.Decider, "n-1", given, network.Command(network.AddSubnet{Subnet: "one-more", At: t0}), dt.Refused(domain.Conflict, "already has 64 subnets"))
}

// Removing a subnet leaves an earlier (cached) state as it was.
func TestEvolveCopiesOnWrite(t *testing.T) {
	before := dt.Fold(network.Decider, "n-1", dt.Plus(withOne, &network.SubnetAdded{Subnet: "s-2", At: t0}))
	after := network.Evolve(before, &network.SubnetRemoved{Subnet: "s-1", At: t0})
	if len(after.Subnets) != 1 || after.Subnets[0] != "s-2" || len(before.Subnets) != 2 || before.Subnets[0] != "s-1" {
		t.Fatalf("before %v, after %v", before.Subnets, after.Subnets)
	}
}

// An id whose create never committed is closed by Abandon (its quota
// reservation is then given back): a later create is refused.
func TestAbandon(t *testing.T) {
	abandoned := []domain.Event{&network.Abandoned{ID: "n-1", Reason: "crash", At: t0}}
	dt.Run(t, network.Decider, "n-1", []dt.Case[network.Command]{
		{Name: "a fresh id", When: network.Abandon{Reason: "crash", At: t0}, Then: dt.Then(abandoned...)},
		{Name: "twice", Given: abandoned, When: network.Abandon{Reason: "crash", At: t0}, Then: dt.Then()},
		{Name: "create after", Given: abandoned, When: create(func(*network.Create) {}), Then: dt.Refused(domain.Conflict, "new Idempotency-Key")},
		{Name: "an existing network", Given: created, When: network.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "network n-1 exists")},
		{Name: "a deleted network", Given: deleted, When: network.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "network n-1 exists")},
	})
}
