package host

import (
	"fmt"
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Command is one of the commands below.
type Command interface{ hostCommand() }

// Register records a host, or its new spec when it changed. Ratios, when
// set, apply to a first registration only (later: SetRatios).
type Register struct {
	ID     string
	Spec   Spec
	Ratios *Ratios
	At     time.Time
}

// Enable lets the host take new servers.
type Enable struct{ At time.Time }

// Disable stops new placements on the host at once.
type Disable struct {
	Reason string
	At     time.Time
}

// SetMaintenance starts or ends maintenance.
type SetMaintenance struct {
	On     bool
	Reason string
	At     time.Time
}

// SetRatios changes the overcommit ratios the patch names and keeps the
// others: the merge happens here, on the current state, so two clients
// changing different ratios do not undo each other. Used capacity must
// still fit.
type SetRatios struct {
	Ratios RatiosPatch
	At     time.Time
}

// RatiosPatch names the ratios to change; a nil field keeps its value.
type RatiosPatch struct {
	CPU  *float64 `json:"cpu,omitempty" doc:"vCPU overcommit ratio; absent keeps the current one"`
	RAM  *float64 `json:"ram,omitempty" doc:"RAM overcommit ratio; absent keeps the current one"`
	Disk *float64 `json:"disk,omitempty" doc:"Disk overcommit ratio; absent keeps the current one"`
}

// Patch is the patch that sets all three ratios to r's.
func (r Ratios) Patch() RatiosPatch { return RatiosPatch{CPU: &r.CPU, RAM: &r.RAM, Disk: &r.Disk} }

// Apply returns r with the patch's ratios in place of its own.
func (p RatiosPatch) Apply(r Ratios) Ratios {
	for _, f := range []struct {
		v   *float64
		dst *float64
	}{{p.CPU, &r.CPU}, {p.RAM, &r.RAM}, {p.Disk, &r.Disk}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return r
}

// JoinAggregate records that the host is joining a host aggregate, before
// the aggregate records it. The host is where "one availability zone per
// host" is decided: every aggregate it joins passes through its stream.
// Join identifies this joining (the request's command id), so that undoing
// it or leaving never drops a later joining of the same aggregate.
type JoinAggregate struct {
	Aggregate string
	Name      string // the aggregate's name, for messages
	Zone      string // the aggregate's availability zone, "" for none
	Join      string
	At        time.Time
}

// LeaveAggregate forgets the joining Join of an aggregate, after the
// aggregate let the host go (or refused it). A different joining of the
// same aggregate stays.
type LeaveAggregate struct {
	Aggregate string
	Join      string
	At        time.Time
}

// Claim takes capacity for a server. Claiming again for the same server
// with the same resources changes nothing.
type Claim struct {
	Server    string
	Resources Resources
	Operation string
	At        time.Time
}

// Release gives a server's capacity back; releasing twice changes nothing.
type Release struct {
	Server string
	Reason string
	At     time.Time
}

// MarkDown records that heartbeats stopped; MarkUp that they came back.
type (
	MarkDown struct{ LastSeen, At time.Time }
	MarkUp   struct{ At time.Time }
)

// Remove takes an empty host out of the fleet.
type Remove struct{ At time.Time }

// ObserveUnknownGuests is the host's agent reporting the guests it runs
// that Keel did not create (their hypervisor names).
type ObserveUnknownGuests struct {
	Guests []string
	At     time.Time
}

// MaxUnknownGuests bounds the names one observation records.
const MaxUnknownGuests = 1000

func (ObserveUnknownGuests) hostCommand() {}

func (Register) hostCommand()       {}
func (Enable) hostCommand()         {}
func (Disable) hostCommand()        {}
func (SetMaintenance) hostCommand() {}
func (SetRatios) hostCommand()      {}
func (Claim) hostCommand()          {}
func (Release) hostCommand()        {}
func (MarkDown) hostCommand()       {}
func (MarkUp) hostCommand()         {}
func (Remove) hostCommand()         {}
func (JoinAggregate) hostCommand()  {}
func (LeaveAggregate) hostCommand() {}

// Decide returns the events a command produces, or says why it does not apply.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Register:
		return decideRegister(s, c)
	case LeaveAggregate:
		// Accepted on a removed host too: its record of aggregates outlives
		// it, since the aggregates let it go only after it is removed.
		m, ok := s.Aggregates[c.Aggregate]
		return when(s.Exists && ok && m.Join == c.Join, &AggregateLeft{Aggregate: c.Aggregate, Join: c.Join, At: c.At})
	}
	if !s.Exists || s.Removed {
		return nil, domain.NotFoundf("host %s not found", s.ID)
	}
	switch c := c.(type) {
	case Enable:
		return when(s.Disabled, &Enabled{At: c.At})
	case Disable:
		if err := domain.CheckText("reason", c.Reason); err != nil {
			return nil, err
		}
		return when(!s.Disabled || c.Reason != s.Reason, &Disabled{Reason: c.Reason, At: c.At})
	case SetMaintenance:
		if c.On {
			if err := domain.CheckText("reason", c.Reason); err != nil {
				return nil, err
			}
			return when(!s.Maintenance || c.Reason != s.MaintenanceReason, &MaintenanceStarted{Reason: c.Reason, At: c.At})
		}
		return when(s.Maintenance, &MaintenanceEnded{At: c.At})
	case SetRatios:
		return decideRatios(s, c)
	case Claim:
		return decideClaim(s, c)
	case Release:
		r, ok := s.Claims[c.Server]
		return when(ok, &Released{Server: c.Server, Resources: r, Reason: c.Reason, At: c.At})
	case MarkDown:
		return when(!s.Down, &WentDown{LastSeen: c.LastSeen, At: c.At})
	case MarkUp:
		return when(s.Down, &CameUp{At: c.At})
	case JoinAggregate:
		return decideJoin(s, c)
	case ObserveUnknownGuests:
		if len(c.Guests) > MaxUnknownGuests {
			return nil, domain.Invalidf("%d unknown guests; at most %d are recorded", len(c.Guests), MaxUnknownGuests)
		}
		guests := append([]string{}, slices.Sorted(slices.Values(c.Guests))...) // [] in JSON, not null
		for _, g := range guests {
			if err := domain.CheckText("guest name", g); err != nil {
				return nil, err
			}
		}
		return when(!slices.Equal(guests, s.UnknownGuests), &UnknownGuestsObserved{Guests: guests, At: c.At})
	case Remove:
		if n := len(s.Claims); n > 0 {
			return nil, domain.Conflictf("host %s still holds %d server(s); delete or move them before removing the host", s.Spec.Name, n)
		}
		return []domain.Event{&Removed{At: c.At}}, nil
	default:
		return nil, domain.Invalidf("host: unknown command %T", c)
	}
}

func decideRegister(s State, c Register) ([]domain.Event, error) {
	if err := checkSpec(c.Spec); err != nil {
		return nil, err
	}
	if s.Exists && !s.Removed && s.Spec.equal(c.Spec) {
		return nil, nil
	}
	// A removed host that registers again (a reinstalled machine keeps its
	// name, so its id) starts afresh, with the ratios of a first registration.
	ev := &Registered{ID: c.ID, Spec: c.Spec, At: c.At}
	if !s.Exists || s.Removed {
		r := DefaultRatios
		if c.Ratios != nil {
			r = *c.Ratios
		}
		if err := checkRatios(r); err != nil {
			return nil, err
		}
		ev.Ratios = &r
	}
	return []domain.Event{ev}, nil
}

func checkSpec(sp Spec) error {
	if err := domain.CheckName("host name", sp.Name); err != nil {
		return err
	}
	if err := checkSpecText(sp); err != nil {
		return err
	}
	switch {
	case sp.VCPUs < 1:
		return domain.Invalidf("host %s: vcpus must be positive, got %d", sp.Name, sp.VCPUs)
	case sp.RAMMiB < 1:
		return domain.Invalidf("host %s: ram_mib must be positive, got %d", sp.Name, sp.RAMMiB)
	case sp.DiskGiB < 0:
		return domain.Invalidf("host %s: disk_gib must not be negative, got %d", sp.Name, sp.DiskGiB)
	}
	return nil
}

// checkSpecText refuses control and bidirectional characters in what a host
// says about itself, since operators read it in their terminals.
func checkSpecText(sp Spec) error {
	fields := map[string]string{"address": sp.Address, "driver": sp.Driver, "hypervisor": sp.Hypervisor, "cpu model": sp.CPUModel}
	for field, v := range fields {
		if err := domain.CheckText("host "+sp.Name+": "+field, v); err != nil {
			return err
		}
	}
	for _, list := range [][]string{sp.CPUFeatures, sp.Traits} {
		for _, v := range list {
			if err := domain.CheckText("host "+sp.Name+": trait or cpu feature", v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRatios(r Ratios) error {
	for name, v := range map[string]float64{"cpu": r.CPU, "ram": r.RAM, "disk": r.Disk} {
		if v <= 0 || v > 64 {
			return domain.Invalidf("%s overcommit ratio must be above 0 and at most 64, got %g", name, v)
		}
	}
	return nil
}

func decideRatios(s State, c SetRatios) ([]domain.Event, error) {
	if c.Ratios == (RatiosPatch{}) {
		return nil, domain.Invalidf("name at least one of the cpu, ram and disk overcommit ratios")
	}
	r := c.Ratios.Apply(s.Ratios)
	if err := checkRatios(r); err != nil {
		return nil, err
	}
	if r == s.Ratios {
		return nil, nil
	}
	next := s
	next.Ratios = r
	if !s.Used.Fits(next.Limit()) {
		return nil, domain.Conflictf("host %s: servers already use %s, more than %s allowed by the new ratios", s.Spec.Name, show(s.Used), show(next.Limit()))
	}
	return []domain.Event{&RatiosChanged{Ratios: r, At: c.At}}, nil
}

// decideClaim is where double-booking is made impossible: the claim is
// checked against this host's own state and appended with optimistic
// concurrency on its subject.
func decideClaim(s State, c Claim) ([]domain.Event, error) {
	if c.Server == "" || c.Resources.VCPUs < 0 || c.Resources.RAMMiB < 0 || c.Resources.DiskGiB < 0 {
		return nil, domain.Invalidf("claim on host %s needs a server and non-negative resources", s.Spec.Name)
	}
	if prev, ok := s.Claims[c.Server]; ok {
		if prev == c.Resources {
			return nil, nil
		}
		return nil, domain.Conflictf("server %s already holds a different claim on host %s", c.Server, s.Spec.Name)
	}
	switch {
	case s.Disabled:
		return nil, domain.Conflictf("host %s is disabled%s", s.Spec.Name, because(s.Reason))
	case s.Maintenance:
		return nil, domain.Conflictf("host %s is in maintenance%s", s.Spec.Name, because(s.MaintenanceReason))
	case s.Down:
		return nil, domain.Conflictf("host %s is down", s.Spec.Name)
	}
	if !s.Used.Add(c.Resources).Fits(s.Limit()) {
		return nil, domain.Conflictf("host %s has %s free, not %s", s.Spec.Name, show(s.Free()), show(c.Resources))
	}
	return []domain.Event{&Claimed{Server: c.Server, Resources: c.Resources, Operation: c.Operation, At: c.At}}, nil
}

func when(cond bool, ev domain.Event) ([]domain.Event, error) {
	if !cond {
		return nil, nil
	}
	return []domain.Event{ev}, nil
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

func show(r Resources) string {
	return fmt.Sprintf("%d vCPUs, %d MiB RAM, %d GiB disk", r.VCPUs, r.RAMMiB, r.DiskGiB)
}
