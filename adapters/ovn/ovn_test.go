package ovn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// Fixed ids, so that ovn-nbctl output is easy to read in a failure.
const (
	netA  = "0a000000-0000-4000-8000-00000000000a"
	netB  = "0b000000-0000-4000-8000-00000000000b"
	extN  = "0e000000-0000-4000-8000-00000000000e"
	subA  = "5a000000-0000-4000-8000-00000000000a"
	subB  = "5b000000-0000-4000-8000-00000000000b"
	subE  = "5e000000-0000-4000-8000-00000000000e"
	portA = "9a000000-0000-4000-8000-00000000000a"
	portB = "9b000000-0000-4000-8000-00000000000b"
	rifA  = "9c000000-0000-4000-8000-00000000000c"
	rgwE  = "9d000000-0000-4000-8000-00000000000d"
	sgWeb = "6a000000-0000-4000-8000-00000000000a"
	rtr   = "7a000000-0000-4000-8000-00000000000a"
	fip1  = "8a000000-0000-4000-8000-00000000000a"
)

type env struct {
	srv *ovntest.Servers
	c   *ovn.Client
	ctx context.Context
}

func start(t *testing.T) *env {
	t.Helper()
	srv := ovntest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := ovn.Dial(ctx, srv.NB, ovn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{srv: srv, c: c, ctx: ctx}
}

func (e *env) nbctl(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(e.srv.NBCtl(t, args...))
}

// wantSame fails t when the command wrote a transaction.
func (e *env) wantNoWrite(t *testing.T, what string, f func() error) {
	t.Helper()
	before := e.c.Transactions()
	if err := f(); err != nil {
		t.Fatalf("%s again: %v", what, err)
	}
	if n := e.c.Transactions() - before; n != 0 {
		t.Errorf("%s again wrote %d transactions, want 0", what, n)
	}
}

func net(id, project string) network.State {
	return network.State{ID: network.ID(id), Exists: true, Project: project, Kind: network.Overlay, MTU: 1442}
}

func sub(id, netID, project, cidr, gw string) subnet.State {
	return subnet.State{ID: subnet.ID(id), Exists: true, Network: netID, Project: project, CIDR: cidr, Gateway: gw, DHCP: true, DNS: []string{"9.9.9.9"}}
}

func vmPort(id, netID, subID, mac, ip string, groups ...string) port.State {
	return port.State{ID: port.ID(id), Exists: true, Network: netID, Project: "p1", MAC: mac, PortSecurity: true,
		FixedIPs: []port.FixedIP{{Subnet: subID, IP: ip}}, SecurityGroups: groups, DeviceOwner: port.OwnerServer}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, out)
		}
	}
}

func TestNetworkSubnetPortRowsAndIdempotence(t *testing.T) {
	e := start(t)
	n, s := net(netA, "p1"), sub(subA, netA, "p1", "10.0.0.0/24", "10.0.0.1")
	p := vmPort(portA, netA, subA, "fa:16:3e:00:00:0a", "10.0.0.5")
	must(t, e.c.EnsureNetwork(e.ctx, n, []subnet.State{s}))
	must(t, e.c.EnsurePort(e.ctx, p))

	ls := "keel-" + netA
	contains(t, "ls external_ids", e.nbctl(t, "get", "Logical_Switch", ls, "external_ids"),
		`"keel:network"="`+netA+`"`, `"keel:project"=p1`, `"keel:mtu"="1442"`)
	contains(t, "lsp-list", e.nbctl(t, "lsp-list", ls), "("+portA+")")
	contains(t, "addresses", e.nbctl(t, "lsp-get-addresses", portA), "fa:16:3e:00:00:0a 10.0.0.5")
	contains(t, "port security", e.nbctl(t, "lsp-get-port-security", portA), "fa:16:3e:00:00:0a 10.0.0.5")
	dhcp := e.nbctl(t, "dhcp-options-list")
	if dhcp == "" || strings.Count(dhcp, "\n") != 0 {
		t.Fatalf("dhcp-options-list = %q, want one row", dhcp)
	}
	uuid := strings.Fields(dhcp)[0]
	contains(t, "dhcp options", e.nbctl(t, "dhcp-options-get-options", uuid),
		"router=10.0.0.1", "server_id=10.0.0.1", "lease_time=43200", "mtu=1442", "dns_server={9.9.9.9}", "server_mac=02:")
	contains(t, "lsp dhcpv4", e.nbctl(t, "lsp-get-dhcpv4-options", portA), uuid)
	contains(t, "keel_drop", e.nbctl(t, "get", "Port_Group", "keel_drop", "ports"), e.nbctl(t, "get", "Logical_Switch_Port", portA, "_uuid"))

	e.wantNoWrite(t, "EnsureNetwork", func() error { return e.c.EnsureNetwork(e.ctx, n, []subnet.State{s}) })
	e.wantNoWrite(t, "EnsureSubnet", func() error { return e.c.EnsureSubnet(e.ctx, s) })
	e.wantNoWrite(t, "EnsurePort", func() error { return e.c.EnsurePort(e.ctx, p) })

	must(t, e.c.DeletePort(e.ctx, port.ID(portA)))
	must(t, e.c.DeleteSubnet(e.ctx, subnet.ID(subA)))
	must(t, e.c.DeleteNetwork(e.ctx, network.ID(netA)))
	for _, table := range []string{"Logical_Switch", "Logical_Switch_Port", "DHCP_Options"} {
		if out := e.nbctl(t, "--columns=_uuid", "list", table); out != "" {
			t.Errorf("%s after deletes:\n%s", table, out)
		}
	}
	e.wantNoWrite(t, "DeleteNetwork", func() error { return e.c.DeleteNetwork(e.ctx, network.ID(netA)) })
}

func TestProviderNetworkLocalnet(t *testing.T) {
	e := start(t)
	n := net(netA, "p1")
	n.Kind, n.PhysicalNetwork, n.VLAN, n.MTU = network.VLAN, "physnet1", 101, 1500
	must(t, e.c.EnsureNetwork(e.ctx, n, nil))
	ln := "provnet-" + netA
	contains(t, "localnet", e.nbctl(t, "--columns=type,options,tag", "list", "Logical_Switch_Port", ln),
		"localnet", "network_name=physnet1", "101")
	e.wantNoWrite(t, "EnsureNetwork", func() error { return e.c.EnsureNetwork(e.ctx, n, nil) })
}

func TestReconcileRepairsDriftAndSparesForeignRows(t *testing.T) {
	e := start(t)
	d := ovn.Desired{
		Networks: []network.State{net(netA, "p1"), net(netB, "p2")},
		// Two projects, one CIDR: two switches, two DHCP rows.
		Subnets: []subnet.State{sub(subA, netA, "p1", "10.0.0.0/24", "10.0.0.1"), sub(subB, netB, "p2", "10.0.0.0/24", "10.0.0.1")},
		Ports: []port.State{vmPort(portA, netA, subA, "fa:16:3e:00:00:0a", "10.0.0.5"),
			vmPort(portB, netB, subB, "fa:16:3e:00:00:0b", "10.0.0.5")},
	}
	rep, err := e.c.Reconcile(e.ctx, d)
	must(t, err)
	if rep.Repaired[ovn.KindNetwork] != 2 || rep.Repaired[ovn.KindSubnet] != 2 || rep.Repaired[ovn.KindPort] != 2 {
		t.Errorf("first reconcile = %+v", rep)
	}
	contains(t, "two switches", e.nbctl(t, "ls-list"), "keel-"+netA, "keel-"+netB)
	contains(t, "port B on switch B", e.nbctl(t, "lsp-list", "keel-"+netB), portB)

	// Drift behind Keel's back, and a foreign switch.
	e.nbctl(t, "lsp-del", portA)
	e.nbctl(t, "lsp-set-addresses", portB, "fa:16:3e:00:00:0b 10.0.0.99")
	e.nbctl(t, "ls-add", "foreign")
	e.nbctl(t, "lsp-add", "foreign", "foreign-port")

	rep, err = e.c.Reconcile(e.ctx, d)
	must(t, err)
	if rep.Repaired[ovn.KindPort] != 2 || rep.Repaired[ovn.KindNetwork] != 0 || len(rep.Deleted) != 0 {
		t.Errorf("repair reconcile = %+v, want 2 ports repaired and nothing else", rep)
	}
	contains(t, "port A back", e.nbctl(t, "lsp-list", "keel-"+netA), portA)
	contains(t, "addresses restored", e.nbctl(t, "lsp-get-addresses", portB), "fa:16:3e:00:00:0b 10.0.0.5")

	rep, err = e.c.Reconcile(e.ctx, d)
	must(t, err)
	if rep.Changed() {
		t.Errorf("third reconcile changed things: %+v", rep)
	}

	// Network B goes: its rows go, the foreign switch stays.
	d.Networks, d.Subnets, d.Ports = d.Networks[:1], d.Subnets[:1], d.Ports[:1]
	rep, err = e.c.Reconcile(e.ctx, d)
	must(t, err)
	if rep.Deleted[ovn.KindNetwork] != 1 || rep.Deleted[ovn.KindSubnet] != 1 || rep.Deleted[ovn.KindPort] != 1 {
		t.Errorf("stray reconcile = %+v", rep)
	}
	ls := e.nbctl(t, "ls-list")
	contains(t, "foreign kept", ls, "(foreign)", "keel-"+netA)
	if strings.Contains(ls, netB) {
		t.Errorf("switch B still there:\n%s", ls)
	}
	contains(t, "foreign port kept", e.nbctl(t, "lsp-list", "foreign"), "foreign-port")
}

func TestSecurityGroupACLsAndMembership(t *testing.T) {
	e := start(t)
	g := secgroup.State{ID: sgWeb, Exists: true, Project: "p1", Rules: []secgroup.Rule{
		{ID: "r-ssh", Direction: secgroup.Ingress, Protocol: secgroup.TCP, PortMin: 22, PortMax: 22, RemoteCIDR: "0.0.0.0/0"},
		{ID: "r-self", Direction: secgroup.Ingress, Protocol: secgroup.AnyProtocol, RemoteGroup: sgWeb},
		{ID: "r-out", Direction: secgroup.Egress, Protocol: secgroup.AnyProtocol},
	}}
	must(t, e.c.EnsureNetwork(e.ctx, net(netA, "p1"), []subnet.State{sub(subA, netA, "p1", "10.0.0.0/24", "10.0.0.1")}))
	must(t, e.c.EnsureSecurityGroup(e.ctx, g))
	p := vmPort(portA, netA, subA, "fa:16:3e:00:00:0a", "10.0.0.5", sgWeb)
	must(t, e.c.EnsurePort(e.ctx, p))

	pg := ovn.PortGroupName(sgWeb)
	acls := e.nbctl(t, "acl-list", pg)
	contains(t, "acls", acls,
		"to-lport  1002 (outport == @"+pg+" && ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22) allow-related",
		"to-lport  1002 (outport == @"+pg+" && ip4 && ip4.src == $"+pg+"_ip4) allow-related",
		"from-lport  1002 (inport == @"+pg+" && ip4) allow-related")
	contains(t, "drop acls", e.nbctl(t, "acl-list", "keel_drop"),
		"from-lport  1001 (inport == @keel_drop && ip) drop", "to-lport  1001 (outport == @keel_drop && ip) drop")
	lsp := e.nbctl(t, "get", "Logical_Switch_Port", portA, "_uuid")
	contains(t, "member", e.nbctl(t, "get", "Port_Group", pg, "ports"), lsp)
	e.wantNoWrite(t, "EnsureSecurityGroup", func() error { return e.c.EnsureSecurityGroup(e.ctx, g) })

	// A rule removed, an ACL altered behind Keel's back: both repaired.
	g.Rules = g.Rules[:2]
	e.nbctl(t, "acl-del", pg, "to-lport", "1002", "outport == @"+pg+" && ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22")
	// The client learns of the deletion from its monitor, a moment after
	// ovn-nbctl returns: an Ensure before that sees the ACL still there.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		must(t, e.c.EnsureSecurityGroup(e.ctx, g))
		if acls = e.nbctl(t, "acl-list", pg); strings.Contains(acls, "tcp.dst == 22") || time.Now().After(deadline) {
			break
		}
	}
	contains(t, "ssh back", acls, "tcp.dst == 22")
	if strings.Contains(acls, "from-lport") {
		t.Errorf("removed egress rule still there:\n%s", acls)
	}

	// The port leaves the group.
	p.SecurityGroups = nil
	must(t, e.c.EnsurePort(e.ctx, p))
	if out := e.nbctl(t, "get", "Port_Group", pg, "ports"); strings.Contains(out, lsp) {
		t.Errorf("port still in %s: %s", pg, out)
	}
	must(t, e.c.DeleteSecurityGroup(e.ctx, secgroup.ID(sgWeb)))
	if out := e.nbctl(t, "--columns=name", "find", "Port_Group", "name="+pg); out != "" {
		t.Errorf("port group left: %s", out)
	}
}

func TestRouterSNATAndFloatingIP(t *testing.T) {
	e := start(t)
	ext := net(extN, "admin")
	ext.Kind, ext.PhysicalNetwork, ext.External, ext.MTU = network.Flat, "physnet1", true, 1500
	must(t, e.c.EnsureNetwork(e.ctx, ext, []subnet.State{sub(subE, extN, "admin", "203.0.113.0/24", "203.0.113.1")}))
	must(t, e.c.EnsureNetwork(e.ctx, net(netA, "p1"), []subnet.State{sub(subA, netA, "p1", "10.0.0.0/24", "10.0.0.1")}))
	vm := vmPort(portA, netA, subA, "fa:16:3e:00:00:0a", "10.0.0.5")
	must(t, e.c.EnsurePort(e.ctx, vm))

	ifPort := port.State{ID: rifA, Exists: true, Network: netA, Project: "p1", MAC: "fa:16:3e:00:00:0c",
		FixedIPs: []port.FixedIP{{Subnet: subA, IP: "10.0.0.1"}}, DeviceOwner: port.OwnerRouterInterface, DeviceID: rtr}
	gwPort := port.State{ID: rgwE, Exists: true, Network: extN, Project: "p1", MAC: "fa:16:3e:00:00:0d",
		FixedIPs: []port.FixedIP{{Subnet: subE, IP: "203.0.113.10"}}, DeviceOwner: port.OwnerRouterGateway, DeviceID: rtr}
	r := router.State{ID: rtr, Exists: true, Project: "p1",
		Interfaces: []router.Interface{{Subnet: subA, CIDR: "10.0.0.0/24", Port: rifA, IP: "10.0.0.1"}},
		Gateway:    &router.Gateway{Network: extN, Subnet: subE, CIDR: "203.0.113.0/24", Port: rgwE, IP: "203.0.113.10", SNAT: true}}
	opts := ovn.RouterOptions{GatewayChassis: "chassis-1"}
	ports := []port.State{ifPort, gwPort}
	must(t, e.c.EnsureRouter(e.ctx, r, ports, opts))

	lr := "keel-" + rtr
	contains(t, "router ports", e.nbctl(t, "show", lr),
		"lrp-"+rifA, "fa:16:3e:00:00:0c", "10.0.0.1/24", "lrp-"+rgwE, "203.0.113.10/24", "gateway chassis: [chassis-1]")
	contains(t, "switch side", e.nbctl(t, "--columns=type,options,addresses", "list", "Logical_Switch_Port", rifA),
		"router", "router-port=lrp-"+rifA)
	contains(t, "snat", e.nbctl(t, "lr-nat-list", lr), "snat", "203.0.113.10", "10.0.0.0/24")
	e.wantNoWrite(t, "EnsureRouter", func() error { return e.c.EnsureRouter(e.ctx, r, ports, opts) })

	f := floatingip.State{ID: fip1, Exists: true, Project: "p1", Network: extN, Subnet: subE, IP: "203.0.113.20",
		Assoc: &floatingip.Association{Port: portA, FixedIP: "10.0.0.5", Router: rtr}}
	must(t, e.c.EnsureFloatingIP(e.ctx, f))
	contains(t, "dnat_and_snat", e.nbctl(t, "lr-nat-list", lr), "dnat_and_snat", "203.0.113.20", "10.0.0.5")
	e.wantNoWrite(t, "EnsureFloatingIP", func() error { return e.c.EnsureFloatingIP(e.ctx, f) })
	e.wantNoWrite(t, "EnsureRouter (keeps the floating IP)", func() error { return e.c.EnsureRouter(e.ctx, r, ports, opts) })

	f.Assoc = nil
	must(t, e.c.EnsureFloatingIP(e.ctx, f))
	if out := e.nbctl(t, "lr-nat-list", lr); strings.Contains(out, "dnat_and_snat") {
		t.Errorf("disassociated floating ip still has NAT:\n%s", out)
	}
	must(t, e.c.DeleteRouter(e.ctx, router.ID(rtr)))
	for _, table := range []string{"Logical_Router", "Logical_Router_Port", "NAT", "Gateway_Chassis"} {
		if out := e.nbctl(t, "--columns=_uuid", "list", table); out != "" {
			t.Errorf("%s after DeleteRouter:\n%s", table, out)
		}
	}
	if out := e.nbctl(t, "lsp-list", "keel-"+netA); strings.Contains(out, rifA) {
		t.Errorf("switch-side router port left:\n%s", out)
	}
}
