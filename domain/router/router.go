// Package router is the router aggregate: a project's logical router, with
// interfaces on its subnets and a gateway on an external network (with
// SNAT, so that servers without a floating IP reach the outside).
//
// The router does not allocate addresses or make ports: the commands layer
// makes the interface's port (owner network:router_interface) with the
// subnet's gateway address, or the gateway's port with an address of the
// external subnet, and gives the router the result; it deletes the port
// when the router lets go of it (the events carry it). The router refuses
// two interfaces on one subnet or on overlapping CIDRs, which it can check
// alone. That floating IPs no longer need its gateway before it is cleared
// is the commands layer's to check. The package decides; it never talks to
// OVN.
package router

import (
	"net/netip"
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the router stream subjects.
const AggregateType = "router"

// ID identifies a router (a UUID in canonical form).
type ID string

// MaxInterfaces bounds a router's interfaces.
const MaxInterfaces = 64

// Gateway is a router's leg on an external network.
type Gateway struct {
	Network string `json:"network_id"`
	Subnet  string `json:"subnet_id"`
	// CIDR is the external subnet's, so that interfaces cannot overlap it.
	CIDR string `json:"cidr"`
	Port string `json:"port_id"`
	IP   string `json:"ip"`
	// SNAT: the router's subnets reach the outside through IP.
	SNAT bool `json:"snat"`
}

// Interface is a router's leg on one of the project's subnets.
type Interface struct {
	Subnet string `json:"subnet_id"`
	CIDR   string `json:"cidr"`
	Port   string `json:"port_id"`
	IP     string `json:"ip"`
}

// FloatingIP is a floating IP the router translates to a fixed IP on one
// of its interfaces' subnets.
type FloatingIP struct {
	ID     string `json:"floating_ip_id"`
	Subnet string `json:"subnet_id"`
}

// State is what the decider knows about one router.
type State struct {
	ID         ID
	Exists     bool
	Deleted    bool
	Project    string
	Name       string
	Gateway    *Gateway
	Interfaces []Interface
	// FloatingIPs are those the router translates, in attach order.
	FloatingIPs []FloatingIP
	CreatedAt   time.Time
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
}

// Live reports whether the router exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// HasPort reports whether port is the port of one of the router's legs.
func (s State) HasPort(port string) bool {
	if s.Gateway != nil && s.Gateway.Port == port {
		return true
	}
	return slices.ContainsFunc(s.Interfaces, func(h Interface) bool { return h.Port == port })
}

// Command is one of the commands below.
type Command interface{ routerCommand() }

// Create makes a router.
type Create struct {
	ID      ID
	Project string
	Name    string
	At      time.Time
}

// SetGateway gives the router a gateway, or changes its SNAT.
type SetGateway struct {
	Gateway Gateway
	At      time.Time
}

// ClearGateway takes the router's gateway away.
type ClearGateway struct{ At time.Time }

// AddInterface connects the router to a subnet through a port the caller made.
type AddInterface struct {
	Interface Interface
	At        time.Time
}

// RemoveInterface disconnects the router from a subnet, named by the
// subnet or by the interface's port.
type RemoveInterface struct {
	Subnet string
	Port   string
	At     time.Time
}

// Delete removes a router without interfaces; its gateway goes with it.
type Delete struct{ At time.Time }

// AttachFloatingIP records that the router will translate a floating IP of
// the external network Network to a fixed IP on Subnet: refused unless
// the router has its gateway on that network and an interface on Subnet.
type AttachFloatingIP struct {
	FloatingIP string
	Network    string
	Subnet     string
	At         time.Time
}

// DetachFloatingIP records that the router no longer translates it.
type DetachFloatingIP struct {
	FloatingIP string
	At         time.Time
}

// Abandon closes a router id whose create never committed: a crash between
// the quota reservation and the router's first commit left the reservation
// held, and the sweep gives it back (package sagas/monitors). A create of
// this id is refused afterwards; it is refused once the router exists.
type Abandon struct {
	Reason string
	At     time.Time
}

func (Create) routerCommand()           {}
func (SetGateway) routerCommand()       {}
func (ClearGateway) routerCommand()     {}
func (AddInterface) routerCommand()     {}
func (RemoveInterface) routerCommand()  {}
func (Delete) routerCommand()           {}
func (Abandon) routerCommand()          {}
func (AttachFloatingIP) routerCommand() {}
func (DetachFloatingIP) routerCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated            = "router.created"
	TypeGatewaySet         = "router.gateway_set"
	TypeGatewayCleared     = "router.gateway_cleared"
	TypeInterfaceAdded     = "router.interface_added"
	TypeInterfaceRemoved   = "router.interface_removed"
	TypeDeleted            = "router.deleted"
	TypeAbandoned          = "router.abandoned"
	TypeFloatingIPAttached = "router.floating_ip_attached"
	TypeFloatingIPDetached = "router.floating_ip_detached"
)

// FloatingIPAttached records a floating IP the router translates.
type FloatingIPAttached struct {
	FloatingIP FloatingIP `json:"floating_ip"`
	At         time.Time  `json:"at"`
}

// FloatingIPDetached records that it no longer does.
type FloatingIPDetached struct {
	FloatingIP FloatingIP `json:"floating_ip"`
	At         time.Time  `json:"at"`
}

// EventType implements domain.Event.
func (*FloatingIPAttached) EventType() string { return TypeFloatingIPAttached }

// EventType implements domain.Event.
func (*FloatingIPDetached) EventType() string { return TypeFloatingIPDetached }

// Abandoned closes the id of a router whose create never committed (see
// Abandon); the router never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a new router.
type Created struct {
	ID      ID        `json:"id"`
	Project string    `json:"project_id"`
	Name    string    `json:"name"`
	At      time.Time `json:"at"`
}

// GatewaySet records the router's gateway (all of it, after the change).
type GatewaySet struct {
	Gateway Gateway   `json:"gateway"`
	At      time.Time `json:"at"`
}

// GatewayCleared records that the router's gateway is gone; its port is
// to be deleted.
type GatewayCleared struct {
	Gateway Gateway   `json:"gateway"`
	At      time.Time `json:"at"`
}

// InterfaceAdded records a new interface.
type InterfaceAdded struct {
	Interface Interface `json:"interface"`
	At        time.Time `json:"at"`
}

// InterfaceRemoved records that an interface is gone; its port is to be deleted.
type InterfaceRemoved struct {
	Interface Interface `json:"interface"`
	At        time.Time `json:"at"`
}

// Deleted records that the router is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*GatewaySet) EventType() string { return TypeGatewaySet }

// EventType implements domain.Event.
func (*GatewayCleared) EventType() string { return TypeGatewayCleared }

// EventType implements domain.Event.
func (*InterfaceAdded) EventType() string { return TypeInterfaceAdded }

// EventType implements domain.Event.
func (*InterfaceRemoved) EventType() string { return TypeInterfaceRemoved }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the router aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:            func() domain.Event { return &Created{} },
		TypeGatewaySet:         func() domain.Event { return &GatewaySet{} },
		TypeGatewayCleared:     func() domain.Event { return &GatewayCleared{} },
		TypeInterfaceAdded:     func() domain.Event { return &InterfaceAdded{} },
		TypeInterfaceRemoved:   func() domain.Event { return &InterfaceRemoved{} },
		TypeDeleted:            func() domain.Event { return &Deleted{} },
		TypeAbandoned:          func() domain.Event { return &Abandoned{} },
		TypeFloatingIPAttached: func() domain.Event { return &FloatingIPAttached{} },
		TypeFloatingIPDetached: func() domain.Event { return &FloatingIPDetached{} },
	},
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		if s.Exists {
			return nil, domain.Conflictf("router %s already exists", s.ID)
		}
		if s.Abandoned {
			return nil, domain.Conflictf("the create of router %s was abandoned: it was cut short and its quota given back; send the request again with a new Idempotency-Key", s.ID)
		}
		if cr.Project == "" {
			return nil, domain.Invalidf("a router belongs to a project")
		}
		if err := domain.CheckName("name", cr.Name); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: cr.ID, Project: cr.Project, Name: cr.Name, At: cr.At}}, nil
	}
	if a, ok := c.(Abandon); ok {
		switch {
		case s.Exists:
			return nil, domain.Conflictf("router %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return []domain.Event{&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At}}, nil
	}
	if !s.Live() {
		return nil, domain.NotFoundf("router %s not found", s.ID)
	}
	switch c := c.(type) {
	case SetGateway:
		return decideSetGateway(s, c)
	case ClearGateway:
		if s.Gateway == nil {
			return nil, nil
		}
		if err := s.floatingIPsUse("its gateway", ""); err != nil {
			return nil, err
		}
		return []domain.Event{&GatewayCleared{Gateway: *s.Gateway, At: c.At}}, nil
	case AttachFloatingIP:
		return decideAttachFloatingIP(s, c)
	case DetachFloatingIP:
		i := slices.IndexFunc(s.FloatingIPs, func(f FloatingIP) bool { return f.ID == c.FloatingIP })
		if i < 0 {
			return nil, nil
		}
		return []domain.Event{&FloatingIPDetached{FloatingIP: s.FloatingIPs[i], At: c.At}}, nil
	case AddInterface:
		return decideAddInterface(s, c)
	case RemoveInterface:
		return decideRemoveInterface(s, c)
	case Delete:
		return decideDelete(s, c)
	default:
		return nil, domain.Invalidf("router: unknown command %T", c)
	}
}

func decideSetGateway(s State, c SetGateway) ([]domain.Event, error) {
	g := c.Gateway
	if g.Network == "" || g.Subnet == "" || g.Port == "" {
		return nil, domain.Invalidf("a gateway needs an external network, its subnet and the gateway's port")
	}
	p, err := checkLeg("gateway", g.CIDR, g.IP)
	if err != nil {
		return nil, err
	}
	if old := s.Gateway; old != nil {
		if old.Network != g.Network || old.Subnet != g.Subnet || old.Port != g.Port || old.IP != g.IP {
			return nil, domain.Conflictf("router %s already has a gateway on network %s (%s); clear it first", s.Name, old.Network, old.IP)
		}
		if old.SNAT == g.SNAT {
			return nil, nil
		}
	}
	if err := s.overlaps(p, "", "the external subnet"); err != nil {
		return nil, err
	}
	return []domain.Event{&GatewaySet{Gateway: g, At: c.At}}, nil
}

func decideAddInterface(s State, c AddInterface) ([]domain.Event, error) {
	in := c.Interface
	if in.Subnet == "" || in.Port == "" {
		return nil, domain.Invalidf("an interface needs a subnet and the interface's port")
	}
	p, err := checkLeg("interface", in.CIDR, in.IP)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(s.Interfaces, func(h Interface) bool { return h.Subnet == in.Subnet }); i >= 0 {
		if s.Interfaces[i] == in {
			return nil, nil
		}
		return nil, domain.Conflictf("router %s already has an interface on subnet %s (port %s)", s.Name, in.Subnet, s.Interfaces[i].Port)
	}
	if len(s.Interfaces) >= MaxInterfaces {
		return nil, domain.Conflictf("router %s already has %d interfaces, the most a router may have", s.Name, MaxInterfaces)
	}
	if err := s.overlaps(p, in.Subnet, "subnet "+in.Subnet); err != nil {
		return nil, err
	}
	return []domain.Event{&InterfaceAdded{Interface: in, At: c.At}}, nil
}

// checkLeg reads the CIDR and address of a gateway or an interface.
func checkLeg(what, cidr, ip string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return netip.Prefix{}, domain.Invalidf("the %s's cidr %q is not an IPv4 network such as 10.0.0.0/24", what, cidr)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() || !p.Contains(a) {
		return netip.Prefix{}, domain.Invalidf("the %s's address %q is not an IPv4 address in %s", what, ip, cidr)
	}
	return p, nil
}

// overlaps refuses a new leg whose CIDR overlaps one the router has: it
// could not tell where to send a packet for an address in both.
func (s State) overlaps(p netip.Prefix, subnet, what string) error {
	for _, h := range s.Interfaces {
		if q, err := netip.ParsePrefix(h.CIDR); err == nil && h.Subnet != subnet && q.Overlaps(p) {
			return domain.Conflictf("%s (%s) overlaps subnet %s (%s), which router %s already connects: a router cannot route between overlapping networks", what, p, h.Subnet, h.CIDR, s.Name)
		}
	}
	if g := s.Gateway; g != nil && subnet != "" {
		if q, err := netip.ParsePrefix(g.CIDR); err == nil && q.Overlaps(p) {
			return domain.Conflictf("%s (%s) overlaps the external subnet %s (%s) of router %s's gateway", what, p, g.Subnet, g.CIDR, s.Name)
		}
	}
	return nil
}

func decideAttachFloatingIP(s State, c AttachFloatingIP) ([]domain.Event, error) {
	if c.FloatingIP == "" || c.Network == "" || c.Subnet == "" {
		return nil, domain.Invalidf("attaching a floating IP to a router needs the floating IP, its external network and the subnet of the fixed IP")
	}
	if s.Gateway == nil || s.Gateway.Network != c.Network {
		return nil, domain.Conflictf("router %s has no gateway on the floating IP's external network %s; set one first", s.Name, c.Network)
	}
	if !slices.ContainsFunc(s.Interfaces, func(h Interface) bool { return h.Subnet == c.Subnet }) {
		return nil, domain.Conflictf("router %s has no interface on subnet %s, the port's; add one first", s.Name, c.Subnet)
	}
	f := FloatingIP{ID: c.FloatingIP, Subnet: c.Subnet}
	if i := slices.IndexFunc(s.FloatingIPs, func(h FloatingIP) bool { return h.ID == f.ID }); i >= 0 {
		if s.FloatingIPs[i] == f {
			return nil, nil
		}
		return nil, domain.Conflictf("router %s already translates floating IP %s to subnet %s", s.Name, f.ID, s.FloatingIPs[i].Subnet)
	}
	return []domain.Event{&FloatingIPAttached{FloatingIP: f, At: c.At}}, nil
}

// floatingIPsUse refuses to take away what floating IPs reach their ports
// through: the gateway (subnet ""), or the interface on subnet.
func (s State) floatingIPsUse(what, subnet string) error {
	var ids []string
	for _, f := range s.FloatingIPs {
		if subnet == "" || f.Subnet == subnet {
			ids = append(ids, f.ID)
		}
	}
	if len(ids) > 0 {
		return domain.Conflictf("router %s translates %d floating IP(s) through %s (%v); disassociate them first", s.Name, len(ids), what, ids)
	}
	return nil
}

func decideRemoveInterface(s State, c RemoveInterface) ([]domain.Event, error) {
	if c.Subnet == "" && c.Port == "" {
		return nil, domain.Invalidf("name the interface to remove by its subnet or its port")
	}
	i := slices.IndexFunc(s.Interfaces, func(h Interface) bool {
		return (c.Subnet == "" || h.Subnet == c.Subnet) && (c.Port == "" || h.Port == c.Port)
	})
	if i < 0 {
		return nil, domain.NotFoundf("router %s has no interface on subnet %q with port %q", s.Name, c.Subnet, c.Port)
	}
	if err := s.floatingIPsUse("its interface on subnet "+s.Interfaces[i].Subnet, s.Interfaces[i].Subnet); err != nil {
		return nil, err
	}
	return []domain.Event{&InterfaceRemoved{Interface: s.Interfaces[i], At: c.At}}, nil
}

func decideDelete(s State, c Delete) ([]domain.Event, error) {
	if n := len(s.Interfaces); n > 0 {
		subnets := make([]string, n)
		for i, in := range s.Interfaces {
			subnets[i] = in.Subnet
		}
		return nil, domain.Conflictf("router %s still has %d interface(s), on subnets %v; remove them first", s.Name, n, subnets)
	}
	if err := s.floatingIPsUse("its gateway", ""); err != nil {
		return nil, err
	}
	var evs []domain.Event
	if s.Gateway != nil {
		evs = append(evs, &GatewayCleared{Gateway: *s.Gateway, At: c.At})
	}
	return append(evs, &Deleted{At: c.At}), nil
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Project: e.Project, Name: e.Name, CreatedAt: e.At}
	case *GatewaySet:
		g := e.Gateway
		s.Gateway = &g
	case *GatewayCleared:
		s.Gateway = nil
	case *InterfaceAdded:
		s.Interfaces = append(slices.Clip(s.Interfaces), e.Interface)
	case *InterfaceRemoved:
		s.Interfaces = slices.DeleteFunc(slices.Clone(s.Interfaces), func(h Interface) bool { return h == e.Interface })
	case *Deleted:
		s.Deleted = true
	case *Abandoned:
		s.ID, s.Abandoned = e.ID, true
	case *FloatingIPAttached:
		s.FloatingIPs = append(slices.Clip(s.FloatingIPs), e.FloatingIP)
	case *FloatingIPDetached:
		s.FloatingIPs = slices.DeleteFunc(slices.Clone(s.FloatingIPs), func(f FloatingIP) bool { return f.ID == e.FloatingIP.ID })
	}
	return s
}
