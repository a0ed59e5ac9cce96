// Package secgroup is the security group aggregate: a project's named set
// of firewall rules that ports join. Traffic a port's groups do not allow
// is dropped; rules only ever allow. The rules live inside the group, so a
// rule is added or removed by one commit on the group's stream and two
// identical rules can never both be added.
//
// Every project has a default group (Default), made with DefaultRules: all
// egress, and ingress from the group's own members. It is deleted only with
// its project. Whether a group is still used by ports, and that a remote
// group exists, are the commands layer's to check: the group does not know
// its ports. The package decides; it never talks to OVN.
package secgroup

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the security group stream subjects.
const AggregateType = "securitygroup"

// ID identifies a security group (a UUID in canonical form).
type ID string

// DefaultName is the name of a project's default group, and only of it.
const DefaultName = "default"

// Bounds of a group.
const (
	MaxRules       = 500
	MaxDescription = 1024
)

// State is what the decider knows about one security group.
type State struct {
	ID          ID
	Exists      bool
	Deleted     bool
	Project     string
	Name        string
	Description string
	Default     bool
	Rules       []Rule
	CreatedAt   time.Time
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
}

// Live reports whether the group exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// DefaultRules are the rules of a project's default group self, as
// Neutron makes them: every egress, and ingress from members of the group.
func DefaultRules(self ID, egressID, ingressID string) []Rule {
	return []Rule{
		{ID: egressID, Direction: Egress, EtherType: IPv4, Protocol: AnyProtocol},
		{ID: ingressID, Direction: Ingress, EtherType: IPv4, Protocol: AnyProtocol, RemoteGroup: string(self)},
	}
}

// Command is one of the commands below.
type Command interface{ groupCommand() }

// Create makes a security group, with its first rules.
type Create struct {
	ID          ID
	Project     string
	Name        string
	Description string
	// Default makes the project's default group (named DefaultName).
	Default bool
	Rules   []Rule
	At      time.Time
}

// AddRule adds a rule; its ID is the caller's.
type AddRule struct {
	Rule Rule
	At   time.Time
}

// RemoveRule removes the rule RuleID.
type RemoveRule struct {
	RuleID string
	At     time.Time
}

// Delete removes the group. A default group goes only with its project
// (ProjectDeleted).
type Delete struct {
	ProjectDeleted bool
	At             time.Time
}

// Abandon closes a security group id whose create never committed: a crash between
// the quota reservation and the security group's first commit left the reservation
// held, and the sweep gives it back (package sagas/monitors). A create of
// this id is refused afterwards; it is refused once the security group exists.
type Abandon struct {
	Reason string
	At     time.Time
}

func (Create) groupCommand()     {}
func (Abandon) groupCommand()    {}
func (AddRule) groupCommand()    {}
func (RemoveRule) groupCommand() {}
func (Delete) groupCommand()     {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated     = "securitygroup.created"
	TypeRuleAdded   = "securitygroup.rule_added"
	TypeRuleRemoved = "securitygroup.rule_removed"
	TypeDeleted     = "securitygroup.deleted"
	TypeAbandoned   = "securitygroup.abandoned"
)

// Abandoned closes the id of a security group whose create never committed (see
// Abandon); the security group never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a new group with its first rules (normalised).
type Created struct {
	ID          ID        `json:"id"`
	Project     string    `json:"project_id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Default     bool      `json:"default,omitempty"`
	Rules       []Rule    `json:"rules,omitempty"`
	At          time.Time `json:"at"`
}

// RuleAdded records a rule (normalised).
type RuleAdded struct {
	Rule Rule      `json:"rule"`
	At   time.Time `json:"at"`
}

// RuleRemoved records that a rule is gone.
type RuleRemoved struct {
	RuleID string    `json:"rule_id"`
	At     time.Time `json:"at"`
}

// Deleted records that the group is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*RuleAdded) EventType() string { return TypeRuleAdded }

// EventType implements domain.Event.
func (*RuleRemoved) EventType() string { return TypeRuleRemoved }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the security group aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:     func() domain.Event { return &Created{} },
		TypeRuleAdded:   func() domain.Event { return &RuleAdded{} },
		TypeRuleRemoved: func() domain.Event { return &RuleRemoved{} },
		TypeDeleted:     func() domain.Event { return &Deleted{} },
		TypeAbandoned:   func() domain.Event { return &Abandoned{} },
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
			return nil, domain.Conflictf("security group %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return []domain.Event{&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At}}, nil
	}
	if !s.Live() {
		return nil, domain.NotFoundf("security group %s not found", s.ID)
	}
	switch c := c.(type) {
	case AddRule:
		r, err := s.admit(s.Rules, c.Rule)
		if err != nil {
			return nil, err
		}
		return []domain.Event{&RuleAdded{Rule: r, At: c.At}}, nil
	case RemoveRule:
		if !slices.ContainsFunc(s.Rules, func(r Rule) bool { return r.ID == c.RuleID }) {
			return nil, domain.NotFoundf("security group %s has no rule %s", s.Name, c.RuleID)
		}
		return []domain.Event{&RuleRemoved{RuleID: c.RuleID, At: c.At}}, nil
	case Delete:
		if s.Default && !c.ProjectDeleted {
			return nil, domain.Conflictf("security group %s is the project's default group; it is deleted with the project", s.ID)
		}
		return []domain.Event{&Deleted{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("security group: unknown command %T", c)
	}
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("security group %s already exists", s.ID)
	}
	if s.Abandoned {
		return nil, domain.Conflictf("the create of security group %s was abandoned: it was cut short and its quota given back; send the request again with a new Idempotency-Key", s.ID)
	}
	if c.Project == "" {
		return nil, domain.Invalidf("a security group belongs to a project")
	}
	if c.Default && c.Name == "" {
		c.Name = DefaultName
	}
	if err := domain.CheckName("name", c.Name); err != nil {
		return nil, err
	}
	switch {
	case c.Default && c.Name != DefaultName:
		return nil, domain.Invalidf("a project's default security group is named %q, not %q", DefaultName, c.Name)
	case !c.Default && c.Name == DefaultName:
		return nil, domain.Invalidf("the name %q is kept for the project's default security group; choose another", DefaultName)
	}
	if err := domain.CheckTextUpTo("description", c.Description, MaxDescription); err != nil {
		return nil, err
	}
	s.ID, s.Name = c.ID, c.Name
	var rules []Rule
	for _, r := range c.Rules {
		r, err := s.admit(rules, r)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return []domain.Event{&Created{ID: c.ID, Project: c.Project, Name: c.Name, Description: c.Description, Default: c.Default, Rules: rules, At: c.At}}, nil
}

// admit checks a new rule against the rules the group has and returns it
// normalised.
func (s State) admit(have []Rule, r Rule) (Rule, error) {
	r, err := r.normalise()
	if err != nil {
		return Rule{}, err
	}
	if len(have) >= MaxRules {
		return Rule{}, domain.Conflictf("security group %s already has %d rules, the most a group may have", s.Name, MaxRules)
	}
	for _, h := range have {
		if h.ID == r.ID {
			return Rule{}, domain.Conflictf("security group %s already has a rule %s", s.Name, r.ID)
		}
		if h.same(r) {
			return Rule{}, domain.Conflictf("security group %s already has this rule: rule %s", s.Name, h.ID)
		}
	}
	return r, nil
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Project: e.Project, Name: e.Name, Description: e.Description, Default: e.Default, Rules: e.Rules, CreatedAt: e.At}
	case *RuleAdded:
		s.Rules = append(slices.Clip(s.Rules), e.Rule)
	case *RuleRemoved:
		s.Rules = slices.DeleteFunc(slices.Clone(s.Rules), func(r Rule) bool { return r.ID == e.RuleID })
	case *Deleted:
		s.Deleted = true
	case *Abandoned:
		s.Abandoned = true
	}
	return s
}
