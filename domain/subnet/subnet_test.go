package subnet_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/subnet"
)

var (
	t0  = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	off = false

	// A /24 with every default: gateway .1, one pool .2-.254, DHCP on.
	created = []domain.Event{&subnet.Created{ID: "s-1", Network: "n-1", Project: "p-1", Name: "web", CIDR: "10.0.0.0/24", Gateway: "10.0.0.1", DHCP: true,
		Pools: []subnet.Pool{{Start: "10.0.0.2", End: "10.0.0.254"}}, CreatedAt: t0}}
	one     = dt.Plus(created, &subnet.AddressAllocated{Key: "port-1", IP: "10.0.0.2", At: t0})
	deleted = dt.Plus(created, &subnet.Deleted{At: t0})
)

func create(f func(c *subnet.Create)) subnet.Command {
	c := subnet.Create{ID: "s-1", Network: "n-1", Project: "p-1", Name: "web", CIDR: "10.0.0.0/24", At: t0}
	f(&c)
	return c
}

func createdWith(f func(e *subnet.Created)) []domain.Event {
	e := *created[0].(*subnet.Created)
	f(&e)
	return []domain.Event{&e}
}

func TestCreate(t *testing.T) {
	routes := []subnet.Route{{Destination: "192.168.0.0/16", Nexthop: "10.0.0.254"}}
	dt.Run(t, subnet.Decider, "s-1", []dt.Case[subnet.Command]{
		{Name: "defaults: gateway first, one pool of the rest, DHCP on", When: create(func(*subnet.Create) {}), Then: dt.Then(created...)},
		{Name: "gateway in the middle splits the default pool", When: create(func(c *subnet.Create) { c.Gateway = "10.0.0.100" }),
			Then: dt.Then(createdWith(func(e *subnet.Created) {
				e.Gateway, e.Pools = "10.0.0.100", []subnet.Pool{{Start: "10.0.0.1", End: "10.0.0.99"}, {Start: "10.0.0.101", End: "10.0.0.254"}}
			})...)},
		{Name: "no gateway, DHCP off, DNS, routes, pools sorted", When: create(func(c *subnet.Create) {
			c.Gateway, c.DHCP, c.DNS, c.Routes = subnet.NoGateway, &off, []string{"1.1.1.1", "9.9.9.9"}, routes
			c.Pools = []subnet.Pool{{Start: "10.0.0.100", End: "10.0.0.200"}, {Start: "10.0.0.10", End: "10.0.0.20"}}
		}), Then: dt.Then(createdWith(func(e *subnet.Created) {
			e.Gateway, e.DHCP, e.DNS, e.Routes = "", false, []string{"1.1.1.1", "9.9.9.9"}, routes
			e.Pools = []subnet.Pool{{Start: "10.0.0.10", End: "10.0.0.20"}, {Start: "10.0.0.100", End: "10.0.0.200"}}
		})...)},
		{Name: "a /30 has one address for a port", When: create(func(c *subnet.Create) { c.CIDR = "10.0.0.0/30" }),
			Then: dt.Then(createdWith(func(e *subnet.Created) {
				e.CIDR, e.Pools = "10.0.0.0/30", []subnet.Pool{{Start: "10.0.0.2", End: "10.0.0.2"}}
			})...)},
		{Name: "twice", Given: created, When: create(func(*subnet.Create) {}), Then: dt.Refused(domain.Conflict, "subnet s-1 already exists")},
		{Name: "no network", When: create(func(c *subnet.Create) { c.Network = "" }), Then: dt.Refused(domain.Invalid, "belongs to a network and a project")},
		{Name: "bad name", When: create(func(c *subnet.Create) { c.Name = " web" }), Then: dt.Refused(domain.Invalid, "white space")},
		{Name: "not a cidr", When: create(func(c *subnet.Create) { c.CIDR = "10.0.0.0" }), Then: dt.Refused(domain.Invalid, `cidr "10.0.0.0" is not an IPv4 network such as 10.0.0.0/24`)},
		{Name: "IPv6", When: create(func(c *subnet.Create) { c.CIDR = "fd00::/64" }), Then: dt.Refused(domain.Invalid, "only IPv4 subnets are supported for now")},
		{Name: "host bits", When: create(func(c *subnet.Create) { c.CIDR = "10.0.0.5/24" }), Then: dt.Refused(domain.Invalid, "has host bits set; did you mean 10.0.0.0/24?")},
		{Name: "a /15 is too large", When: create(func(c *subnet.Create) { c.CIDR = "10.0.0.0/15" }), Then: dt.Refused(domain.Invalid, "at most a /16 (65,536 addresses)")},
		{Name: "a /31 is too small", When: create(func(c *subnet.Create) { c.CIDR = "10.0.0.0/31" }), Then: dt.Refused(domain.Invalid, "at least a /30", "no address left for a port")},
		{Name: "gateway outside", When: create(func(c *subnet.Create) { c.Gateway = "10.0.1.1" }), Then: dt.Refused(domain.Invalid, "gateway 10.0.1.1 is not in 10.0.0.0/24")},
		{Name: "gateway on the broadcast address", When: create(func(c *subnet.Create) { c.Gateway = "10.0.0.255" }), Then: dt.Refused(domain.Invalid, "gateway 10.0.0.255 is the broadcast address")},
		{Name: "gateway not an address", When: create(func(c *subnet.Create) { c.Gateway = "router" }), Then: dt.Refused(domain.Invalid, `gateway "router" is not an IPv4 address`, `or "none"`)},
		{Name: "gateway inside a pool", When: create(func(c *subnet.Create) { c.Pools = []subnet.Pool{{Start: "10.0.0.1", End: "10.0.0.9"}} }),
			Then: dt.Refused(domain.Invalid, "gateway 10.0.0.1 is inside allocation pool 10.0.0.1-10.0.0.9")},
		{Name: "pool outside", When: create(func(c *subnet.Create) { c.Pools = []subnet.Pool{{Start: "10.0.0.2", End: "10.0.1.9"}} }),
			Then: dt.Refused(domain.Invalid, "allocation pool end 10.0.1.9 is not in 10.0.0.0/24")},
		{Name: "pool on the network address", When: create(func(c *subnet.Create) {
			c.Gateway, c.Pools = subnet.NoGateway, []subnet.Pool{{Start: "10.0.0.0", End: "10.0.0.9"}}
		}),
			Then: dt.Refused(domain.Invalid, "allocation pool start 10.0.0.0 is the network address")},
		{Name: "pool backwards", When: create(func(c *subnet.Create) { c.Pools = []subnet.Pool{{Start: "10.0.0.9", End: "10.0.0.5"}} }),
			Then: dt.Refused(domain.Invalid, "allocation pool 10.0.0.9-10.0.0.5 ends before it starts")},
		{Name: "pools overlap", When: create(func(c *subnet.Create) {
			c.Pools = []subnet.Pool{{Start: "10.0.0.50", End: "10.0.0.60"}, {Start: "10.0.0.10", End: "10.0.0.50"}}
		}), Then: dt.Refused(domain.Invalid, "allocation pools 10.0.0.10-10.0.0.50 and 10.0.0.50-10.0.0.60 overlap")},
		{Name: "six DNS servers", When: create(func(c *subnet.Create) {
			c.DNS = []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9", "4.4.4.4"}
		}),
			Then: dt.Refused(domain.Invalid, "at most 5 DNS servers, got 6")},
		{Name: "IPv6 DNS server", When: create(func(c *subnet.Create) { c.DNS = []string{"2606:4700::1111"} }), Then: dt.Refused(domain.Invalid, `DNS server "2606:4700::1111" is not an IPv4 address`)},
		{Name: "DNS server twice", When: create(func(c *subnet.Create) { c.DNS = []string{"1.1.1.1", "1.1.1.1"} }), Then: dt.Refused(domain.Invalid, "DNS server 1.1.1.1 is listed twice")},
		{Name: "21 routes", When: create(func(c *subnet.Create) { c.Routes = make([]subnet.Route, 21) }), Then: dt.Refused(domain.Invalid, "at most 20 host routes, got 21")},
		{Name: "route nexthop outside", When: create(func(c *subnet.Create) { c.Routes = []subnet.Route{{Destination: "0.0.0.0/0", Nexthop: "192.168.1.1"}} }),
			Then: dt.Refused(domain.Invalid, "host route nexthop 192.168.1.1 is not in 10.0.0.0/24")},
		{Name: "route destination with host bits", When: create(func(c *subnet.Create) {
			c.Routes = []subnet.Route{{Destination: "192.168.1.1/16", Nexthop: "10.0.0.9"}}
		}),
			Then: dt.Refused(domain.Invalid, "did you mean 192.168.0.0/16?")},
		{Name: "route twice", When: create(func(c *subnet.Create) { c.Routes = []subnet.Route{routes[0], routes[0]} }), Then: dt.Refused(domain.Invalid, "listed twice")},
	})
}

func TestAddresses(t *testing.T) {
	allocate := func(key, ip string) subnet.Command { return subnet.Allocate{Key: key, IP: ip, At: t0} }
	dt.Run(t, subnet.Decider, "s-1", []dt.Case[subnet.Command]{
		{Name: "first address after the gateway", Given: created, When: allocate("port-1", ""), Then: dt.Then(&subnet.AddressAllocated{Key: "port-1", IP: "10.0.0.2", At: t0})},
		{Name: "next after the last", Given: one, When: allocate("port-2", ""), Then: dt.Then(&subnet.AddressAllocated{Key: "port-2", IP: "10.0.0.3", At: t0})},
		{Name: "a released address is not handed straight back", Given: dt.Plus(one, &subnet.AddressReleased{Key: "port-1", IP: "10.0.0.2", At: t0}),
			When: allocate("port-2", ""), Then: dt.Then(&subnet.AddressAllocated{Key: "port-2", IP: "10.0.0.3", At: t0})},
		{Name: "a fixed address", Given: created, When: allocate("port-1", "10.0.0.77"), Then: dt.Then(&subnet.AddressAllocated{Key: "port-1", IP: "10.0.0.77", At: t0})},
		{Name: "a fixed address in use", Given: one, When: allocate("port-2", "10.0.0.2"), Then: dt.Refused(domain.Conflict, "address 10.0.0.2 is already in use on subnet web (10.0.0.0/24)")},
		{Name: "the gateway", Given: created, When: allocate("port-1", "10.0.0.1"), Then: dt.Refused(domain.Invalid, "address 10.0.0.1 is the gateway of subnet web")},
		{Name: "the broadcast address", Given: created, When: allocate("port-1", "10.0.0.255"), Then: dt.Refused(domain.Invalid, "network or broadcast address")},
		{Name: "another subnet's address", Given: created, When: allocate("port-1", "10.0.1.5"), Then: dt.Refused(domain.Invalid, "address 10.0.1.5 is not in subnet web (10.0.0.0/24)")},
		{Name: "outside the pools", Given: createdWith(func(e *subnet.Created) { e.Pools = []subnet.Pool{{Start: "10.0.0.10", End: "10.0.0.20"}} }),
			When: allocate("port-1", "10.0.0.30"), Then: dt.Refused(domain.Invalid, "address 10.0.0.30 is outside the allocation pools")},
		{Name: "not an address", Given: created, When: allocate("port-1", "10.0.0"), Then: dt.Refused(domain.Invalid, `address "10.0.0" is not an IPv4 address`)},
		{Name: "the gateway to a router's interface", Given: created, When: subnet.Allocate{Key: "rif-1", Gateway: true, At: t0},
			Then: dt.Then(&subnet.AddressAllocated{Key: "rif-1", IP: "10.0.0.1", At: t0})},
		{Name: "the gateway to a second router", Given: dt.Plus(created, &subnet.AddressAllocated{Key: "rif-1", IP: "10.0.0.1", At: t0}),
			When: subnet.Allocate{Key: "rif-2", Gateway: true, At: t0}, Then: dt.Refused(domain.Conflict, "the gateway 10.0.0.1 of subnet web (10.0.0.0/24) is already in use")},
		{Name: "no key", Given: created, When: allocate("", ""), Then: dt.Refused(domain.Invalid, "allocated to a key")},
		{Name: "on a deleted subnet", Given: deleted, When: allocate("port-1", ""), Then: dt.Refused(domain.NotFound, "subnet s-1 not found")},
		{Name: "on an unknown subnet", When: allocate("port-1", ""), Then: dt.Refused(domain.NotFound, "subnet s-1 not found")},
		{Name: "release", Given: one, When: subnet.Release{Key: "port-1", IP: "10.0.0.2", At: t0}, Then: dt.Then(&subnet.AddressReleased{Key: "port-1", IP: "10.0.0.2", At: t0})},
		{Name: "release an address not handed out", Given: one, When: subnet.Release{Key: "port-1", IP: "10.0.0.3", At: t0}, Then: dt.Then()},
		{Name: "release another subnet's address", Given: one, When: subnet.Release{Key: "port-1", IP: "10.9.0.3", At: t0}, Then: dt.Then()},
		{Name: "release after a delete", Given: deleted, When: subnet.Release{Key: "port-1", IP: "10.0.0.2", At: t0}, Then: dt.Then()},
		{Name: "release without a key", Given: one, When: subnet.Release{IP: "10.0.0.2", At: t0}, Then: dt.Refused(domain.Invalid, "names the key")},
		{Name: "release not an address", Given: one, When: subnet.Release{Key: "port-1", IP: "x", At: t0}, Then: dt.Refused(domain.Invalid, `address "x" is not an IPv4 address`)},
		{Name: "delete", Given: created, When: subnet.Delete{At: t0}, Then: dt.Then(&subnet.Deleted{At: t0})},
		{Name: "delete with an address in use", Given: one, When: subnet.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "subnet web (10.0.0.0/24) still has 1 address(es) in use")},
		{Name: "delete once it is given back", Given: dt.Plus(one, &subnet.AddressReleased{Key: "port-1", IP: "10.0.0.2", At: t0}), When: subnet.Delete{At: t0}, Then: dt.Then(&subnet.Deleted{At: t0})},
		{Name: "delete twice", Given: deleted, When: subnet.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
	})
}

// Subnets are separate aggregates, each with its own address map: two
// projects' networks may use the same CIDR, and the same addresses.
func TestTheSameCIDRInTwoProjects(t *testing.T) {
	for _, p := range []string{"p-1", "p-2"} {
		c := subnet.Create{ID: subnet.ID("s-" + p), Network: "n-" + p, Project: p, CIDR: "10.0.0.0/24", At: t0}
		evs, err := subnet.Decide(subnet.Decider.Initial(string(c.ID)), c)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		s := subnet.Decider.Fold(subnet.Decider.Initial(string(c.ID)), evs)
		got, err := subnet.Decide(s, subnet.Allocate{Key: "port-" + p, IP: "10.0.0.2", At: t0})
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: allocate 10.0.0.2: %v %v", p, got, err)
		}
	}
}
