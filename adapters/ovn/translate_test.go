package ovn

import (
	"reflect"
	"testing"

	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

func TestNames(t *testing.T) {
	id := "6f1c2a9e-0b7d-4c55-9d1e-2f3a4b5c6d7e"
	if got := PortGroupName(id); got != "keel_6f1c2a9e_0b7d_4c55_9d1e_2f3a4b5c6d7e" {
		t.Errorf("PortGroupName = %s", got)
	}
	if got := SwitchName(network.ID(id)); got != "keel-"+id {
		t.Errorf("SwitchName = %s", got)
	}
}

func TestSwitchAndLocalnet(t *testing.T) {
	n := network.State{ID: "n1", Project: "p1", Kind: network.Overlay, MTU: 1442}
	ls := switchRow(n)
	if ls.Name != "keel-n1" || !reflect.DeepEqual(ls.ExternalIDs, map[string]string{KeyNetwork: "n1", KeyProject: "p1", KeyMTU: "1442"}) {
		t.Errorf("switch = %+v", ls)
	}
	if localnetRow(n) != nil {
		t.Error("an overlay network has a localnet port")
	}
	n.Kind, n.PhysicalNetwork, n.VLAN = network.VLAN, "physnet1", 42
	ln := localnetRow(n)
	if ln == nil || ln.Type != "localnet" || ln.Options["network_name"] != "physnet1" || ln.Tag == nil || *ln.Tag != 42 {
		t.Errorf("vlan localnet = %+v", ln)
	}
	n.Kind = network.Flat
	if ln := localnetRow(n); ln == nil || ln.Tag != nil {
		t.Errorf("flat localnet = %+v", ln)
	}
}

func TestDHCPOptions(t *testing.T) {
	s := subnet.State{ID: "s1", Network: "n1", Project: "p1", CIDR: "10.0.0.0/24", Gateway: "10.0.0.1", DHCP: true,
		DNS: []string{"10.0.0.2", "9.9.9.9"}, Routes: []subnet.Route{{Destination: "192.168.0.0/16", Nexthop: "10.0.0.254"}}}
	d, err := dhcpRow(s, 1442)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"server_id": "10.0.0.1", "server_mac": serverMAC("s1"), "lease_time": "43200", "router": "10.0.0.1", "mtu": "1442",
		"dns_server":             "{10.0.0.2, 9.9.9.9}",
		"classless_static_route": "{192.168.0.0/16,10.0.0.254, 0.0.0.0/0,10.0.0.1}",
	}
	if d.Cidr != "10.0.0.0/24" || !reflect.DeepEqual(d.Options, want) || d.ExternalIDs[KeySubnet] != "s1" {
		t.Errorf("dhcp = %+v", d)
	}
	s.Gateway = ""
	if d, _ := dhcpRow(s, 0); d.Options["router"] != "" || d.Options["server_id"] != "10.0.0.1" || d.Options["mtu"] != "" {
		t.Errorf("dhcp without gateway = %v", d.Options)
	}
	s.DHCP = false
	if d, _ := dhcpRow(s, 0); d != nil {
		t.Errorf("dhcp off gives %+v", d)
	}
}

func TestPortRow(t *testing.T) {
	p := port.State{ID: "p1", Network: "n1", Project: "pr", MAC: "fa:16:3e:00:00:01", PortSecurity: true,
		FixedIPs: []port.FixedIP{{Subnet: "s1", IP: "10.0.0.5"}}, SecurityGroups: []string{"g-1"}}
	lsp := portRow(p, "dhcp-uuid")
	if lsp.Name != "p1" || !reflect.DeepEqual(lsp.Addresses, []string{"fa:16:3e:00:00:01 10.0.0.5"}) ||
		!reflect.DeepEqual(lsp.PortSecurity, lsp.Addresses) || *lsp.Dhcpv4Options != "dhcp-uuid" || lsp.ExternalIDs[KeyPort] != "p1" {
		t.Errorf("lsp = %+v", lsp)
	}
	if got := portGroups(p); !reflect.DeepEqual(got, []string{DropPortGroup, "keel_g_1"}) {
		t.Errorf("groups = %v", got)
	}
	p.PortSecurity = false
	if lsp := portRow(p, ""); lsp.PortSecurity != nil || lsp.Dhcpv4Options != nil || portGroups(p) != nil {
		t.Errorf("no port security: %+v, groups %v", lsp, portGroups(p))
	}
	p.DeviceOwner = port.OwnerRouterInterface
	if lsp := portRow(p, ""); lsp.Type != "router" || lsp.Options["router-port"] != "lrp-p1" || lsp.Addresses[0] != "router" {
		t.Errorf("router port = %+v", lsp)
	}
}

func intp(i int) *int { return &i }

func TestRuleMatches(t *testing.T) {
	pg := "keel_g"
	for _, c := range []struct {
		rule secgroup.Rule
		want string
	}{
		{secgroup.Rule{Direction: secgroup.Egress, Protocol: secgroup.AnyProtocol}, "inport == @keel_g && ip4"},
		{secgroup.Rule{Direction: secgroup.Ingress, Protocol: secgroup.TCP, PortMin: 22, PortMax: 22, RemoteCIDR: "0.0.0.0/0"},
			"outport == @keel_g && ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22"},
		{secgroup.Rule{Direction: secgroup.Ingress, Protocol: secgroup.UDP, PortMin: 1000, PortMax: 2000},
			"outport == @keel_g && ip4 && udp && udp.dst >= 1000 && udp.dst <= 2000"},
		{secgroup.Rule{Direction: secgroup.Ingress, Protocol: secgroup.AnyProtocol, RemoteGroup: "g-2"},
			"outport == @keel_g && ip4 && ip4.src == $keel_g_2_ip4"},
		{secgroup.Rule{Direction: secgroup.Egress, Protocol: secgroup.ICMP, ICMPType: intp(8), ICMPCode: intp(0), RemoteCIDR: "10.0.0.0/8"},
			"inport == @keel_g && ip4 && ip4.dst == 10.0.0.0/8 && icmp4 && icmp4.type == 8 && icmp4.code == 0"},
		{secgroup.Rule{Direction: secgroup.Ingress, Protocol: "47"}, "outport == @keel_g && ip4 && ip.proto == 47"},
	} {
		if got := ruleMatch(pg, c.rule); got != c.want {
			t.Errorf("ruleMatch(%+v)\n got %s\nwant %s", c.rule, got, c.want)
		}
	}
	acl := ruleACL(secgroup.State{ID: "g"}, secgroup.Rule{ID: "r1", Direction: secgroup.Ingress})
	if acl.Direction != "to-lport" || acl.Priority != 1002 || acl.Action != "allow-related" || acl.ExternalIDs[KeyRule] != "r1" {
		t.Errorf("acl = %+v", acl)
	}
}

func TestRouterRows(t *testing.T) {
	r := router.State{ID: "r1", Project: "p", Interfaces: []router.Interface{{Subnet: "s1", CIDR: "10.0.0.0/24", Port: "ip1", IP: "10.0.0.1"}},
		Gateway: &router.Gateway{Network: "ext", Subnet: "es", CIDR: "203.0.113.0/24", Port: "gp", IP: "203.0.113.10", SNAT: true}}
	lrp, err := routerPortRow(r, "ip1", "fa:16:3e:00:00:09", "10.0.0.1", "10.0.0.0/24")
	if err != nil || lrp.Name != "lrp-ip1" || lrp.Networks[0] != "10.0.0.1/24" {
		t.Errorf("lrp = %+v, %v", lrp, err)
	}
	nats := snatRows(r)
	if len(nats) != 1 || nats[0].Type != "snat" || nats[0].ExternalIP != "203.0.113.10" || nats[0].LogicalIP != "10.0.0.0/24" {
		t.Errorf("snat = %+v", nats)
	}
	r.Gateway.SNAT = false
	if snatRows(r) != nil {
		t.Error("snat without SNAT")
	}
	f := floatingip.State{ID: "f", Exists: true, IP: "203.0.113.20", Assoc: &floatingip.Association{Port: "p", FixedIP: "10.0.0.5", Router: "r1"}}
	if n := fipRow(f); n == nil || n.Type != "dnat_and_snat" || n.ExternalIP != "203.0.113.20" || n.LogicalIP != "10.0.0.5" {
		t.Errorf("fip = %+v", n)
	}
	f.Assoc = nil
	if fipRow(f) != nil {
		t.Error("unassociated fip has a NAT")
	}
}
