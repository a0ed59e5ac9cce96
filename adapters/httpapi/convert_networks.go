package httpapi

import (
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// The networking resources in their API form: from read-model rows (the
// reads), and from the aggregate's state (the answer to a create, before
// the read model has it).

func networkOut(n postgres.Network) api.Network {
	return api.Network{ID: n.ID, ProjectID: n.ProjectID, Name: n.Name, Kind: n.Kind, PhysicalNetwork: n.PhysicalNetwork, VLAN: n.VLAN,
		External: n.External, MTU: n.MTU, Subnets: n.Subnets, CreatedAt: n.CreatedAt}
}

func networkView(s network.State) api.Network {
	return api.Network{ID: string(s.ID), ProjectID: s.Project, Name: s.Name, Kind: string(s.Kind), PhysicalNetwork: optional(s.PhysicalNetwork),
		VLAN: optionalInt(s.VLAN), External: s.External, MTU: s.MTU, Subnets: s.Subnets, CreatedAt: s.CreatedAt}
}

func subnetOut(s postgres.Subnet) api.Subnet {
	return api.Subnet{ID: s.ID, NetworkID: s.NetworkID, ProjectID: s.ProjectID, Name: s.Name, CIDR: s.CIDR, Gateway: s.Gateway, DHCP: s.DHCP,
		DNS: s.DNS, Pools: all(s.Pools, poolOut), Routes: all(s.Routes, routeOut), InUse: s.InUse, CreatedAt: s.CreatedAt}
}

func subnetView(s subnet.State) api.Subnet {
	return api.Subnet{ID: string(s.ID), NetworkID: s.Network, ProjectID: s.Project, Name: optional(s.Name), CIDR: s.CIDR, Gateway: optional(s.Gateway),
		DHCP: s.DHCP, DNS: s.DNS, Pools: all(s.Pools, poolOut), Routes: all(s.Routes, routeOut), InUse: s.InUse, CreatedAt: s.CreatedAt}
}

func poolOut(p subnet.Pool) api.Pool { return api.Pool{Start: p.Start, End: p.End} }
func routeOut(r subnet.Route) api.Route {
	return api.Route{Destination: r.Destination, Nexthop: r.Nexthop}
}
func fixedIPOut(f port.FixedIP) api.FixedIP {
	return api.FixedIP{SubnetID: f.Subnet, IP: f.IP}
}

func portOut(p postgres.Port) api.Port {
	return api.Port{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, Name: p.Name, MAC: p.MAC, FixedIPs: all(p.FixedIPs, fixedIPOut),
		SecurityGroups: p.SecurityGroups, PortSecurity: p.PortSecurity, DeviceOwner: p.DeviceOwner, DeviceID: p.DeviceID, Host: p.Host, CreatedAt: p.CreatedAt}
}

func portView(s port.State) api.Port {
	return api.Port{ID: string(s.ID), NetworkID: s.Network, ProjectID: s.Project, Name: optional(s.Name), MAC: s.MAC, FixedIPs: all(s.FixedIPs, fixedIPOut),
		SecurityGroups: s.SecurityGroups, PortSecurity: s.PortSecurity, DeviceOwner: optional(s.DeviceOwner), DeviceID: optional(s.DeviceID),
		Host: optional(s.Host), CreatedAt: s.CreatedAt}
}

func securityGroupOut(g postgres.SecurityGroup) api.SecurityGroup {
	return api.SecurityGroup{ID: g.ID, ProjectID: g.ProjectID, Name: g.Name, Description: g.Description, Default: g.Default,
		Rules: all(g.Rules, ruleView), CreatedAt: g.CreatedAt}
}

func securityGroupView(s secgroup.State) api.SecurityGroup {
	return api.SecurityGroup{ID: string(s.ID), ProjectID: s.Project, Name: s.Name, Description: s.Description, Default: s.Default,
		Rules: all(s.Rules, ruleView), CreatedAt: s.CreatedAt}
}

func ruleView(r secgroup.Rule) api.SecurityGroupRule {
	return api.SecurityGroupRule{ID: r.ID, Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol, PortMin: r.PortMin, PortMax: r.PortMax,
		ICMPType: r.ICMPType, ICMPCode: r.ICMPCode, RemoteCIDR: r.RemoteCIDR, RemoteGroup: r.RemoteGroup, Description: r.Description}
}

// optional is nil for "", as the read model's NULL.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optionalInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
