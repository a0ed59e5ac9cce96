package ovn

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/subnet"
)

// The translation from domain state to Northbound rows. Everything in this
// file is pure: rows come back without UUIDs, and the writer (the other
// files) compares them with what the NB holds and writes the difference.

// External id keys. A row carrying one of the kind keys is Keel's; Reconcile
// deletes such a row when its id is not desired, and never touches a row
// without one.
const (
	KeyNetwork    = "keel:network"
	KeySubnet     = "keel:subnet"
	KeyPort       = "keel:port"
	KeySecGroup   = "keel:security_group"
	KeyRule       = "keel:rule"
	KeyRouter     = "keel:router"
	KeyFloatingIP = "keel:floatingip"
	KeyProject    = "keel:project"
	KeyMTU        = "keel:mtu"
	// KeyOwner marks rows Keel owns that stand for no single resource (the
	// keel_drop port group): its value is "keel".
	KeyOwner = "keel:owner"
)

// DHCP lease time handed to guests, in seconds (Neutron's default).
const leaseTime = "43200"

// SwitchName is the Logical_Switch name of a network.
func SwitchName(id network.ID) string { return "keel-" + string(id) }

// RouterName is the Logical_Router name of a router.
func RouterName(id router.ID) string { return "keel-" + string(id) }

// RouterPortName is the Logical_Router_Port name of a router's port.
func RouterPortName(portID string) string { return "lrp-" + portID }

// LocalnetName is the name of a provider network's localnet port.
func LocalnetName(id network.ID) string { return "provnet-" + string(id) }

// PortGroupName is the Port_Group of a security group: port group names
// must be [A-Za-z0-9_], so the UUID's dashes become underscores.
func PortGroupName(id string) string { return "keel_" + strings.ReplaceAll(id, "-", "_") }

// DropPortGroup holds every port with port security on. Its ACLs drop all
// IP traffic in both directions at priority 1001, under the allow ACLs of
// the security groups at 1002: what no group allows is dropped. This is
// how Neutron's OVN driver does it (one shared neutron_pg_drop group,
// networking-ovn acl.py add_acls_for_drop_port_group), so that a port's
// default-deny does not depend on any one of its groups.
const DropPortGroup = "keel_drop"

// ACL priorities, as Neutron's OVN driver uses them.
const (
	priorityAllow = 1002
	priorityDrop  = 1001
)

// switchRow is a network's Logical_Switch, without ports. The MTU is kept
// in external_ids (other_config has no key for it; Neutron keeps
// neutron:mtu there too) so that a subnet's DHCP options can hand it out.
func switchRow(n network.State) nbdb.LogicalSwitch {
	return nbdb.LogicalSwitch{
		Name: SwitchName(n.ID),
		ExternalIDs: map[string]string{
			KeyNetwork: string(n.ID),
			KeyProject: n.Project,
			KeyMTU:     strconv.Itoa(n.MTU),
		},
	}
}

// localnetRow is a provider network's localnet port, or nil for an
// overlay: options:network_name is the physical network as the hosts'
// ovn-bridge-mappings name it; a VLAN network tags its traffic.
func localnetRow(n network.State) *nbdb.LogicalSwitchPort {
	if n.Kind != network.VLAN && n.Kind != network.Flat {
		return nil
	}
	lsp := &nbdb.LogicalSwitchPort{
		Name:        LocalnetName(n.ID),
		Type:        "localnet",
		Addresses:   []string{"unknown"},
		Options:     map[string]string{"network_name": n.PhysicalNetwork},
		ExternalIDs: map[string]string{KeyNetwork: string(n.ID), KeyProject: n.Project},
	}
	if n.Kind == network.VLAN {
		tag := n.VLAN
		lsp.Tag = &tag
	}
	return lsp
}

// dhcpRow is a subnet's DHCP_Options, or nil when DHCP is off. The server
// answers from the gateway's address (or, without a gateway, from the
// subnet's first address, which a guest may then hold too: OVN answers
// DHCP itself, matching on the server address or broadcast, so the guest's
// renewals still reach it) and a MAC derived from the subnet id, stable
// across rebuilds.
// mtu is the network's (0 leaves the option out).
func dhcpRow(s subnet.State, mtu int) (*nbdb.DHCPOptions, error) {
	if !s.DHCP {
		return nil, nil
	}
	prefix, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return nil, fmt.Errorf("subnet %s: %w", s.ID, err)
	}
	server := s.Gateway
	if server == "" {
		server = prefix.Masked().Addr().Next().String()
	}
	opts := map[string]string{
		"server_id":  server,
		"server_mac": serverMAC(string(s.ID)),
		"lease_time": leaseTime,
	}
	if s.Gateway != "" {
		opts["router"] = s.Gateway
	}
	if mtu > 0 {
		opts["mtu"] = strconv.Itoa(mtu)
	}
	if len(s.DNS) > 0 {
		opts["dns_server"] = "{" + strings.Join(s.DNS, ", ") + "}"
	}
	if routes := classlessRoutes(s); routes != "" {
		opts["classless_static_route"] = routes
	}
	return &nbdb.DHCPOptions{
		Cidr:        prefix.Masked().String(),
		Options:     opts,
		ExternalIDs: map[string]string{KeySubnet: string(s.ID), KeyNetwork: s.Network, KeyProject: s.Project},
	}, nil
}

// classlessRoutes is option 121: the host routes, and (as RFC 3442 asks of
// a client that gets option 121) the default route through the gateway.
func classlessRoutes(s subnet.State) string {
	if len(s.Routes) == 0 {
		return ""
	}
	var parts []string
	for _, r := range s.Routes {
		parts = append(parts, r.Destination+","+r.Nexthop)
	}
	if s.Gateway != "" {
		parts = append(parts, "0.0.0.0/0,"+s.Gateway)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// serverMAC is a locally administered unicast MAC derived from id.
func serverMAC(id string) string {
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

// isRouterPort reports whether p is a router's leg on a switch.
func isRouterPort(p port.State) bool {
	return p.DeviceOwner == port.OwnerRouterInterface || p.DeviceOwner == port.OwnerRouterGateway
}

// portRow is a port's Logical_Switch_Port, named by the port id (the
// iface-id a hypervisor's tap carries). dhcp is the UUID of the DHCP_Options
// of its first fixed IP's subnet ("" for none). A router's port is a
// switch-side port of type router, peered with RouterPortName.
func portRow(p port.State, dhcp string) nbdb.LogicalSwitchPort {
	lsp := nbdb.LogicalSwitchPort{
		Name:        string(p.ID),
		ExternalIDs: map[string]string{KeyPort: string(p.ID), KeyProject: p.Project, KeyNetwork: p.Network},
	}
	if isRouterPort(p) {
		lsp.Type = "router"
		lsp.Addresses = []string{"router"}
		lsp.Options = map[string]string{"router-port": RouterPortName(string(p.ID))}
		return lsp
	}
	addr := p.MAC
	for _, ip := range p.FixedIPs {
		addr += " " + ip.IP
	}
	lsp.Addresses = []string{addr}
	if p.PortSecurity {
		lsp.PortSecurity = []string{addr}
	}
	if dhcp != "" {
		lsp.Dhcpv4Options = &dhcp
	}
	return lsp
}

// portGroups are the port groups p belongs to: its security groups' and
// keel_drop, when port security is on (Neutron applies no security group
// to a port without port security).
func portGroups(p port.State) []string {
	if !p.PortSecurity || isRouterPort(p) {
		return nil
	}
	groups := []string{DropPortGroup}
	for _, g := range p.SecurityGroups {
		groups = append(groups, PortGroupName(g))
	}
	return groups
}

// routerRow is a router's Logical_Router, without ports and NAT.
func routerRow(r router.State) nbdb.LogicalRouter {
	return nbdb.LogicalRouter{
		Name:        RouterName(r.ID),
		ExternalIDs: map[string]string{KeyRouter: string(r.ID), KeyProject: r.Project},
	}
}

// routerPortRow is the Logical_Router_Port of one of a router's legs: the
// port's MAC, and its address with the prefix length of cidr.
func routerPortRow(r router.State, portID, mac, ip, cidr string) (nbdb.LogicalRouterPort, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nbdb.LogicalRouterPort{}, fmt.Errorf("router %s port %s: %w", r.ID, portID, err)
	}
	return nbdb.LogicalRouterPort{
		Name:        RouterPortName(portID),
		MAC:         mac,
		Networks:    []string{fmt.Sprintf("%s/%d", ip, prefix.Bits())},
		ExternalIDs: map[string]string{KeyRouter: string(r.ID), KeyPort: portID},
	}, nil
}

// snatRows are the router's SNAT rules: one per interface's subnet,
// through the gateway's address, when the gateway has SNAT on.
func snatRows(r router.State) []nbdb.NAT {
	if r.Gateway == nil || !r.Gateway.SNAT {
		return nil
	}
	var rows []nbdb.NAT
	for _, i := range r.Interfaces {
		rows = append(rows, nbdb.NAT{
			Type:        nbdb.NATTypeSNAT,
			ExternalIP:  r.Gateway.IP,
			LogicalIP:   i.CIDR,
			ExternalIDs: map[string]string{KeyRouter: string(r.ID), KeySubnet: i.Subnet},
		})
	}
	return rows
}

// fipRow is a floating IP's dnat_and_snat rule, or nil when it points
// nowhere.
func fipRow(f floatingip.State) *nbdb.NAT {
	if !f.Live() || f.Assoc == nil {
		return nil
	}
	return &nbdb.NAT{
		Type:        nbdb.NATTypeDNATAndSNAT,
		ExternalIP:  f.IP,
		LogicalIP:   f.Assoc.FixedIP,
		ExternalIDs: map[string]string{KeyFloatingIP: string(f.ID), KeyRouter: f.Assoc.Router, KeyProject: f.Project},
	}
}
