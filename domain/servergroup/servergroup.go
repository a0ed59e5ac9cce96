// Package servergroup is the server group aggregate: servers that must (or
// should) share a host, or must (or should) not. The group records where
// each member is placed and checks a hard policy when a member is added, on
// its own stream, so that parallel requests can never break it: of two
// members racing for the last free host, one is refused and tries another.
package servergroup

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the server group stream subjects.
const AggregateType = "servergroup"

// Policies.
const (
	Affinity         = "affinity"
	AntiAffinity     = "anti-affinity"
	SoftAffinity     = "soft-affinity"
	SoftAntiAffinity = "soft-anti-affinity"
)

// Policies lists the valid policies.
var Policies = []string{Affinity, AntiAffinity, SoftAffinity, SoftAntiAffinity}

// Spec is what a user asks for.
type Spec struct {
	// Project owns the group; names are unique within it.
	Project    string `json:"project_id,omitempty"`
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	MaxPerHost int    `json:"max_per_host,omitempty"` // 0: no limit beyond the policy
}

// State is what the decider knows about one group.
type State struct {
	ID      string
	Exists  bool
	Deleted bool
	Spec    Spec
	Members map[string]string // server id -> host
}

// PerHost counts members on each host.
func (s State) PerHost() map[string]int {
	out := map[string]int{}
	for _, h := range s.Members {
		out[h]++
	}
	return out
}

// Command is one of the commands below.
type Command interface{ groupCommand() }

// Create makes a group.
type Create struct {
	ID   string
	Spec Spec
	At   time.Time
}

// AddMember places a server of the group on a host, checking the policy.
type AddMember struct {
	Server string
	Host   string
	At     time.Time
}

// RemoveMember takes a server out of the group (deleted, or its build failed).
type RemoveMember struct {
	Server string
	At     time.Time
}

// Delete removes an empty group.
type Delete struct{ At time.Time }

func (Create) groupCommand()       {}
func (AddMember) groupCommand()    {}
func (RemoveMember) groupCommand() {}
func (Delete) groupCommand()       {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated       = "servergroup.created"
	TypeMemberAdded   = "servergroup.member_added"
	TypeMemberRemoved = "servergroup.member_removed"
	TypeDeleted       = "servergroup.deleted"
)

// Created records a new group.
type Created struct {
	ID   string    `json:"id"`
	Spec Spec      `json:"spec"`
	At   time.Time `json:"at"`
}

// MemberAdded records a member placed on a host (or moved to another).
type MemberAdded struct {
	Server string    `json:"server_id"`
	Host   string    `json:"host"`
	At     time.Time `json:"at"`
}

// MemberRemoved records a member that left.
type MemberRemoved struct {
	Server string    `json:"server_id"`
	At     time.Time `json:"at"`
}

// Deleted records that the group is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

func (*Created) EventType() string       { return TypeCreated }
func (*MemberAdded) EventType() string   { return TypeMemberAdded }
func (*MemberRemoved) EventType() string { return TypeMemberRemoved }
func (*Deleted) EventType() string       { return TypeDeleted }

// Decider is the server group aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: id} },
	Registry: domain.Registry{
		TypeCreated:       func() domain.Event { return &Created{} },
		TypeMemberAdded:   func() domain.Event { return &MemberAdded{} },
		TypeMemberRemoved: func() domain.Event { return &MemberRemoved{} },
		TypeDeleted:       func() domain.Event { return &Deleted{} },
	},
}

// Validate checks a spec.
func (s Spec) Validate() error {
	if err := domain.CheckName("name", s.Name); err != nil {
		return err
	}
	if !slices.Contains(Policies, s.Policy) {
		return domain.Invalidf("policy must be one of %v, got %q", Policies, s.Policy)
	}
	if s.MaxPerHost < 0 || s.MaxPerHost > 100000 {
		return domain.Invalidf("max_per_host must be between 0 and 100000, got %d", s.MaxPerHost)
	}
	if s.Policy == Affinity && s.MaxPerHost > 0 {
		return domain.Invalidf("max_per_host does not apply to hard affinity, which puts every member on one host")
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		if s.Exists {
			return nil, domain.Conflictf("server group %s already exists", s.ID)
		}
		if err := cr.Spec.Validate(); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: cr.ID, Spec: cr.Spec, At: cr.At}}, nil
	}
	if !s.Exists || s.Deleted {
		return nil, domain.NotFoundf("server group %s not found", s.ID)
	}
	switch c := c.(type) {
	case AddMember:
		return decideAdd(s, c)
	case RemoveMember:
		if _, ok := s.Members[c.Server]; !ok {
			return nil, nil
		}
		return []domain.Event{&MemberRemoved{Server: c.Server, At: c.At}}, nil
	case Delete:
		if n := len(s.Members); n > 0 {
			return nil, domain.Conflictf("server group %s still has %d member(s); delete them first", s.Spec.Name, n)
		}
		return []domain.Event{&Deleted{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("server group: unknown command %T", c)
	}
}

func decideAdd(s State, c AddMember) ([]domain.Event, error) {
	if c.Server == "" || c.Host == "" {
		return nil, domain.Invalidf("a member needs a server and a host")
	}
	if s.Members[c.Server] == c.Host {
		return nil, nil
	}
	others := map[string]int{}
	for srv, h := range s.Members {
		if srv != c.Server {
			others[h]++
		}
	}
	here := others[c.Host]
	switch {
	case s.Spec.Policy == AntiAffinity && here > 0:
		return nil, domain.Conflictf("anti-affinity group %s already has a member on host %s", s.Spec.Name, c.Host)
	case s.Spec.Policy == Affinity && len(others) > 0 && here == 0:
		return nil, domain.Conflictf("affinity group %s has its members on another host", s.Spec.Name)
	case s.Spec.MaxPerHost > 0 && here >= s.Spec.MaxPerHost:
		return nil, domain.Conflictf("group %s already has %d member(s) on host %s, its maximum", s.Spec.Name, here, c.Host)
	}
	return []domain.Event{&MemberAdded{Server: c.Server, Host: c.Host, At: c.At}}, nil
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Spec = e.ID, true, e.Spec
	case *MemberAdded:
		s.Members = clone(s.Members)
		s.Members[e.Server] = e.Host
	case *MemberRemoved:
		s.Members = clone(s.Members)
		delete(s.Members, e.Server)
	case *Deleted:
		s.Deleted = true
	}
	return s
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
