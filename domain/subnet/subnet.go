// Package subnet is the subnet aggregate: an IPv4 range on a network, with
// its gateway, DHCP settings, DNS servers, allocation pools and host
// routes, and the addresses it has handed out (IPAM).
//
// IPAM is event-sourced here: an address is taken by an
// address_allocated commit on the subnet's own stream, under optimistic
// concurrency, so two concurrent requests can never get the same one; the
// loser of a race decides again on the new state and gets the next address,
// or "subnet exhausted". The subnet keeps a bitset of the addresses in use
// and their count, not who holds them: a retried Allocate is recognised by
// its command id, and a Release names its address (see docs/decisions.md,
// ADR 22). Only IPv4 for now.
//
// The subnet does not know its ports or floating IPs. The commands layer
// allocates an address here before the port's (or floating IP's) first
// commit, releases it when that commit fails or the port goes, and sweeps
// what a crash between the two left behind. The package decides; it never
// talks to OVN.
package subnet

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the subnet stream subjects.
const AggregateType = "subnet"

// ID identifies a subnet (a UUID in canonical form).
type ID string

// NoGateway asks for a subnet without a gateway (Create.Gateway).
const NoGateway = "none"

// Pool is a range of addresses the subnet hands out, both ends included.
type Pool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Route is a host route DHCP gives the subnet's guests.
type Route struct {
	Destination string `json:"destination"`
	Nexthop     string `json:"nexthop"`
}

// State is what the decider knows about one subnet.
type State struct {
	ID      ID
	Exists  bool
	Deleted bool
	Network string
	Project string
	Name    string
	CIDR    string
	// Gateway is "" when the subnet has none.
	Gateway string
	DHCP    bool
	DNS     []string
	Pools   []Pool
	Routes  []Route
	// Used has a bit per address of the CIDR (bit i of word i/64 is the
	// address at offset i), set while the address is handed out. Evolve
	// copies it before a change, so an earlier (cached) state stays as it
	// was: 8 KiB at /16.
	Used []uint64
	// InUse counts the bits set in Used.
	InUse int
	// GatewayHolder is the key holding the gateway address (the port of a
	// router's interface, see Allocate.Gateway), "" while none does.
	GatewayHolder string
	// Cursor is the offset of the last address handed out (0, the network
	// address, before the first): the next free one is looked for after it.
	Cursor    int
	CreatedAt time.Time
}

// Live reports whether the subnet exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// label names the subnet in messages: its name, or its id when it has none.
func (s State) label() string {
	if s.Name != "" {
		return s.Name
	}
	return string(s.ID)
}

// Command is one of the commands below.
type Command interface{ subnetCommand() }

// Create makes a subnet on a network.
type Create struct {
	ID      ID
	Network string
	Project string
	// Name is optional.
	Name string
	// CIDR is an IPv4 network from /16 to /30, such as 10.0.0.0/24.
	CIDR string
	// Gateway is the first usable address when empty, none when NoGateway.
	Gateway string
	// DHCP nil means on.
	DHCP *bool
	// DNS are at most MaxDNS IPv4 addresses.
	DNS []string
	// Pools are every usable address but the gateway when empty.
	Pools []Pool
	// Routes are at most MaxRoutes host routes.
	Routes []Route
	At     time.Time
}

// Allocate hands out an address to Key (the port or floating IP that will
// hold it): IP when given, else the next free one in the pools. With
// Gateway it hands out the subnet's gateway address, to the port of a
// router's interface: one at a time, so two routers never both claim it.
type Allocate struct {
	Key     string
	IP      string
	Gateway bool
	At      time.Time
}

// Release gives back the address IP that Key held. Releasing an address
// that is not handed out changes nothing.
type Release struct {
	Key string
	IP  string
	At  time.Time
}

// Delete removes a subnet that hands out no address.
type Delete struct{ At time.Time }

func (Create) subnetCommand()   {}
func (Allocate) subnetCommand() {}
func (Release) subnetCommand()  {}
func (Delete) subnetCommand()   {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated          = "subnet.created"
	TypeAddressAllocated = "subnet.address_allocated"
	TypeAddressReleased  = "subnet.address_released"
	TypeDeleted          = "subnet.deleted"
)

// Created records a new subnet, with its defaults filled in.
type Created struct {
	ID        ID        `json:"id"`
	Network   string    `json:"network_id"`
	Project   string    `json:"project_id"`
	Name      string    `json:"name,omitempty"`
	CIDR      string    `json:"cidr"`
	Gateway   string    `json:"gateway,omitempty"`
	DHCP      bool      `json:"dhcp"`
	DNS       []string  `json:"dns,omitempty"`
	Pools     []Pool    `json:"pools"`
	Routes    []Route   `json:"routes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AddressAllocated records an address handed out to Key.
type AddressAllocated struct {
	Key string    `json:"key"`
	IP  string    `json:"ip"`
	At  time.Time `json:"at"`
}

// AddressReleased records an address given back by Key.
type AddressReleased struct {
	Key string    `json:"key"`
	IP  string    `json:"ip"`
	At  time.Time `json:"at"`
}

// Deleted records that the subnet is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*AddressAllocated) EventType() string { return TypeAddressAllocated }

// EventType implements domain.Event.
func (*AddressReleased) EventType() string { return TypeAddressReleased }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the subnet aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:          func() domain.Event { return &Created{} },
		TypeAddressAllocated: func() domain.Event { return &AddressAllocated{} },
		TypeAddressReleased:  func() domain.Event { return &AddressReleased{} },
		TypeDeleted:          func() domain.Event { return &Deleted{} },
	},
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		return decideCreate(s, cr)
	}
	if !s.Exists {
		return nil, domain.NotFoundf("subnet %s not found", s.ID)
	}
	if rel, ok := c.(Release); ok {
		return decideRelease(s, rel) // a late release after a delete is a no-op, not an error
	}
	if s.Deleted {
		return nil, domain.NotFoundf("subnet %s not found", s.ID)
	}
	switch c := c.(type) {
	case Allocate:
		return decideAllocate(s, c)
	case Delete:
		if s.InUse > 0 {
			return nil, domain.Conflictf("subnet %s (%s) still has %d address(es) in use by ports or floating IPs; delete those first", s.label(), s.CIDR, s.InUse)
		}
		return []domain.Event{&Deleted{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("subnet: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Network: e.Network, Project: e.Project, Name: e.Name, CIDR: e.CIDR, Gateway: e.Gateway,
			DHCP: e.DHCP, DNS: e.DNS, Pools: e.Pools, Routes: e.Routes, CreatedAt: e.CreatedAt}
		if r, err := parseRange(e.CIDR); err == nil {
			s.Used = make([]uint64, (r.size+63)/64)
		}
	case *AddressAllocated:
		if off, ok := s.offset(e.IP); ok && !isSet(s.Used, off) {
			s.Used = withBit(s.Used, off, true)
			s.InUse++
			if e.IP == s.Gateway {
				s.GatewayHolder = e.Key
			} else {
				s.Cursor = off
			}
		}
	case *AddressReleased:
		if off, ok := s.offset(e.IP); ok && isSet(s.Used, off) {
			s.Used = withBit(s.Used, off, false)
			s.InUse--
			if e.IP == s.Gateway {
				s.GatewayHolder = ""
			}
		}
	case *Deleted:
		s.Deleted = true
	}
	return s
}
