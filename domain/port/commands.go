package port

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Create makes a port.
type Create struct {
	ID      ID
	Network string
	Project string
	// Name is optional.
	Name string
	// MAC is made by the caller; GeneratedMAC says so (it must then be
	// locally administered).
	MAC          string
	GeneratedMAC bool
	// FixedIPs were allocated by the caller from their subnets, keyed by ID.
	FixedIPs       []FixedIP
	SecurityGroups []string
	// PortSecurity nil means on.
	PortSecurity *bool
	DeviceOwner  string
	DeviceID     string
	At           time.Time
}

// Bind binds the port to the host its device runs on (again on a move).
type Bind struct {
	Host string
	At   time.Time
}

// Unbind ends the port's binding.
type Unbind struct{ At time.Time }

// AttachDevice gives the port to a device (a server's NIC).
type AttachDevice struct {
	DeviceOwner string
	DeviceID    string
	At          time.Time
}

// DetachDevice takes the port from its device.
type DetachDevice struct{ At time.Time }

// SetSecurityGroups replaces the port's security groups.
type SetSecurityGroups struct {
	SecurityGroups []string
	At             time.Time
}

// Delete removes the port. A port a router or a floating IP owns goes with
// it (ByOwner); a user cannot delete it directly.
type Delete struct {
	ByOwner bool
	At      time.Time
}

// Abandon closes a port id whose create never committed: a crash between
// the address allocation (or quota reservation) and the port's first commit
// left them held, and the sweep gives them back (package sagas/monitors). A
// create of this id is refused afterwards, so a late retry of the request
// cannot make a port whose address was handed out again. It is refused once
// the port exists.
type Abandon struct {
	Reason string
	At     time.Time
}

func (Create) portCommand()            {}
func (Abandon) portCommand()           {}
func (Bind) portCommand()              {}
func (Unbind) portCommand()            {}
func (AttachDevice) portCommand()      {}
func (DetachDevice) portCommand()      {}
func (SetSecurityGroups) portCommand() {}
func (Delete) portCommand()            {}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if cr, ok := c.(Create); ok {
		return decideCreate(s, cr)
	}
	if a, ok := c.(Abandon); ok {
		switch {
		case s.Exists:
			return nil, domain.Conflictf("port %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return []domain.Event{&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At}}, nil
	}
	if !s.Live() {
		return nil, domain.NotFoundf("port %s not found", s.ID)
	}
	switch c := c.(type) {
	case Bind:
		return decideBind(s, c)
	case Unbind:
		if s.Host == "" {
			return nil, nil
		}
		return []domain.Event{&Unbound{Host: s.Host, At: c.At}}, nil
	case AttachDevice:
		return decideAttach(s, c)
	case DetachDevice:
		if s.DeviceOwner == "" {
			return nil, nil
		}
		return []domain.Event{&DeviceDetached{DeviceOwner: s.DeviceOwner, DeviceID: s.DeviceID, At: c.At}}, nil
	case SetSecurityGroups:
		if err := checkSecurityGroups(c.SecurityGroups, s.PortSecurity); err != nil {
			return nil, err
		}
		if slices.Equal(c.SecurityGroups, s.SecurityGroups) {
			return nil, nil
		}
		return []domain.Event{&SecurityGroupsSet{SecurityGroups: slices.Clone(c.SecurityGroups), At: c.At}}, nil
	case Delete:
		if s.DeviceOwner == OwnerServer && s.DeviceID != "" && !c.ByOwner {
			return nil, domain.Conflictf("port %s is a NIC of server %s; detach it from the server (keel server detach-interface) or delete the server, and the port goes with it", s.ID, s.DeviceID)
		}
		if slices.Contains(networkOwners, s.DeviceOwner) && !c.ByOwner {
			return nil, domain.Conflictf("port %s belongs to %s %s; remove it there (a router interface or gateway from its router, a floating IP by deleting it)", s.ID, s.DeviceOwner, s.DeviceID)
		}
		return []domain.Event{&Deleted{FixedIPs: s.FixedIPs, At: c.At}}, nil
	default:
		return nil, domain.Invalidf("port: unknown command %T", c)
	}
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("port %s already exists", s.ID)
	}
	if s.Abandoned {
		return nil, domain.Conflictf("the create of port %s was abandoned: it was cut short and its address given back; send the request again with a new Idempotency-Key", s.ID)
	}
	if c.Network == "" || c.Project == "" {
		return nil, domain.Invalidf("a port belongs to a network and a project")
	}
	if c.Name != "" {
		if err := domain.CheckName("name", c.Name); err != nil {
			return nil, err
		}
	}
	mac, err := checkMAC(c.MAC, c.GeneratedMAC)
	if err != nil {
		return nil, err
	}
	if err := checkFixedIPs(c.FixedIPs); err != nil {
		return nil, err
	}
	portSecurity := c.PortSecurity == nil || *c.PortSecurity
	if err := checkSecurityGroups(c.SecurityGroups, portSecurity); err != nil {
		return nil, err
	}
	if err := checkDevice(c.DeviceOwner, c.DeviceID); err != nil {
		return nil, err
	}
	return []domain.Event{&Created{ID: c.ID, Network: c.Network, Project: c.Project, Name: c.Name, MAC: mac, FixedIPs: slices.Clone(c.FixedIPs),
		SecurityGroups: slices.Clone(c.SecurityGroups), PortSecurity: portSecurity, DeviceOwner: c.DeviceOwner, DeviceID: c.DeviceID, CreatedAt: c.At}}, nil
}

func decideBind(s State, c Bind) ([]domain.Event, error) {
	if err := domain.CheckName("host", c.Host); err != nil {
		return nil, err
	}
	if s.DeviceOwner == "" {
		return nil, domain.Conflictf("port %s has no device; attach it to a server before binding it to a host", s.ID)
	}
	if c.Host == s.Host {
		return nil, nil
	}
	return []domain.Event{&Bound{Host: c.Host, At: c.At}}, nil
}

func decideAttach(s State, c AttachDevice) ([]domain.Event, error) {
	if c.DeviceOwner == "" || c.DeviceID == "" {
		return nil, domain.Invalidf("attaching a port needs a device owner and a device id")
	}
	if err := checkDevice(c.DeviceOwner, c.DeviceID); err != nil {
		return nil, err
	}
	if c.DeviceOwner == s.DeviceOwner && c.DeviceID == s.DeviceID {
		return nil, nil
	}
	if s.DeviceOwner != "" {
		return nil, domain.Conflictf("port %s is in use by %s %s; detach it first", s.ID, s.DeviceOwner, s.DeviceID)
	}
	return []domain.Event{&DeviceAttached{DeviceOwner: c.DeviceOwner, DeviceID: c.DeviceID, At: c.At}}, nil
}
