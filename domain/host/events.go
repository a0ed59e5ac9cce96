package host

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Event type names. Never rename or reuse one.
const (
	TypeRegistered         = "host.registered"
	TypeEnabled            = "host.enabled"
	TypeDisabled           = "host.disabled"
	TypeMaintenanceStarted = "host.maintenance_started"
	TypeMaintenanceEnded   = "host.maintenance_ended"
	TypeRatiosChanged      = "host.ratios_changed"
	TypeClaimed            = "host.claimed"
	TypeReleased           = "host.released"
	TypeDown               = "host.down"
	TypeUp                 = "host.up"
	TypeRemoved            = "host.removed"
	TypeAggregateJoined    = "host.aggregate_joined"
	TypeAggregateLeft      = "host.aggregate_left"
	TypeUnknownGuests      = "host.unknown_guests_observed"
)

// Registered records a host's identity and capacity (again when they change).
// Ratios is set on the first registration only.
type Registered struct {
	ID     string    `json:"id"`
	Spec   Spec      `json:"spec"`
	Ratios *Ratios   `json:"ratios,omitempty"`
	At     time.Time `json:"at"`
}

// Enabled records that the host takes new servers again.
type Enabled struct {
	At time.Time `json:"at"`
}

// Disabled records that the host takes no new servers.
type Disabled struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// MaintenanceStarted records that the host is in maintenance (no new servers).
type MaintenanceStarted struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// MaintenanceEnded records the end of maintenance.
type MaintenanceEnded struct {
	At time.Time `json:"at"`
}

// RatiosChanged records new overcommit ratios.
type RatiosChanged struct {
	Ratios Ratios    `json:"ratios"`
	At     time.Time `json:"at"`
}

// Claimed records capacity taken by a server placed on the host.
type Claimed struct {
	Server    string    `json:"server_id"`
	Resources Resources `json:"resources"`
	Operation string    `json:"operation_id,omitempty"`
	At        time.Time `json:"at"`
}

// Released records capacity given back (server gone, build failed, orphan).
type Released struct {
	Server    string    `json:"server_id"`
	Resources Resources `json:"resources"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// WentDown records that the host's heartbeats stopped.
type WentDown struct {
	LastSeen time.Time `json:"last_seen"`
	At       time.Time `json:"at"`
}

// CameUp records that the host's heartbeats came back.
type CameUp struct {
	At time.Time `json:"at"`
}

// Removed records that an empty host left the fleet.
type Removed struct {
	At time.Time `json:"at"`
}

// AggregateJoined records that the host is joining a host aggregate (of
// zone Zone), before the aggregate lists it.
type AggregateJoined struct {
	Aggregate string    `json:"aggregate_id"`
	Name      string    `json:"aggregate_name"`
	Zone      string    `json:"zone,omitempty"`
	Join      string    `json:"join_id"`
	At        time.Time `json:"at"`
}

// AggregateLeft records that the host left a host aggregate (or that its
// joining was undone because the aggregate refused it).
type AggregateLeft struct {
	Aggregate string    `json:"aggregate_id"`
	Join      string    `json:"join_id"`
	At        time.Time `json:"at"`
}

// UnknownGuestsObserved records the guests running on the host that Keel
// did not create, when that set changes (empty: none any more). Keel never
// touches them; operators see them on the host.
type UnknownGuestsObserved struct {
	Guests []string  `json:"guests"`
	At     time.Time `json:"at"`
}

func (*Registered) EventType() string            { return TypeRegistered }
func (*UnknownGuestsObserved) EventType() string { return TypeUnknownGuests }
func (*Enabled) EventType() string               { return TypeEnabled }
func (*Disabled) EventType() string              { return TypeDisabled }
func (*MaintenanceStarted) EventType() string    { return TypeMaintenanceStarted }
func (*MaintenanceEnded) EventType() string      { return TypeMaintenanceEnded }
func (*RatiosChanged) EventType() string         { return TypeRatiosChanged }
func (*Claimed) EventType() string               { return TypeClaimed }
func (*Released) EventType() string              { return TypeReleased }
func (*WentDown) EventType() string              { return TypeDown }
func (*CameUp) EventType() string                { return TypeUp }
func (*Removed) EventType() string               { return TypeRemoved }
func (*AggregateJoined) EventType() string       { return TypeAggregateJoined }
func (*AggregateLeft) EventType() string         { return TypeAggregateLeft }

var registry = domain.Registry{
	TypeRegistered:         func() domain.Event { return &Registered{} },
	TypeEnabled:            func() domain.Event { return &Enabled{} },
	TypeDisabled:           func() domain.Event { return &Disabled{} },
	TypeMaintenanceStarted: func() domain.Event { return &MaintenanceStarted{} },
	TypeMaintenanceEnded:   func() domain.Event { return &MaintenanceEnded{} },
	TypeRatiosChanged:      func() domain.Event { return &RatiosChanged{} },
	TypeClaimed:            func() domain.Event { return &Claimed{} },
	TypeReleased:           func() domain.Event { return &Released{} },
	TypeDown:               func() domain.Event { return &WentDown{} },
	TypeUp:                 func() domain.Event { return &CameUp{} },
	TypeRemoved:            func() domain.Event { return &Removed{} },
	TypeAggregateJoined:    func() domain.Event { return &AggregateJoined{} },
	TypeAggregateLeft:      func() domain.Event { return &AggregateLeft{} },
	TypeUnknownGuests:      func() domain.Event { return &UnknownGuestsObserved{} },
}
