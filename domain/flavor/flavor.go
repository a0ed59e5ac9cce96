// Package flavor is the flavor aggregate: a named size (vCPUs, RAM, disk)
// that servers are created from. A flavor is immutable once created; it can
// only be deleted. Servers keep a copy of the flavor they were built from, so
// deleting a flavor never changes a running server.
package flavor

import (
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the flavor stream subjects.
const AggregateType = "flavor"

// ID identifies a flavor (a UUID in canonical form).
type ID string

// Limits on flavor sizes; beyond them a request is refused as invalid.
const (
	MaxVCPUs   = 1024
	MaxRAMMiB  = 16 * 1024 * 1024
	MaxDiskGiB = 1024 * 1024
)

// State is what the decider knows about one flavor.
type State struct {
	ID        ID
	Exists    bool
	Deleted   bool
	Spec      Spec
	CreatedAt time.Time
}

// Spec is the size a flavor describes.
type Spec struct {
	Name    string `json:"name"`
	VCPUs   int    `json:"vcpus"`
	RAMMiB  int    `json:"ram_mib"`
	DiskGiB int    `json:"disk_gib"`
	// ExtraSpecs steer placement: "trait:NAME" = required|forbidden, and
	// "aggregate:KEY" = VALUE (the host aggregate metadata to match).
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
}

// Command is one of the commands below.
type Command interface{ flavorCommand() }

// Create makes a new flavor.
type Create struct {
	ID   ID
	Spec Spec
	At   time.Time
}

// Delete removes a flavor.
type Delete struct{ At time.Time }

func (Create) flavorCommand() {}
func (Delete) flavorCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated = "flavor.created"
	TypeDeleted = "flavor.deleted"
)

// Created records a new flavor.
type Created struct {
	ID        ID        `json:"id"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
}

// Deleted records that a flavor was removed.
type Deleted struct {
	ID        ID        `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the flavor aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated: func() domain.Event { return &Created{} },
		TypeDeleted: func() domain.Event { return &Deleted{} },
	},
}

// Validate checks a flavor spec.
func (s Spec) Validate() error {
	if err := domain.CheckName("name", s.Name); err != nil {
		return err
	}
	if s.VCPUs < 1 || s.VCPUs > MaxVCPUs {
		return domain.Invalidf("vcpus must be between 1 and %d, got %d", MaxVCPUs, s.VCPUs)
	}
	if s.RAMMiB < 1 || s.RAMMiB > MaxRAMMiB {
		return domain.Invalidf("ram_mib must be between 1 and %d, got %d", MaxRAMMiB, s.RAMMiB)
	}
	if s.DiskGiB < 0 || s.DiskGiB > MaxDiskGiB {
		return domain.Invalidf("disk_gib must be between 0 and %d, got %d", MaxDiskGiB, s.DiskGiB)
	}
	return checkExtraSpecs(s.ExtraSpecs)
}

func checkExtraSpecs(specs map[string]string) error {
	if len(specs) > 64 {
		return domain.Invalidf("at most 64 extra specs, got %d", len(specs))
	}
	for k, v := range specs {
		if err := domain.CheckText("extra spec key", k); err != nil {
			return err
		}
		if err := domain.CheckText("extra spec "+k, v); err != nil {
			return err
		}
		trait, isTrait := strings.CutPrefix(k, "trait:")
		key, isAgg := strings.CutPrefix(k, "aggregate:")
		switch {
		case isTrait && trait != "" && (v == "required" || v == "forbidden"):
		case isTrait:
			return domain.Invalidf("extra spec %s must be required or forbidden, got %q", k, v)
		case isAgg && key != "" && len(v) <= 255:
		default:
			return domain.Invalidf("unknown extra spec %q: use trait:NAME=required|forbidden or aggregate:KEY=VALUE", k)
		}
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Create:
		if s.Exists {
			return nil, domain.Conflictf("flavor %s already exists", s.ID)
		}
		if err := c.Spec.Validate(); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: c.ID, Spec: c.Spec, CreatedAt: c.At}}, nil
	case Delete:
		if !s.Exists || s.Deleted {
			return nil, domain.NotFoundf("flavor %s not found", s.ID)
		}
		return []domain.Event{&Deleted{ID: s.ID, DeletedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("flavor: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Spec, s.CreatedAt = e.ID, true, e.Spec, e.CreatedAt
	case *Deleted:
		s.Deleted = true
	}
	return s
}
