package server

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Tasks of interfaces attached or detached after the build.
const (
	AttachingInterface Task = "attaching_interface"
	DetachingInterface Task = "detaching_interface"
)

// Report kinds of interface work: the host plugged the NIC, unplugged it,
// or could not (either).
const (
	ReportInterfaceAttached ReportKind = "interface_attached"
	ReportInterfaceDetached ReportKind = "interface_detached"
	ReportInterfaceFailed   ReportKind = "interface_failed"
)

// AttachInterface asks for a NIC on a network for a server that is ACTIVE
// or STOPPED, with no task, and has fewer than MaxNICs: the saga makes its
// port, records it (SetInterfacePort), and the host plugs it.
type AttachInterface struct {
	Operation string
	Network   string
	At        time.Time
}

// SetInterfacePort records the port made for the interface being attached
// (the attach saga's network step). The same port again is no change.
type SetInterfacePort struct {
	Operation string
	NIC       NIC
	At        time.Time
}

// DetachInterface asks the host to unplug a server's NIC, named by its
// port; the saga deletes the port once it is unplugged.
type DetachInterface struct {
	Operation string
	Port      string
	At        time.Time
}

func (AttachInterface) serverCommand()  {}
func (SetInterfacePort) serverCommand() {}
func (DetachInterface) serverCommand()  {}

func decideAttach(s State, c AttachInterface) ([]domain.Event, error) {
	if err := s.settled("attach an interface to"); err != nil {
		return nil, err
	}
	if err := domain.CheckText("network", c.Network); err != nil {
		return nil, err
	}
	if c.Network == "" {
		return nil, domain.Invalidf("attach an interface: a network is needed")
	}
	if len(s.NICs) >= MaxNICs {
		return nil, domain.Conflictf("cannot attach an interface to server %s: it has %d NICs, the most a server can have", s.ID, len(s.NICs))
	}
	return one(&InterfaceAttachRequested{Host: s.Host, Operation: c.Operation, Network: c.Network, At: c.At})
}

func decideInterfacePort(s State, c SetInterfacePort) ([]domain.Event, error) {
	if s.Task != AttachingInterface || c.Operation != s.Operation {
		return nil, domain.Conflictf("server %s is %s (operation %s), not attaching the interface of operation %s", s.ID, s.describe(), s.Operation, c.Operation)
	}
	n := c.NIC
	if n.Network != s.Pending.Network || n.Port == "" || n.MAC == "" {
		return nil, domain.Invalidf("interface: port %q with MAC %q on network %q, want a port on network %s", n.Port, n.MAC, n.Network, s.Pending.Network)
	}
	if s.Pending.Port != "" {
		if s.Pending.equal(n) {
			return nil, nil
		}
		return nil, domain.Conflictf("server %s: the interface of operation %s has its port %s already", s.ID, c.Operation, s.Pending.Port)
	}
	return one(&InterfacePortSet{Host: s.Host, Operation: c.Operation, NIC: n, At: c.At})
}

func decideDetach(s State, c DetachInterface) ([]domain.Event, error) {
	if err := s.settled("detach an interface from"); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(s.NICs, func(n NIC) bool { return n.Port == c.Port })
	if c.Port == "" || i < 0 {
		return nil, domain.NotFoundf("server %s has no interface with port %q", s.ID, c.Port)
	}
	return one(&InterfaceDetachRequested{Host: s.Host, Operation: c.Operation, NIC: s.NICs[i], At: c.At})
}

// settled refuses an interface change unless the server is ACTIVE or
// STOPPED with no task.
func (s State) settled(action string) error {
	if err := s.idle(action); err != nil {
		return err
	}
	if s.Status != StatusActive && s.Status != StatusStopped {
		return domain.Conflictf("cannot %s server %s: it is %s; only an ACTIVE or STOPPED server can change its interfaces", action, s.ID, s.Status)
	}
	return nil
}

// decideInterfaceReport turns a host's report on the interface in progress
// into its event. The report must name the port of that interface, so a
// late answer to an earlier attach or detach is stale.
func decideInterfaceReport(s State, r Report) ([]domain.Event, error) {
	if r.Port == "" || r.Port != s.Pending.Port {
		return nil, domain.Conflictf("report %q on port %q does not answer server %s, whose interface in progress has port %q", r.Kind, r.Port, s.ID, s.Pending.Port)
	}
	switch r.Kind {
	case ReportInterfaceAttached:
		return one(&InterfaceAttached{Host: r.Host, Operation: s.Operation, NIC: s.Pending, At: r.At})
	case ReportInterfaceDetached:
		return one(&InterfaceDetached{Host: r.Host, Operation: s.Operation, Port: r.Port, At: r.At})
	default:
		return one(&InterfaceFailed{Host: s.Host, Task: s.Task, Operation: s.Operation, Port: r.Port, MAC: s.Pending.MAC, Reason: r.Reason, Detail: r.Detail, At: r.At})
	}
}

// interfaceTask tells whether t is an interface change.
func interfaceTask(t Task) bool { return t == AttachingInterface || t == DetachingInterface }

// evolveInterface folds the interface events (and leaves s as it is for
// any other).
func evolveInterface(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *InterfaceAttachRequested:
		s.Task, s.Operation, s.Reason = AttachingInterface, e.Operation, ""
		s.Pending, s.AttachOperation = NIC{Network: e.Network}, e.Operation
	case *InterfacePortSet:
		s.Pending = e.NIC
	case *InterfaceAttached:
		s.NICs = append(slices.Clone(s.NICs), e.NIC)
		s.Task, s.Pending, s.AttachOperation = NoTask, NIC{}, ""
	case *InterfaceDetachRequested:
		s.Task, s.Operation, s.Reason, s.Pending = DetachingInterface, e.Operation, "", e.NIC
	case *InterfaceDetached:
		s.NICs = slices.DeleteFunc(slices.Clone(s.NICs), func(n NIC) bool { return n.Port == e.Port })
		s.Task, s.Pending = NoTask, NIC{}
	case *InterfaceFailed:
		s.Task, s.Pending, s.Reason = NoTask, NIC{}, e.Reason
	}
	return s
}

// HasPorts tells whether the server may own ports (see Ports).
func (s State) HasPorts() bool {
	return len(s.Networks) > 0 || len(s.NICs) > 0 || s.Pending.Port != "" || s.AttachOperation != ""
}

// Ports are the ids of the ports a server may own: those made for the
// networks it was created with (by their derived ids, from portOf), its
// NICs, and the port of an attach that never finished (from attachPort,
// by its operation). Each id appears once.
func (s State) Ports(portOf func(i int) string, attachPort func(op string) string) []string {
	var out []string
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for i := range s.Networks {
		add(portOf(i))
	}
	for _, n := range s.NICs {
		add(n.Port)
	}
	add(s.Pending.Port)
	if s.AttachOperation != "" {
		add(attachPort(s.AttachOperation))
	}
	return out
}

// Interface event type names. Never rename or reuse one.
const (
	TypeInterfaceAttachRequested = "server.interface_attach_requested"
	TypeInterfacePortSet         = "server.interface_port_set"
	TypeInterfaceAttached        = "server.interface_attached"
	TypeInterfaceDetachRequested = "server.interface_detach_requested"
	TypeInterfaceDetached        = "server.interface_detached"
	TypeInterfaceFailed          = "server.interface_failed"
)

// InterfaceAttachRequested records that the user asked for a NIC on a
// network; the server's task is attaching_interface.
type InterfaceAttachRequested struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	Network   string    `json:"network_id"`
	At        time.Time `json:"at"`
}

// InterfacePortSet records the port made for the NIC being attached; its
// host is asked to plug it.
type InterfacePortSet struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	NIC       NIC       `json:"nic"`
	At        time.Time `json:"at"`
}

// InterfaceAttached records that the host plugged the NIC: it is the
// server's last NIC.
type InterfaceAttached struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	NIC       NIC       `json:"nic"`
	At        time.Time `json:"at"`
}

// InterfaceDetachRequested records that the user asked to remove a NIC;
// the server's task is detaching_interface.
type InterfaceDetachRequested struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	NIC       NIC       `json:"nic"`
	At        time.Time `json:"at"`
}

// InterfaceDetached records that the host unplugged the NIC of Port: the
// server no longer has it (the saga deletes the port).
type InterfaceDetached struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	Port      string    `json:"port_id"`
	At        time.Time `json:"at"`
}

// InterfaceFailed records that an attach or a detach (Task) did not
// happen: the host could not, or it did not answer in time. The server's
// NICs are as before; an attach's port is deleted by its saga.
type InterfaceFailed struct {
	Host      string `json:"host"`
	Task      Task   `json:"task"`
	Operation string `json:"operation_id"`
	Port      string `json:"port_id,omitempty"`
	// MAC is the NIC's, when it has a port: what the host may have
	// plugged of a failed attach is unplugged by it.
	MAC    string `json:"mac,omitempty"`
	Reason string `json:"reason"`
	// Detail is the host's own account, for admins (see SpawnFailed).
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

func (*InterfaceAttachRequested) EventType() string { return TypeInterfaceAttachRequested }
func (*InterfacePortSet) EventType() string         { return TypeInterfacePortSet }
func (*InterfaceAttached) EventType() string        { return TypeInterfaceAttached }
func (*InterfaceDetachRequested) EventType() string { return TypeInterfaceDetachRequested }
func (*InterfaceDetached) EventType() string        { return TypeInterfaceDetached }
func (*InterfaceFailed) EventType() string          { return TypeInterfaceFailed }
