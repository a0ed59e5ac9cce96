package nbsync_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/subnet"
)

const (
	extNet = "0e000000-0000-4000-8000-00000000000e"
	extSub = "5e000000-0000-4000-8000-00000000000e"
	rifP   = "9e000000-0000-4000-8000-0000000000e1"
	rgwP   = "9e000000-0000-4000-8000-0000000000e2"
	rtr1   = "7a000000-0000-4000-8000-00000000000a"
	fip1   = "8a000000-0000-4000-8000-00000000000a"
)

// A router with an interface and an SNAT gateway, and a floating IP on a
// port, made through their commands, become the router's ports and NAT
// rules; their deletes take them away.
func TestRouterAndFloatingIPThroughTheLog(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	c.startWith(t, "a", c.srv.NB, func(s *nbsync.Syncer) {})
	routers := commands.New(c.store, router.Decider, 0)
	fips := commands.New(c.store, floatingip.Decider, 0)
	now := time.Now()

	_, err := c.nets.Create(c.ctx, extNet, network.Create{ID: extNet, Project: "admin", Name: "public", Kind: network.Flat,
		PhysicalNetwork: "physnet1", External: true, At: now}, meta())
	must(t, err)
	_, err = c.nets.Handle(c.ctx, extNet, network.AddSubnet{Subnet: extSub, At: now}, meta())
	must(t, err)
	_, err = c.subnets.Create(c.ctx, extSub, subnet.Create{ID: extSub, Network: extNet, Project: "admin", CIDR: "203.0.113.0/24", At: now}, meta())
	must(t, err)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	for _, p := range []port.Create{
		{ID: rifP, Network: net1, Project: "p1", MAC: "fa:16:3e:00:00:e1", FixedIPs: []port.FixedIP{{Subnet: sub1, IP: "10.0.0.1"}},
			DeviceOwner: port.OwnerRouterInterface, DeviceID: rtr1, At: now},
		{ID: rgwP, Network: extNet, Project: "p1", MAC: "fa:16:3e:00:00:e2", FixedIPs: []port.FixedIP{{Subnet: extSub, IP: "203.0.113.10"}},
			DeviceOwner: port.OwnerRouterGateway, DeviceID: rtr1, At: now},
	} {
		_, err = c.ports.Create(c.ctx, string(p.ID), p, meta())
		must(t, err)
	}
	_, err = routers.Create(c.ctx, rtr1, router.Create{ID: rtr1, Project: "p1", Name: "r1", At: now}, meta())
	must(t, err)
	_, err = routers.Handle(c.ctx, rtr1, router.AddInterface{Interface: router.Interface{Subnet: sub1, CIDR: "10.0.0.0/24", Port: rifP, IP: "10.0.0.1"}, At: now}, meta())
	must(t, err)
	_, err = routers.Handle(c.ctx, rtr1, router.SetGateway{Gateway: router.Gateway{Network: extNet, Subnet: extSub, CIDR: "203.0.113.0/24",
		Port: rgwP, IP: "203.0.113.10", SNAT: true}, At: now}, meta())
	must(t, err)
	_, err = fips.Create(c.ctx, fip1, floatingip.Create{ID: fip1, Project: "p1", Network: extNet, Subnet: extSub, IP: "203.0.113.20", At: now}, meta())
	must(t, err)
	_, err = fips.Handle(c.ctx, fip1, floatingip.Associate{Association: floatingip.Association{Port: port1, FixedIP: "10.0.0.10", Router: rtr1}, At: now}, meta())
	must(t, err)

	lr := "keel-" + rtr1
	eventually(t, "router with SNAT and the floating IP's NAT", 10*time.Second, func() (bool, string) {
		if !strings.Contains(c.nbctl(t, "lr-list"), lr) {
			return false, c.nbctl(t, "lr-list")
		}
		nat := c.nbctl(t, "lr-nat-list", lr)
		return strings.Contains(nat, "dnat_and_snat") && strings.Contains(nat, "203.0.113.20") &&
			strings.Contains(nat, "snat") && strings.Contains(nat, "10.0.0.0/24"), nat
	})
	if got := c.nbctl(t, "show", lr); !strings.Contains(got, "lrp-"+rifP) || !strings.Contains(got, "203.0.113.10/24") {
		t.Errorf("router ports:\n%s", got)
	}

	_, err = fips.Handle(c.ctx, fip1, floatingip.Delete{At: time.Now()}, meta())
	must(t, err)
	eventually(t, "floating IP's NAT gone", 10*time.Second, func() (bool, string) {
		nat := c.nbctl(t, "lr-nat-list", lr)
		return !strings.Contains(nat, "dnat_and_snat"), nat
	})
	for _, cmd := range []router.Command{router.RemoveInterface{Subnet: sub1, At: time.Now()}, router.ClearGateway{At: time.Now()}, router.Delete{At: time.Now()}} {
		_, err = routers.Handle(c.ctx, rtr1, cmd, meta())
		must(t, err)
	}
	for _, id := range []string{rifP, rgwP} {
		_, err = c.ports.Handle(c.ctx, id, port.Delete{ByOwner: true, At: time.Now()}, meta())
		must(t, err)
	}
	eventually(t, "router and its ports gone", 10*time.Second, func() (bool, string) {
		out := c.nbctl(t, "lr-list") + c.nbctl(t, "--bare", "--columns=name", "list", "Logical_Switch_Port")
		return !strings.Contains(out, rtr1) && !strings.Contains(out, rifP) && !strings.Contains(out, rgwP), out
	})
}
