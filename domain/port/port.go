// Package port is the port aggregate: a virtual NIC on a network, with its
// MAC address, its fixed IPs, its security groups, the device that owns it
// (a server, a router) and the host it is bound to.
//
// A port does not hand out addresses: the commands layer allocates each
// fixed IP from its subnet (package subnet) before the port's first commit,
// with the port id as the key, and releases them when the create fails or
// port.deleted is written (it lists them). A port does not check that its
// subnets belong to its network or that its security groups exist; the
// commands layer reads them first. The package decides; it never talks to
// OVN.
package port

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the port stream subjects.
const AggregateType = "port"

// ID identifies a port (a UUID in canonical form).
type ID string

// Device owners Keel itself sets; a user's own port has none.
const (
	OwnerServer          = "compute:server"
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floating_ip"
	OwnerDHCP            = "network:dhcp"
)

// networkOwners own ports that go with their device: such a port is
// deleted by removing the interface, the gateway or the floating IP.
var networkOwners = []string{OwnerRouterInterface, OwnerRouterGateway, OwnerFloatingIP, OwnerDHCP}

// Bounds of a port.
const (
	MaxFixedIPs       = 16
	MaxSecurityGroups = 32
	MaxDeviceField    = 255
)

// FixedIP is an address the port holds on one of its network's subnets.
type FixedIP struct {
	Subnet string `json:"subnet_id"`
	IP     string `json:"ip"`
}

// State is what the decider knows about one port.
type State struct {
	ID             ID
	Exists         bool
	Deleted        bool
	Network        string
	Project        string
	Name           string
	MAC            string
	FixedIPs       []FixedIP
	SecurityGroups []string
	PortSecurity   bool
	DeviceOwner    string
	DeviceID       string
	// Host is the host the port is bound to ("" when unbound).
	Host      string
	CreatedAt time.Time
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
}

// Live reports whether the port exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// Command is one of the commands in commands.go.
type Command interface{ portCommand() }

// Decider is the port aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:     AggregateType,
	Decide:   Decide,
	Evolve:   Evolve,
	Init:     func(id string) State { return State{ID: ID(id)} },
	Registry: registry,
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Network: e.Network, Project: e.Project, Name: e.Name, MAC: e.MAC, FixedIPs: e.FixedIPs,
			SecurityGroups: e.SecurityGroups, PortSecurity: e.PortSecurity, DeviceOwner: e.DeviceOwner, DeviceID: e.DeviceID, CreatedAt: e.CreatedAt}
	case *Bound:
		s.Host = e.Host
	case *Unbound:
		s.Host = ""
	case *DeviceAttached:
		s.DeviceOwner, s.DeviceID = e.DeviceOwner, e.DeviceID
	case *DeviceDetached:
		s.DeviceOwner, s.DeviceID, s.Host = "", "", ""
	case *SecurityGroupsSet:
		s.SecurityGroups = e.SecurityGroups
	case *Deleted:
		s.Deleted, s.Host = true, ""
	case *Abandoned:
		s.Abandoned = true
	}
	return s
}

// checkMAC returns mac in its canonical form (lowercase, colons). Any
// unicast Ethernet address is accepted; one Keel generated must also be
// locally administered, so it can never clash with a vendor's NIC.
func checkMAC(mac string, generated bool) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", domain.Invalidf("MAC address %q is not a 6-byte Ethernet address such as fa:16:3e:12:34:56", mac)
	}
	switch {
	case hw[0]&1 != 0:
		return "", domain.Invalidf("MAC address %s is a multicast address; a port needs a unicast one (the lowest bit of the first byte clear)", hw)
	case slices.Equal(hw, make(net.HardwareAddr, 6)):
		return "", domain.Invalidf("MAC address %s is all zeros", hw)
	case generated && hw[0]&2 == 0:
		return "", domain.Invalidf("generated MAC address %s is not locally administered (the second-lowest bit of the first byte must be set)", hw)
	}
	return hw.String(), nil
}

func checkFixedIPs(ips []FixedIP) error {
	if len(ips) > MaxFixedIPs {
		return domain.Invalidf("a port holds at most %d fixed IPs, got %d", MaxFixedIPs, len(ips))
	}
	for i, f := range ips {
		if f.Subnet == "" {
			return domain.Invalidf("fixed IP %q names no subnet", f.IP)
		}
		a, err := netip.ParseAddr(f.IP)
		if err != nil || !a.Is4() || a.String() != f.IP {
			return domain.Invalidf("fixed IP %q is not an IPv4 address such as 10.0.0.5", f.IP)
		}
		if slices.Contains(ips[:i], f) {
			return domain.Invalidf("fixed IP %s on subnet %s is listed twice", f.IP, f.Subnet)
		}
	}
	return nil
}

func checkSecurityGroups(groups []string, portSecurity bool) error {
	if len(groups) > 0 && !portSecurity {
		return domain.Invalidf("port security is off, so security groups would not apply; remove them or turn port security on")
	}
	if len(groups) > MaxSecurityGroups {
		return domain.Invalidf("a port has at most %d security groups, got %d", MaxSecurityGroups, len(groups))
	}
	for i, g := range groups {
		if g == "" {
			return domain.Invalidf("a security group id must not be empty")
		}
		if slices.Contains(groups[:i], g) {
			return domain.Invalidf("security group %s is listed twice", g)
		}
	}
	return nil
}

func checkDevice(owner, id string) error {
	if id != "" && owner == "" {
		return domain.Invalidf("a device id needs a device owner (such as %s)", OwnerServer)
	}
	if err := domain.CheckTextUpTo("device owner", owner, MaxDeviceField); err != nil {
		return err
	}
	return domain.CheckTextUpTo("device id", id, MaxDeviceField)
}
