package router_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/router"
)

var (
	t0      = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	gw      = router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: "203.0.113.0/24", Port: "gw-port", IP: "203.0.113.10", SNAT: true}
	web     = router.Interface{Subnet: "s-web", CIDR: "10.0.0.0/24", Port: "if-web", IP: "10.0.0.1"}
	created = []domain.Event{&router.Created{ID: "r-1", Project: "p-1", Name: "edge", At: t0}}
	withGW  = dt.Plus(created, &router.GatewaySet{Gateway: gw, At: t0})
	withWeb = dt.Plus(created, &router.InterfaceAdded{Interface: web, At: t0})
	both    = dt.Plus(withGW, &router.InterfaceAdded{Interface: web, At: t0})
)

func iface(subnet, cidr, ip string) router.Command {
	return router.AddInterface{Interface: router.Interface{Subnet: subnet, CIDR: cidr, Port: "if-" + subnet, IP: ip}, At: t0}
}

func TestRouter(t *testing.T) {
	noSNAT := gw
	noSNAT.SNAT = false
	other := gw
	other.Network, other.Port = "ext-2", "gw-port-2"
	dt.Run(t, router.Decider, "r-1", []dt.Case[router.Command]{
		{Name: "create", When: router.Create{ID: "r-1", Project: "p-1", Name: "edge", At: t0}, Then: dt.Then(created...)},
		{Name: "create twice", Given: created, When: router.Create{ID: "r-1", Project: "p-1", Name: "edge", At: t0}, Then: dt.Refused(domain.Conflict, "router r-1 already exists")},
		{Name: "create without a name", When: router.Create{ID: "r-1", Project: "p-1", At: t0}, Then: dt.Refused(domain.Invalid, "name must not be empty")},
		{Name: "create without a project", When: router.Create{ID: "r-1", Name: "edge", At: t0}, Then: dt.Refused(domain.Invalid, "belongs to a project")},

		{Name: "set the gateway", Given: created, When: router.SetGateway{Gateway: gw, At: t0}, Then: dt.Then(&router.GatewaySet{Gateway: gw, At: t0})},
		{Name: "set it again", Given: withGW, When: router.SetGateway{Gateway: gw, At: t0}, Then: dt.Then()},
		{Name: "turn SNAT off", Given: withGW, When: router.SetGateway{Gateway: noSNAT, At: t0}, Then: dt.Then(&router.GatewaySet{Gateway: noSNAT, At: t0})},
		{Name: "a second gateway", Given: withGW, When: router.SetGateway{Gateway: other, At: t0}, Then: dt.Refused(domain.Conflict, "router edge already has a gateway on network ext (203.0.113.10); clear it first")},
		{Name: "a gateway without its port", Given: created, When: router.SetGateway{Gateway: router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: gw.CIDR, IP: gw.IP}, At: t0},
			Then: dt.Refused(domain.Invalid, "a gateway needs an external network, its subnet and the gateway's port")},
		{Name: "a gateway address outside its subnet", Given: created, When: router.SetGateway{Gateway: router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: gw.CIDR, Port: "p", IP: "10.0.0.1"}, At: t0},
			Then: dt.Refused(domain.Invalid, `the gateway's address "10.0.0.1" is not an IPv4 address in 203.0.113.0/24`)},
		{Name: "a gateway overlapping an interface", Given: withWeb, When: router.SetGateway{Gateway: router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: "10.0.0.0/16", Port: "p", IP: "10.0.200.1"}, At: t0},
			Then: dt.Refused(domain.Conflict, "the external subnet (10.0.0.0/16) overlaps subnet s-web (10.0.0.0/24), which router edge already connects")},
		{Name: "clear the gateway", Given: withGW, When: router.ClearGateway{At: t0}, Then: dt.Then(&router.GatewayCleared{Gateway: gw, At: t0})},
		{Name: "clear no gateway", Given: created, When: router.ClearGateway{At: t0}, Then: dt.Then()},

		{Name: "add an interface", Given: created, When: router.AddInterface{Interface: web, At: t0}, Then: dt.Then(&router.InterfaceAdded{Interface: web, At: t0})},
		{Name: "add it again", Given: withWeb, When: router.AddInterface{Interface: web, At: t0}, Then: dt.Then()},
		{Name: "a second interface on the subnet", Given: withWeb, When: iface("s-web", "10.0.0.0/24", "10.0.0.2"), Then: dt.Refused(domain.Conflict, "router edge already has an interface on subnet s-web (port if-web)")},
		{Name: "an overlapping subnet", Given: withWeb, When: iface("s-big", "10.0.0.0/16", "10.0.1.1"),
			Then: dt.Refused(domain.Conflict, "subnet s-big (10.0.0.0/16) overlaps subnet s-web (10.0.0.0/24)", "cannot route between overlapping networks")},
		{Name: "a subnet overlapping the external one", Given: withGW, When: iface("s-x", "203.0.113.0/25", "203.0.113.1"),
			Then: dt.Refused(domain.Conflict, "overlaps the external subnet ext-s (203.0.113.0/24) of router edge's gateway")},
		{Name: "a second, separate subnet", Given: both, When: iface("s-db", "10.0.1.0/24", "10.0.1.1"),
			Then: dt.Then(&router.InterfaceAdded{Interface: router.Interface{Subnet: "s-db", CIDR: "10.0.1.0/24", Port: "if-s-db", IP: "10.0.1.1"}, At: t0})},
		{Name: "an interface without a port", Given: created, When: router.AddInterface{Interface: router.Interface{Subnet: "s", CIDR: "10.0.0.0/24", IP: "10.0.0.1"}, At: t0},
			Then: dt.Refused(domain.Invalid, "needs a subnet and the interface's port")},
		{Name: "an interface with a bad cidr", Given: created, When: iface("s", "10.0.0.1/24", "10.0.0.1"), Then: dt.Refused(domain.Invalid, `the interface's cidr "10.0.0.1/24" is not an IPv4 network`)},
		{Name: "remove by subnet", Given: withWeb, When: router.RemoveInterface{Subnet: "s-web", At: t0}, Then: dt.Then(&router.InterfaceRemoved{Interface: web, At: t0})},
		{Name: "remove by port", Given: withWeb, When: router.RemoveInterface{Port: "if-web", At: t0}, Then: dt.Then(&router.InterfaceRemoved{Interface: web, At: t0})},
		{Name: "remove one not there", Given: withWeb, When: router.RemoveInterface{Subnet: "s-db", At: t0}, Then: dt.Refused(domain.NotFound, `router edge has no interface on subnet "s-db"`)},
		{Name: "remove nothing named", Given: withWeb, When: router.RemoveInterface{At: t0}, Then: dt.Refused(domain.Invalid, "by its subnet or its port")},

		{Name: "delete", Given: created, When: router.Delete{At: t0}, Then: dt.Then(&router.Deleted{At: t0})},
		{Name: "delete takes the gateway along", Given: withGW, When: router.Delete{At: t0}, Then: dt.Then(&router.GatewayCleared{Gateway: gw, At: t0}, &router.Deleted{At: t0})},
		{Name: "delete with an interface", Given: both, When: router.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "router edge still has 1 interface(s), on subnets [s-web]; remove them first")},
		{Name: "delete twice", Given: dt.Plus(created, &router.Deleted{At: t0}), When: router.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "router r-1 not found")},
	})
}

func TestRouterFloatingIPs(t *testing.T) {
	fip := router.FloatingIP{ID: "f-1", Subnet: "s-web"}
	attach := router.AttachFloatingIP{FloatingIP: "f-1", Network: "ext", Subnet: "s-web", At: t0}
	withFIP := dt.Plus(both, &router.FloatingIPAttached{FloatingIP: fip, At: t0})
	abandoned := []domain.Event{&router.Abandoned{ID: "r-1", Reason: "cut short", At: t0}}
	dt.Run(t, router.Decider, "r-1", []dt.Case[router.Command]{
		{Name: "attach", Given: both, When: attach, Then: dt.Then(&router.FloatingIPAttached{FloatingIP: fip, At: t0})},
		{Name: "attach again", Given: withFIP, When: attach, Then: dt.Then()},
		{Name: "attach without a gateway", Given: withWeb, When: attach, Then: dt.Refused(domain.Conflict, "router edge has no gateway on the floating IP's external network ext")},
		{Name: "attach from another external network", Given: both, When: router.AttachFloatingIP{FloatingIP: "f-1", Network: "ext-2", Subnet: "s-web", At: t0},
			Then: dt.Refused(domain.Conflict, "no gateway on the floating IP's external network ext-2")},
		{Name: "attach to a subnet without an interface", Given: both, When: router.AttachFloatingIP{FloatingIP: "f-1", Network: "ext", Subnet: "s-db", At: t0},
			Then: dt.Refused(domain.Conflict, "router edge has no interface on subnet s-db")},
		{Name: "clear the gateway a floating IP uses", Given: withFIP, When: router.ClearGateway{At: t0}, Then: dt.Refused(domain.Conflict, "translates 1 floating IP(s) through its gateway ([f-1])")},
		{Name: "remove the interface a floating IP uses", Given: withFIP, When: router.RemoveInterface{Subnet: "s-web", At: t0},
			Then: dt.Refused(domain.Conflict, "through its interface on subnet s-web")},
		{Name: "detach", Given: withFIP, When: router.DetachFloatingIP{FloatingIP: "f-1", At: t0}, Then: dt.Then(&router.FloatingIPDetached{FloatingIP: fip, At: t0})},
		{Name: "detach one not there", Given: both, When: router.DetachFloatingIP{FloatingIP: "f-1", At: t0}, Then: dt.Then()},
		{Name: "clear after the detach", Given: dt.Plus(withFIP, &router.FloatingIPDetached{FloatingIP: fip, At: t0}), When: router.ClearGateway{At: t0},
			Then: dt.Then(&router.GatewayCleared{Gateway: gw, At: t0})},

		{Name: "abandon", When: router.Abandon{Reason: "cut short", At: t0}, Then: dt.Then(abandoned...)},
		{Name: "abandon twice", Given: abandoned, When: router.Abandon{Reason: "cut short", At: t0}, Then: dt.Then()},
		{Name: "abandon one that exists", Given: created, When: router.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "router r-1 exists: its create is not abandoned")},
		{Name: "create after the abandon", Given: abandoned, When: router.Create{ID: "r-1", Project: "p-1", Name: "edge", At: t0},
			Then: dt.Refused(domain.Conflict, "was abandoned")},
	})
}
