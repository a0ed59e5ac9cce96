// Package host is the host aggregate: a compute node's identity, capacity,
// overcommit ratios, administrative state (enabled, disabled, maintenance),
// liveness (up, down) and the capacity claims of the servers placed on it.
//
// The host owns its capacity: a claim is decided against the host's own
// state and appended to its own stream, so the check and the claim are one
// atomic step and two concurrent claims can never both take the last slot.
// It never talks to the host; agents report through commands.
package host

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the host stream subjects.
const AggregateType = "host"

// Resources is an amount of capacity.
type Resources struct {
	VCPUs   int `json:"vcpus"`
	RAMMiB  int `json:"ram_mib"`
	DiskGiB int `json:"disk_gib"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.VCPUs + o.VCPUs, r.RAMMiB + o.RAMMiB, r.DiskGiB + o.DiskGiB}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.VCPUs - o.VCPUs, r.RAMMiB - o.RAMMiB, r.DiskGiB - o.DiskGiB}
}

// Fits reports whether r fits within limit on every resource.
func (r Resources) Fits(limit Resources) bool {
	return r.VCPUs <= limit.VCPUs && r.RAMMiB <= limit.RAMMiB && r.DiskGiB <= limit.DiskGiB
}

// Ratios are the overcommit ratios of a host.
type Ratios struct {
	CPU  float64 `json:"cpu"`
	RAM  float64 `json:"ram"`
	Disk float64 `json:"disk"`
}

// DefaultRatios: CPU 4.0, RAM 1.0, disk 1.0.
var DefaultRatios = Ratios{CPU: 4.0, RAM: 1.0, Disk: 1.0}

// Spec is what a host says about itself when it registers.
type Spec struct {
	Name        string   `json:"name"`
	Address     string   `json:"address,omitempty"`
	Driver      string   `json:"driver"`
	Hypervisor  string   `json:"hypervisor,omitempty"`
	CPUModel    string   `json:"cpu_model,omitempty"`
	CPUFeatures []string `json:"cpu_features,omitempty"`
	Traits      []string `json:"traits,omitempty"`
	VCPUs       int      `json:"vcpus"`
	RAMMiB      int      `json:"ram_mib"`
	DiskGiB     int      `json:"disk_gib"`
}

// Capacity is the physical capacity of the spec.
func (s Spec) Capacity() Resources { return Resources{s.VCPUs, s.RAMMiB, s.DiskGiB} }

func (s Spec) equal(o Spec) bool {
	return s.Name == o.Name && s.Address == o.Address && s.Driver == o.Driver && s.Hypervisor == o.Hypervisor &&
		s.CPUModel == o.CPUModel && slices.Equal(s.CPUFeatures, o.CPUFeatures) && slices.Equal(s.Traits, o.Traits) &&
		s.Capacity() == o.Capacity()
}

// State is what the decider knows about one host.
type State struct {
	ID                string
	Exists            bool
	Removed           bool
	Spec              Spec
	Ratios            Ratios
	Disabled          bool
	Reason            string // why disabled
	Maintenance       bool
	MaintenanceReason string
	Down              bool
	Claims            map[string]Resources // server id -> claimed resources
	Used              Resources
	Since             time.Time // last liveness change
	// Aggregates are the host aggregates the host joined, by id: a superset
	// of those that list it. It outlives a removal, as the aggregates let a
	// removed host go only after its removal.
	Aggregates map[string]Membership
	// UnknownGuests are the guests on the host Keel did not create, as its
	// agent last reported them (sorted).
	UnknownGuests []string
}

// Limit is the capacity claims may use: physical capacity × ratios.
func (s State) Limit() Resources {
	c := s.Spec.Capacity()
	return Resources{
		VCPUs:   int(float64(c.VCPUs) * s.Ratios.CPU),
		RAMMiB:  int(float64(c.RAMMiB) * s.Ratios.RAM),
		DiskGiB: int(float64(c.DiskGiB) * s.Ratios.Disk),
	}
}

// Free is what is left for new claims.
func (s State) Free() Resources { return s.Limit().Sub(s.Used) }

// Decider is the host aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:     AggregateType,
	Decide:   Decide,
	Evolve:   Evolve,
	Init:     func(id string) State { return State{ID: id} },
	Registry: registry,
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Registered:
		if !s.Exists || s.Removed {
			s = State{Ratios: DefaultRatios, Aggregates: s.Aggregates}
		}
		s.ID, s.Exists, s.Spec = e.ID, true, e.Spec
		if e.Ratios != nil {
			s.Ratios = *e.Ratios
		}
	case *Enabled:
		s.Disabled, s.Reason = false, ""
	case *Disabled:
		s.Disabled, s.Reason = true, e.Reason
	case *MaintenanceStarted:
		s.Maintenance, s.MaintenanceReason = true, e.Reason
	case *MaintenanceEnded:
		s.Maintenance, s.MaintenanceReason = false, ""
	case *RatiosChanged:
		s.Ratios = e.Ratios
	case *Claimed:
		s.Claims = cloneClaims(s.Claims)
		s.Claims[e.Server] = e.Resources
		s.Used = s.Used.Add(e.Resources)
	case *Released:
		s.Claims = cloneClaims(s.Claims)
		delete(s.Claims, e.Server)
		s.Used = s.Used.Sub(e.Resources)
	case *WentDown:
		s.Down, s.Since = true, e.At
	case *CameUp:
		s.Down, s.Since = false, e.At
	case *Removed:
		s.Removed = true
	case *AggregateJoined:
		s.Aggregates = cloneAggregates(s.Aggregates)
		s.Aggregates[e.Aggregate] = Membership{Name: e.Name, Zone: e.Zone, Join: e.Join}
	case *AggregateLeft:
		s.Aggregates = cloneAggregates(s.Aggregates)
		delete(s.Aggregates, e.Aggregate)
	case *UnknownGuestsObserved:
		s.UnknownGuests = e.Guests
	}
	return s
}

// cloneClaims copies the map so that cached states are never changed in place.
func cloneClaims(m map[string]Resources) map[string]Resources {
	out := make(map[string]Resources, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
