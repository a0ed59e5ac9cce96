// Package host is the host aggregate in its first, minimal form: a compute
// node registers with its name, driver and capacity. Capacity claims,
// liveness, enable/disable and maintenance come with the scheduler work.
package host

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the host stream subjects.
const AggregateType = "host"

// Spec is what a host says about itself when it registers.
type Spec struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	VCPUs   int    `json:"vcpus"`
	RAMMiB  int    `json:"ram_mib"`
	DiskGiB int    `json:"disk_gib"`
}

// State is what the decider knows about one host.
type State struct {
	ID     string
	Exists bool
	Spec   Spec
}

// Command is one of the commands below.
type Command interface{ hostCommand() }

// Register records a host, or updates its capacity when it changed.
type Register struct {
	ID   string
	Spec Spec
	At   time.Time
}

func (Register) hostCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeRegistered = "host.registered"
)

// Registered records a host's identity and capacity.
type Registered struct {
	ID   string    `json:"id"`
	Spec Spec      `json:"spec"`
	At   time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Registered) EventType() string { return TypeRegistered }

// Decider is the host aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: id} },
	Registry: domain.Registry{
		TypeRegistered: func() domain.Event { return &Registered{} },
	},
}

// Decide returns the events a command produces. Registering again with the
// same spec changes nothing.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Register:
		if err := domain.CheckName("host name", c.Spec.Name); err != nil {
			return nil, err
		}
		switch {
		case c.Spec.VCPUs < 1:
			return nil, domain.Invalidf("host %s: vcpus must be positive, got %d", c.Spec.Name, c.Spec.VCPUs)
		case c.Spec.RAMMiB < 1:
			return nil, domain.Invalidf("host %s: ram_mib must be positive, got %d", c.Spec.Name, c.Spec.RAMMiB)
		case c.Spec.DiskGiB < 0:
			return nil, domain.Invalidf("host %s: disk_gib must not be negative, got %d", c.Spec.Name, c.Spec.DiskGiB)
		}
		if s.Exists && s.Spec == c.Spec {
			return nil, nil
		}
		return []domain.Event{&Registered{ID: c.ID, Spec: c.Spec, At: c.At}}, nil
	default:
		return nil, domain.Invalidf("host: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Registered:
		s.ID, s.Exists, s.Spec = e.ID, true, e.Spec
	}
	return s
}
