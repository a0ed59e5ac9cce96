package api

import "time"

// Network is a project's layer-2 network: an overlay (the default), or a
// provider network (vlan, flat) on a named physical network.
type Network struct {
	ID              string    `json:"id" format:"uuid"`
	ProjectID       string    `json:"project_id" format:"uuid"`
	Name            string    `json:"name"`
	Kind            string    `json:"kind" enum:"overlay,vlan,flat"`
	PhysicalNetwork *string   `json:"physical_network" doc:"The physical network of a provider network (null for an overlay)"`
	VLAN            *int      `json:"vlan" doc:"The VLAN id of a vlan network (null otherwise)"`
	External        bool      `json:"external" doc:"Floating IPs come from an external network"`
	MTU             int       `json:"mtu"`
	Subnets         []string  `json:"subnets" doc:"The ids of its subnets, oldest first"`
	CreatedAt       time.Time `json:"created_at"`
}

// Pool is a range of addresses a subnet hands out, both ends included.
type Pool struct {
	Start string `json:"start" format:"ipv4"`
	End   string `json:"end" format:"ipv4"`
}

// Route is a host route DHCP gives a subnet's guests.
type Route struct {
	Destination string `json:"destination" doc:"An IPv4 network such as 192.168.0.0/16"`
	Nexthop     string `json:"nexthop" format:"ipv4"`
}

// Subnet is an IPv4 range on a network; it hands out the addresses of its
// ports.
type Subnet struct {
	ID        string    `json:"id" format:"uuid"`
	NetworkID string    `json:"network_id" format:"uuid"`
	ProjectID string    `json:"project_id" format:"uuid"`
	Name      *string   `json:"name"`
	CIDR      string    `json:"cidr"`
	Gateway   *string   `json:"gateway" doc:"Never handed out to a port (null: the subnet has no gateway)"`
	DHCP      bool      `json:"dhcp"`
	DNS       []string  `json:"dns"`
	Pools     []Pool    `json:"pools" doc:"The ranges addresses are handed out from"`
	Routes    []Route   `json:"routes"`
	InUse     int       `json:"in_use" doc:"Addresses handed out to ports"`
	CreatedAt time.Time `json:"created_at"`
}

// FixedIP is an address of a port on one of its network's subnets.
type FixedIP struct {
	SubnetID string `json:"subnet_id" format:"uuid"`
	IP       string `json:"ip" format:"ipv4"`
}

// Port is a network interface on a network: a MAC, an address, and the
// security groups whose rules let traffic through.
type Port struct {
	ID             string    `json:"id" format:"uuid"`
	NetworkID      string    `json:"network_id" format:"uuid"`
	ProjectID      string    `json:"project_id" format:"uuid"`
	Name           *string   `json:"name"`
	MAC            string    `json:"mac"`
	FixedIPs       []FixedIP `json:"fixed_ips"`
	SecurityGroups []string  `json:"security_groups" doc:"Ids of the groups it is in"`
	PortSecurity   bool      `json:"port_security" doc:"Off: no group applies and the port may use any address"`
	DeviceOwner    *string   `json:"device_owner" doc:"What uses it, e.g. compute:server (null: nothing)"`
	DeviceID       *string   `json:"device_id"`
	Host           *string   `json:"host" doc:"The host it is bound to (null: none)"`
	CreatedAt      time.Time `json:"created_at"`
}

// SecurityGroupRule allows traffic of one kind in one direction.
type SecurityGroupRule struct {
	ID          string `json:"id" format:"uuid"`
	Direction   string `json:"direction" enum:"ingress,egress"`
	EtherType   string `json:"ethertype" enum:"IPv4"`
	Protocol    string `json:"protocol" doc:"tcp, udp, icmp, any, or an IP protocol number"`
	PortMin     int    `json:"port_min,omitempty"`
	PortMax     int    `json:"port_max,omitempty"`
	ICMPType    *int   `json:"icmp_type,omitempty"`
	ICMPCode    *int   `json:"icmp_code,omitempty"`
	RemoteCIDR  string `json:"remote_cidr,omitempty"`
	RemoteGroup string `json:"remote_group_id,omitempty"`
	Description string `json:"description,omitempty"`
}

// SecurityGroup is a project's named set of rules that ports join;
// traffic no rule of a port's groups allows is dropped.
type SecurityGroup struct {
	ID          string              `json:"id" format:"uuid"`
	ProjectID   string              `json:"project_id" format:"uuid"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Default     bool                `json:"default" doc:"The project's default group (deleted only with the project)"`
	Rules       []SecurityGroupRule `json:"rules"`
	CreatedAt   time.Time           `json:"created_at"`
}

// NetworkBody is a network to create in the caller's project.
type NetworkBody struct {
	Name            string `json:"name" minLength:"1" maxLength:"255" doc:"Need not be unique"`
	Kind            string `json:"kind,omitempty" enum:"overlay,vlan,flat" doc:"overlay (the default), or a provider network: vlan or flat"`
	PhysicalNetwork string `json:"physical_network,omitempty" maxLength:"64" doc:"A provider network's physical network, as the hosts' bridge mappings name it"`
	VLAN            int    `json:"vlan,omitempty" minimum:"0" maximum:"4094" doc:"A vlan network's VLAN id"`
	External        bool   `json:"external,omitempty" doc:"Floating IPs come from it (provider networks only)"`
	MTU             int    `json:"mtu,omitempty" minimum:"0" maximum:"9216" doc:"0: 1442 for an overlay, 1500 for a provider network"`
}

// SubnetBody is a subnet to create on a network.
type SubnetBody struct {
	Network string   `json:"network" minLength:"1" maxLength:"255" doc:"Network id or name"`
	Name    string   `json:"name,omitempty" maxLength:"255"`
	CIDR    string   `json:"cidr" minLength:"1" maxLength:"64" doc:"An IPv4 network from /16 to /30, e.g. 10.0.0.0/24; it may overlap other networks' subnets, not its own network's"`
	Gateway string   `json:"gateway,omitempty" maxLength:"64" doc:"Default: the first usable address; none: no gateway"`
	DHCP    *bool    `json:"dhcp,omitempty" doc:"Default true"`
	DNS     []string `json:"dns,omitempty" maxItems:"5"`
	Pools   []Pool   `json:"pools,omitempty" maxItems:"16" doc:"Default: every usable address but the gateway"`
	Routes  []Route  `json:"routes,omitempty" maxItems:"20"`
}

// PortBody is a port to create on a network.
type PortBody struct {
	Network        string   `json:"network" minLength:"1" maxLength:"255" doc:"Network id or name"`
	Name           string   `json:"name,omitempty" maxLength:"255"`
	Subnet         string   `json:"subnet,omitempty" maxLength:"255" doc:"The subnet the address comes from (id or name; default: the network's first)"`
	IP             string   `json:"ip,omitempty" maxLength:"64" doc:"An address to ask for (default: the subnet's next free one)"`
	SecurityGroups []string `json:"security_groups,omitempty" maxItems:"32" doc:"Group ids or names (default: the project's default group)"`
	PortSecurity   *bool    `json:"port_security,omitempty" doc:"Default true; off takes no group"`
}

// PortSecurityGroupsBody replaces a port's security groups.
type PortSecurityGroupsBody struct {
	SecurityGroups []string `json:"security_groups" maxItems:"32" doc:"Group ids or names, all of them (an empty list: none, so a port with port security takes no traffic)"`
}

// SecurityGroupBody is a security group to create in the caller's project.
type SecurityGroupBody struct {
	Name        string `json:"name" minLength:"1" maxLength:"255" doc:"Not default, which names the project's default group"`
	Description string `json:"description,omitempty" maxLength:"1024"`
}

// SecurityGroupRuleBody is a rule to add to a security group.
type SecurityGroupRuleBody struct {
	Direction   string `json:"direction" enum:"ingress,egress"`
	EtherType   string `json:"ethertype,omitempty" enum:"IPv4"`
	Protocol    string `json:"protocol,omitempty" maxLength:"8" doc:"tcp, udp, icmp, any (the default), or an IP protocol number"`
	PortMin     int    `json:"port_min,omitempty" minimum:"0" maximum:"65535" doc:"tcp and udp: first destination port (0 with port_max 0: all)"`
	PortMax     int    `json:"port_max,omitempty" minimum:"0" maximum:"65535"`
	ICMPType    *int   `json:"icmp_type,omitempty" minimum:"0" maximum:"255"`
	ICMPCode    *int   `json:"icmp_code,omitempty" minimum:"0" maximum:"255"`
	RemoteCIDR  string `json:"remote_cidr,omitempty" maxLength:"64" doc:"Where traffic comes from (ingress) or goes to (egress)"`
	RemoteGroup string `json:"remote_group,omitempty" maxLength:"255" doc:"Or: members of this group (id or name)"`
	Description string `json:"description,omitempty" maxLength:"1024"`
}
