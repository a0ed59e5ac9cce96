package port

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Event type names. Never rename or reuse one.
const (
	TypeCreated           = "port.created"
	TypeBound             = "port.bound"
	TypeUnbound           = "port.unbound"
	TypeDeviceAttached    = "port.device_attached"
	TypeDeviceDetached    = "port.device_detached"
	TypeSecurityGroupsSet = "port.security_groups_set"
	TypeDeleted           = "port.deleted"
	TypeAbandoned         = "port.abandoned"
)

// Abandoned closes the id of a port whose create never committed (see
// Abandon); the port never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a new port with the addresses allocated for it.
type Created struct {
	ID             ID        `json:"id"`
	Network        string    `json:"network_id"`
	Project        string    `json:"project_id"`
	Name           string    `json:"name,omitempty"`
	MAC            string    `json:"mac"`
	FixedIPs       []FixedIP `json:"fixed_ips,omitempty"`
	SecurityGroups []string  `json:"security_groups,omitempty"`
	PortSecurity   bool      `json:"port_security"`
	DeviceOwner    string    `json:"device_owner,omitempty"`
	DeviceID       string    `json:"device_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Bound records the host the port is bound to (where its device runs).
type Bound struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// Unbound records that the port is bound to no host any more.
type Unbound struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// DeviceAttached records the device that now owns the port.
type DeviceAttached struct {
	DeviceOwner string    `json:"device_owner"`
	DeviceID    string    `json:"device_id"`
	At          time.Time `json:"at"`
}

// DeviceDetached records that the port's device let go of it; the port is
// unbound too.
type DeviceDetached struct {
	DeviceOwner string    `json:"device_owner"`
	DeviceID    string    `json:"device_id"`
	At          time.Time `json:"at"`
}

// SecurityGroupsSet records the port's security groups (all of them).
type SecurityGroupsSet struct {
	SecurityGroups []string  `json:"security_groups"`
	At             time.Time `json:"at"`
}

// Deleted records that the port is gone; FixedIPs are the addresses its
// subnets are to take back.
type Deleted struct {
	FixedIPs []FixedIP `json:"fixed_ips,omitempty"`
	At       time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Bound) EventType() string { return TypeBound }

// EventType implements domain.Event.
func (*Unbound) EventType() string { return TypeUnbound }

// EventType implements domain.Event.
func (*DeviceAttached) EventType() string { return TypeDeviceAttached }

// EventType implements domain.Event.
func (*DeviceDetached) EventType() string { return TypeDeviceDetached }

// EventType implements domain.Event.
func (*SecurityGroupsSet) EventType() string { return TypeSecurityGroupsSet }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

var registry = domain.Registry{
	TypeCreated:           func() domain.Event { return &Created{} },
	TypeBound:             func() domain.Event { return &Bound{} },
	TypeUnbound:           func() domain.Event { return &Unbound{} },
	TypeDeviceAttached:    func() domain.Event { return &DeviceAttached{} },
	TypeDeviceDetached:    func() domain.Event { return &DeviceDetached{} },
	TypeSecurityGroupsSet: func() domain.Event { return &SecurityGroupsSet{} },
	TypeDeleted:           func() domain.Event { return &Deleted{} },
	TypeAbandoned:         func() domain.Event { return &Abandoned{} },
}
