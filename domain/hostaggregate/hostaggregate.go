// Package hostaggregate is the host aggregate (in Nova's sense): a named set
// of hosts with metadata that flavors can ask for, and that can make an
// availability zone (metadata key availability_zone). It records membership
// and metadata only; the scheduler reads them from the read model.
//
// "One zone per host" is decided by the host aggregate of package host,
// which a host joins before an aggregate lists it (commands.App.AddAggregateHost).
// This aggregate's part is to refuse an add decided against a zone it no
// longer has, and to keep its zone while it has hosts.
package hostaggregate

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the host aggregate stream subjects.
const AggregateType = "hostaggregate"

// AZKey is the metadata key that names an aggregate's availability zone.
const AZKey = "availability_zone"

// DefaultAZ is the zone of hosts in no zone.
const DefaultAZ = "default"

// State is what the decider knows about one host aggregate.
type State struct {
	ID       string
	Exists   bool
	Deleted  bool
	Name     string
	Metadata map[string]string
	Hosts    []string
	Joins    map[string]string // host -> the join id its host recorded ("" before joins had ids)
}

// Zone is the aggregate's availability zone, "" for none.
func (s State) Zone() string { return s.Metadata[AZKey] }

// Command is one of the commands below.
type Command interface{ aggCommand() }

// Create makes a host aggregate.
type Create struct {
	ID       string
	Name     string
	Metadata map[string]string
	At       time.Time
}

// SetMetadata merges metadata; an empty value removes the key.
type SetMetadata struct {
	Metadata map[string]string
	At       time.Time
}

// AddHost and RemoveHost change membership. AddHost carries the zone the
// host joined under and the join id the host recorded; RemoveHost the join
// id of the membership it ends, so that it never ends a newer one.
type (
	AddHost struct {
		Host string
		Zone string
		Join string
		At   time.Time
	}
	RemoveHost struct {
		Host string
		Join string
		At   time.Time
	}
)

// Delete removes an aggregate with no hosts.
type Delete struct{ At time.Time }

func (Create) aggCommand()      {}
func (SetMetadata) aggCommand() {}
func (AddHost) aggCommand()     {}
func (RemoveHost) aggCommand()  {}
func (Delete) aggCommand()      {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated     = "hostaggregate.created"
	TypeMetadataSet = "hostaggregate.metadata_set"
	TypeHostAdded   = "hostaggregate.host_added"
	TypeHostRemoved = "hostaggregate.host_removed"
	TypeDeleted     = "hostaggregate.deleted"
)

// Created records a new host aggregate.
type Created struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata,omitempty"`
	At       time.Time         `json:"at"`
}

// MetadataSet records the aggregate's whole metadata after a change.
type MetadataSet struct {
	Metadata map[string]string `json:"metadata"`
	At       time.Time         `json:"at"`
}

// HostAdded records a host joining the aggregate (again, with a new join id,
// when it was already a member).
type HostAdded struct {
	Host string    `json:"host"`
	Join string    `json:"join_id,omitempty"`
	At   time.Time `json:"at"`
}

// HostRemoved records a host leaving the aggregate.
type HostRemoved struct {
	Host string    `json:"host"`
	Join string    `json:"join_id,omitempty"`
	At   time.Time `json:"at"`
}

// Deleted records that the aggregate is gone.
type Deleted struct {
	At time.Time `json:"at"`
}

func (*Created) EventType() string     { return TypeCreated }
func (*MetadataSet) EventType() string { return TypeMetadataSet }
func (*HostAdded) EventType() string   { return TypeHostAdded }
func (*HostRemoved) EventType() string { return TypeHostRemoved }
func (*Deleted) EventType() string     { return TypeDeleted }

// Decider is the host aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: id} },
	Registry: domain.Registry{
		TypeCreated:     func() domain.Event { return &Created{} },
		TypeMetadataSet: func() domain.Event { return &MetadataSet{} },
		TypeHostAdded:   func() domain.Event { return &HostAdded{} },
		TypeHostRemoved: func() domain.Event { return &HostRemoved{} },
		TypeDeleted:     func() domain.Event { return &Deleted{} },
	},
}

func checkMetadata(md map[string]string) error {
	if len(md) > 64 {
		return domain.Invalidf("at most 64 metadata keys, got %d", len(md))
	}
	for k, v := range md {
		if k == "" || len(k) > 255 || len(v) > 255 || strings.ContainsAny(k, " \t\n") {
			return domain.Invalidf("metadata key %q: keys are 1 to 255 characters without white space, values at most 255", k)
		}
		if err := domain.CheckText("metadata key", k); err != nil {
			return err
		}
		if err := domain.CheckText("metadata value of "+k, v); err != nil {
			return err
		}
		if k == AZKey && v != "" {
			if err := domain.CheckName("availability zone", v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		if s.Exists {
			return nil, domain.Conflictf("host aggregate %s already exists", s.ID)
		}
		if err := domain.CheckName("name", cr.Name); err != nil {
			return nil, err
		}
		if err := checkMetadata(cr.Metadata); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: cr.ID, Name: cr.Name, Metadata: cr.Metadata, At: cr.At}}, nil
	}
	if !s.Exists || s.Deleted {
		return nil, domain.NotFoundf("host aggregate %s not found", s.ID)
	}
	switch c := c.(type) {
	case SetMetadata:
		next := maps.Clone(s.Metadata)
		if next == nil {
			next = map[string]string{}
		}
		for k, v := range c.Metadata {
			if v == "" {
				delete(next, k)
			} else {
				next[k] = v
			}
		}
		if err := checkMetadata(next); err != nil {
			return nil, err
		}
		if maps.Equal(next, s.Metadata) {
			return nil, nil
		}
		if next[AZKey] != s.Zone() && len(s.Hosts) > 0 {
			return nil, domain.Conflictf("host aggregate %s has %d host(s): remove them before changing its availability zone, so that no host ends up in two zones", s.Name, len(s.Hosts))
		}
		return []domain.Event{&MetadataSet{Metadata: next, At: c.At}}, nil
	case AddHost:
		if c.Zone != s.Zone() {
			return nil, domain.Conflictf("host aggregate %s changed its availability zone to %q meanwhile; add host %s again", s.Name, s.Zone(), c.Host)
		}
		if slices.Contains(s.Hosts, c.Host) && s.Joins[c.Host] == c.Join {
			return nil, nil
		}
		return []domain.Event{&HostAdded{Host: c.Host, Join: c.Join, At: c.At}}, nil
	case RemoveHost:
		if !slices.Contains(s.Hosts, c.Host) {
			return nil, domain.NotFoundf("host %s is not in aggregate %s", c.Host, s.Name)
		}
		if s.Joins[c.Host] != c.Join {
			return nil, domain.Conflictf("host %s was added to aggregate %s again meanwhile; remove it again", c.Host, s.Name)
		}
		return []domain.Event{&HostRemoved{Host: c.Host, Join: c.Join, At: c.At}}, nil
	case Delete:
		if len(s.Hosts) > 0 {
			return nil, domain.Conflictf("host aggregate %s still has %d host(s); remove them first", s.Name, len(s.Hosts))
		}
		return []domain.Event{&Deleted{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("host aggregate: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Name, s.Metadata = e.ID, true, e.Name, maps.Clone(e.Metadata)
	case *MetadataSet:
		s.Metadata = maps.Clone(e.Metadata)
	case *HostAdded:
		if !slices.Contains(s.Hosts, e.Host) {
			s.Hosts = append(slices.Clone(s.Hosts), e.Host)
		}
		s.Joins = maps.Clone(s.Joins)
		if s.Joins == nil {
			s.Joins = map[string]string{}
		}
		s.Joins[e.Host] = e.Join
	case *HostRemoved:
		s.Hosts = slices.DeleteFunc(slices.Clone(s.Hosts), func(h string) bool { return h == e.Host })
		s.Joins = maps.Clone(s.Joins)
		delete(s.Joins, e.Host)
	case *Deleted:
		s.Deleted = true
	}
	return s
}
