// Package network is the network aggregate: a project's layer-2 segment.
// An overlay network (the default) is a Geneve segment of its own; a VLAN
// or flat network is a provider network on a named physical network, and
// an external one is where floating IPs and router gateways come from.
//
// The network keeps the ids of its subnets: the commands layer adds a
// subnet here (AddSubnet) before the subnet's first commit and removes it
// (RemoveSubnet) after the subnet's delete, so that a delete of the network
// racing with a subnet create is refused by one of the two commits, never
// lost between them; it keeps their CIDRs too, so that two overlapping
// subnets created at once are refused by the second commit. Ports are not kept: every port with an address is
// held by a subnet (which refuses its delete while it hands out addresses),
// and a port without an address is the commands layer's to find (see
// docs/architecture.md, "Networks: the domain"). Rules over several networks
// (a VLAN id or a flat physical network used once, names) are the commands
// layer's too. The package decides; it never talks to OVN.
package network

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the network stream subjects.
const AggregateType = "network"

// ID identifies a network (a UUID in canonical form).
type ID string

// Kind is how a network reaches its hosts.
type Kind string

// Network kinds.
const (
	// Overlay: a Geneve segment between hosts, private to the network.
	Overlay Kind = "overlay"
	// VLAN: a VLAN on a physical network (a provider network).
	VLAN Kind = "vlan"
	// Flat: an untagged physical network (a provider network).
	Flat Kind = "flat"
)

// Kinds lists the valid kinds.
var Kinds = []Kind{Overlay, VLAN, Flat}

// MTUs: an overlay loses 58 bytes to Geneve on a 1500-byte underlay (OVN's
// own default for tenant networks); a provider network has the underlay's.
const (
	DefaultOverlayMTU  = 1442
	DefaultProviderMTU = 1500
	MinMTU             = 68 // the least an IPv4 host must accept (RFC 791)
	MaxMTU             = 9216
)

// MaxSubnets bounds the subnets of one network, so that its state stays small.
const MaxSubnets = 64

// State is what the decider knows about one network.
type State struct {
	ID              ID
	Exists          bool
	Deleted         bool
	Project         string
	Name            string
	Kind            Kind
	PhysicalNetwork string
	VLAN            int
	External        bool
	MTU             int
	// Subnets are the ids of the network's subnets, in the order added.
	Subnets []string
	// CIDRs are the subnets' CIDRs by subnet id (those added with one), so
	// that an overlapping subnet is refused by the same commit that adds it.
	CIDRs     map[string]string
	CreatedAt time.Time
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
}

// Live reports whether the network exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// Command is one of the commands below.
type Command interface{ networkCommand() }

// Create makes a network.
type Create struct {
	ID      ID
	Project string
	Name    string
	// Kind is overlay when empty.
	Kind Kind
	// PhysicalNetwork names the physical network of a VLAN or flat network
	// (as the hosts' bridge mappings name it); empty for an overlay.
	PhysicalNetwork string
	// VLAN is the VLAN id of a VLAN network (1-4094).
	VLAN int
	// External: floating IPs and router gateways come from this network.
	// Only a provider network can be external; who may set it (cloud
	// admins) is the API's to enforce.
	External bool
	// MTU is the kind's default when 0.
	MTU int
	At  time.Time
}

// Rename gives a network a new name.
type Rename struct {
	Name string
	At   time.Time
}

// AddSubnet records a subnet of the network, before the subnet's first
// commit. Adding one already there changes nothing.
type AddSubnet struct {
	Subnet string
	// CIDR is the subnet's; one overlapping another subnet of the network
	// is refused.
	CIDR string
	At   time.Time
}

// RemoveSubnet forgets a deleted subnet. Removing one not there changes nothing.
type RemoveSubnet struct {
	Subnet string
	At     time.Time
}

// Delete removes a network that has no subnets.
type Delete struct{ At time.Time }

// Abandon closes a network id whose create never committed: a crash between
// the quota reservation and the network's first commit left the reservation
// held, and the sweep gives it back (package sagas/monitors). A create of
// this id is refused afterwards; it is refused once the network exists.
type Abandon struct {
	Reason string
	At     time.Time
}

func (Create) networkCommand()       {}
func (Abandon) networkCommand()      {}
func (Rename) networkCommand()       {}
func (AddSubnet) networkCommand()    {}
func (RemoveSubnet) networkCommand() {}
func (Delete) networkCommand()       {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated       = "network.created"
	TypeRenamed       = "network.renamed"
	TypeSubnetAdded   = "network.subnet_added"
	TypeSubnetRemoved = "network.subnet_removed"
	TypeDeleted       = "network.deleted"
	TypeAbandoned     = "network.abandoned"
)

// Abandoned closes the id of a network whose create never committed (see
// Abandon); the network never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a new network, with its defaults filled in.
type Created struct {
	ID              ID        `json:"id"`
	Project         string    `json:"project_id"`
	Name            string    `json:"name"`
	Kind            Kind      `json:"kind"`
	PhysicalNetwork string    `json:"physical_network,omitempty"`
	VLAN            int       `json:"vlan,omitempty"`
	External        bool      `json:"external,omitempty"`
	MTU             int       `json:"mtu"`
	CreatedAt       time.Time `json:"created_at"`
}

// Renamed records a network's new name.
type Renamed struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// SubnetAdded records a subnet of the network.
type SubnetAdded struct {
	Subnet string    `json:"subnet_id"`
	CIDR   string    `json:"cidr,omitempty"`
	At     time.Time `json:"at"`
}

// SubnetRemoved records that a subnet of the network is gone.
type SubnetRemoved struct {
	Subnet string    `json:"subnet_id"`
	At     time.Time `json:"at"`
}

// Deleted records that the network is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Renamed) EventType() string { return TypeRenamed }

// EventType implements domain.Event.
func (*SubnetAdded) EventType() string { return TypeSubnetAdded }

// EventType implements domain.Event.
func (*SubnetRemoved) EventType() string { return TypeSubnetRemoved }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the network aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:       func() domain.Event { return &Created{} },
		TypeRenamed:       func() domain.Event { return &Renamed{} },
		TypeSubnetAdded:   func() domain.Event { return &SubnetAdded{} },
		TypeSubnetRemoved: func() domain.Event { return &SubnetRemoved{} },
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
			return nil, domain.Conflictf("network %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return []domain.Event{&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At}}, nil
	}
	if !s.Live() {
		return nil, domain.NotFoundf("network %s not found", s.ID)
	}
	switch c := c.(type) {
	case Rename:
		if err := domain.CheckName("name", c.Name); err != nil {
			return nil, err
		}
		if c.Name == s.Name {
			return nil, nil
		}
		return []domain.Event{&Renamed{Name: c.Name, At: c.At}}, nil
	case AddSubnet:
		return decideAddSubnet(s, c)
	case RemoveSubnet:
		if !slices.Contains(s.Subnets, c.Subnet) {
			return nil, nil
		}
		return []domain.Event{&SubnetRemoved{Subnet: c.Subnet, At: c.At}}, nil
	case Delete:
		if n := len(s.Subnets); n > 0 {
			return nil, domain.Conflictf("network %s still has %d subnet(s) (%s); delete them first", s.Name, n, strings.Join(s.Subnets, ", "))
		}
		return []domain.Event{&Deleted{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("network: unknown command %T", c)
	}
}

func decideAddSubnet(s State, c AddSubnet) ([]domain.Event, error) {
	if c.Subnet == "" {
		return nil, domain.Invalidf("a subnet id is needed")
	}
	if slices.Contains(s.Subnets, c.Subnet) {
		return nil, nil
	}
	if len(s.Subnets) >= MaxSubnets {
		return nil, domain.Conflictf("network %s already has %d subnets, the most a network may have", s.Name, MaxSubnets)
	}
	if err := s.checkOverlap(c.CIDR); err != nil {
		return nil, err
	}
	return []domain.Event{&SubnetAdded{Subnet: c.Subnet, CIDR: c.CIDR, At: c.At}}, nil
}

// checkOverlap refuses a CIDR that overlaps one of the network's subnets.
func (s State) checkOverlap(cidr string) error {
	if cidr == "" {
		return nil
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return domain.Invalidf("cidr %q is not an IPv4 network such as 10.0.0.0/24", cidr)
	}
	for _, id := range s.Subnets {
		if q, err := netip.ParsePrefix(s.CIDRs[id]); err == nil && q.Overlaps(p) {
			return domain.Conflictf("cidr %s overlaps subnet %s (%s) of network %s; a network's subnets must not overlap", cidr, id, q, s.Name)
		}
	}
	return nil
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("network %s already exists", s.ID)
	}
	if s.Abandoned {
		return nil, domain.Conflictf("the create of network %s was abandoned: it was cut short and its quota given back; send the request again with a new Idempotency-Key", s.ID)
	}
	if c.Project == "" {
		return nil, domain.Invalidf("a network belongs to a project")
	}
	if err := domain.CheckName("name", c.Name); err != nil {
		return nil, err
	}
	if c.Kind == "" {
		c.Kind = Overlay
	}
	if err := checkSegment(c); err != nil {
		return nil, err
	}
	mtu, err := checkMTU(c)
	if err != nil {
		return nil, err
	}
	return []domain.Event{&Created{ID: c.ID, Project: c.Project, Name: c.Name, Kind: c.Kind, PhysicalNetwork: c.PhysicalNetwork,
		VLAN: c.VLAN, External: c.External, MTU: mtu, CreatedAt: c.At}}, nil
}

// physicalName is what a host's bridge mapping can name (ovn-bridge-mappings
// is "physnet:bridge,...", so neither ':' nor ',' may appear).
var physicalName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func checkSegment(c Create) error {
	switch c.Kind {
	case Overlay:
		if c.PhysicalNetwork != "" || c.VLAN != 0 {
			return domain.Invalidf("an overlay network has no physical network or VLAN id; use kind vlan or flat for a provider network")
		}
		if c.External {
			return domain.Invalidf("an external network must be a provider network (kind vlan or flat): floating IPs reach the outside through a physical network")
		}
		return nil
	case VLAN, Flat:
		if !physicalName.MatchString(c.PhysicalNetwork) {
			return domain.Invalidf("a %s network needs the name of a physical network (1-64 letters, digits, '.', '_' or '-', as the hosts' bridge mappings name it), got %q", c.Kind, c.PhysicalNetwork)
		}
		if c.Kind == Flat && c.VLAN != 0 {
			return domain.Invalidf("a flat network is untagged and has no VLAN id; use kind vlan")
		}
		if c.Kind == VLAN && (c.VLAN < 1 || c.VLAN > 4094) {
			return domain.Invalidf("a VLAN id must be between 1 and 4094, got %d", c.VLAN)
		}
		return nil
	default:
		return domain.Invalidf("kind must be one of %v, got %q", Kinds, c.Kind)
	}
}

func checkMTU(c Create) (int, error) {
	if c.MTU == 0 {
		if c.Kind == Overlay {
			return DefaultOverlayMTU, nil
		}
		return DefaultProviderMTU, nil
	}
	if c.MTU < MinMTU || c.MTU > MaxMTU {
		return 0, domain.Invalidf("MTU must be between %d and %d, got %d", MinMTU, MaxMTU, c.MTU)
	}
	return c.MTU, nil
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Project: e.Project, Name: e.Name, Kind: e.Kind, PhysicalNetwork: e.PhysicalNetwork,
			VLAN: e.VLAN, External: e.External, MTU: e.MTU, CreatedAt: e.CreatedAt}
	case *Renamed:
		s.Name = e.Name
	case *SubnetAdded:
		s.Subnets = append(slices.Clip(s.Subnets), e.Subnet)
		if e.CIDR != "" {
			s.CIDRs = maps.Clone(s.CIDRs)
			if s.CIDRs == nil {
				s.CIDRs = map[string]string{}
			}
			s.CIDRs[e.Subnet] = e.CIDR
		}
	case *SubnetRemoved:
		s.Subnets = slices.DeleteFunc(slices.Clone(s.Subnets), func(id string) bool { return id == e.Subnet })
		if _, ok := s.CIDRs[e.Subnet]; ok {
			s.CIDRs = maps.Clone(s.CIDRs)
			delete(s.CIDRs, e.Subnet)
		}
	case *Deleted:
		s.Deleted = true
	case *Abandoned:
		s.Abandoned = true
	}
	return s
}
