// Package floatingip is the floating IP aggregate: an address of an
// external network that a project holds, and that a router translates to
// the fixed IP of one of its ports (OVN's dnat_and_snat).
//
// The floating IP does not allocate its address: the commands layer
// allocates it from the external subnet (package subnet) with the floating
// IP's id as the key before the first commit, and releases it after
// floatingip.deleted (which names it). That the port is reachable from the
// external network through the router it names is the commands layer's to
// find. The package decides; it never talks to OVN.
package floatingip

import (
	"net/netip"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the floating IP stream subjects.
const AggregateType = "floatingip"

// ID identifies a floating IP (a UUID in canonical form).
type ID string

// Association is where a floating IP points.
type Association struct {
	Port    string `json:"port_id"`
	FixedIP string `json:"fixed_ip"`
	// Router is the router that translates it.
	Router string `json:"router_id"`
}

// State is what the decider knows about one floating IP.
type State struct {
	ID        ID
	Exists    bool
	Deleted   bool
	Project   string
	Network   string
	Subnet    string
	IP        string
	Assoc     *Association
	CreatedAt time.Time
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
}

// Live reports whether the floating IP exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// Command is one of the commands below.
type Command interface{ floatingIPCommand() }

// Create records a floating IP whose address the caller allocated.
type Create struct {
	ID      ID
	Project string
	Network string
	Subnet  string
	IP      string
	At      time.Time
}

// Associate points the floating IP at a port's fixed IP.
type Associate struct {
	Association Association
	At          time.Time
}

// Disassociate points it nowhere.
type Disassociate struct{ At time.Time }

// Delete gives the floating IP up (disassociating it first).
type Delete struct{ At time.Time }

// Abandon closes a floating IP id whose create never committed: a crash
// between the address allocation (or the quota reservation) and the
// floating IP's first commit left them held, and the sweeps give them back
// (package sagas/monitors). A create of this id is refused afterwards, so a
// late retry cannot take an address handed out again; it is refused once
// the floating IP exists.
type Abandon struct {
	Reason string
	At     time.Time
}

func (Create) floatingIPCommand()       {}
func (Associate) floatingIPCommand()    {}
func (Disassociate) floatingIPCommand() {}
func (Delete) floatingIPCommand()       {}
func (Abandon) floatingIPCommand()      {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated       = "floatingip.created"
	TypeAssociated    = "floatingip.associated"
	TypeDisassociated = "floatingip.disassociated"
	TypeDeleted       = "floatingip.deleted"
	TypeAbandoned     = "floatingip.abandoned"
)

// Abandoned closes the id of a floating IP whose create never committed
// (see Abandon); the floating IP never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a floating IP.
type Created struct {
	ID      ID        `json:"id"`
	Project string    `json:"project_id"`
	Network string    `json:"network_id"`
	Subnet  string    `json:"subnet_id"`
	IP      string    `json:"ip"`
	At      time.Time `json:"at"`
}

// Associated records where the floating IP points now.
type Associated struct {
	Association Association `json:"association"`
	At          time.Time   `json:"at"`
}

// Disassociated records that it points nowhere any more (and where it did).
type Disassociated struct {
	Association Association `json:"association"`
	At          time.Time   `json:"at"`
}

// Deleted records that the floating IP is gone; its address goes back to
// its subnet.
type Deleted struct {
	Subnet string    `json:"subnet_id"`
	IP     string    `json:"ip"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Associated) EventType() string { return TypeAssociated }

// EventType implements domain.Event.
func (*Disassociated) EventType() string { return TypeDisassociated }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the floating IP aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:       func() domain.Event { return &Created{} },
		TypeAssociated:    func() domain.Event { return &Associated{} },
		TypeDisassociated: func() domain.Event { return &Disassociated{} },
		TypeDeleted:       func() domain.Event { return &Deleted{} },
		TypeAbandoned:     func() domain.Event { return &Abandoned{} },
	},
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		return decideCreate(s, cr)
	}
	if a, ok := c.(Abandon); ok {
		switch {
		case s.Exists:
			return nil, domain.Conflictf("floating IP %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return []domain.Event{&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At}}, nil
	}
	if !s.Live() {
		return nil, domain.NotFoundf("floating IP %s not found", s.ID)
	}
	switch c := c.(type) {
	case Associate:
		return decideAssociate(s, c)
	case Disassociate:
		if s.Assoc == nil {
			return nil, nil
		}
		return []domain.Event{&Disassociated{Association: *s.Assoc, At: c.At}}, nil
	case Delete:
		var evs []domain.Event
		if s.Assoc != nil {
			evs = append(evs, &Disassociated{Association: *s.Assoc, At: c.At})
		}
		return append(evs, &Deleted{Subnet: s.Subnet, IP: s.IP, At: c.At}), nil
	default:
		return nil, domain.Invalidf("floating IP: unknown command %T", c)
	}
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("floating IP %s already exists", s.ID)
	}
	if s.Abandoned {
		return nil, domain.Conflictf("the create of floating IP %s was abandoned: it was cut short and its address given back; send the request again with a new Idempotency-Key", s.ID)
	}
	if c.Project == "" || c.Network == "" || c.Subnet == "" {
		return nil, domain.Invalidf("a floating IP belongs to a project and comes from an external network's subnet")
	}
	if !isIPv4(c.IP) {
		return nil, domain.Invalidf("floating IP address %q is not an IPv4 address", c.IP)
	}
	return []domain.Event{&Created{ID: c.ID, Project: c.Project, Network: c.Network, Subnet: c.Subnet, IP: c.IP, At: c.At}}, nil
}

func decideAssociate(s State, c Associate) ([]domain.Event, error) {
	a := c.Association
	if a.Port == "" || a.Router == "" {
		return nil, domain.Invalidf("associating a floating IP needs a port and the router that reaches it")
	}
	if !isIPv4(a.FixedIP) {
		return nil, domain.Invalidf("fixed IP %q is not an IPv4 address", a.FixedIP)
	}
	if old := s.Assoc; old != nil {
		if *old == a {
			return nil, nil
		}
		return nil, domain.Conflictf("floating IP %s is associated with port %s (%s); disassociate it first", s.IP, old.Port, old.FixedIP)
	}
	return []domain.Event{&Associated{Association: a, At: c.At}}, nil
}

func isIPv4(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Is4() && a.String() == ip
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Project: e.Project, Network: e.Network, Subnet: e.Subnet, IP: e.IP, CreatedAt: e.At}
	case *Associated:
		a := e.Association
		s.Assoc = &a
	case *Disassociated:
		s.Assoc = nil
	case *Deleted:
		s.Deleted = true
	case *Abandoned:
		s.ID, s.Abandoned = e.ID, true
	}
	return s
}
