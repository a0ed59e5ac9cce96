// Package server is the server aggregate: a virtual machine's desired state
// (what the user asked for), its observed power state (what its host
// reported), its task state (what is in progress) and the status shown to
// users, derived from the three. It decides which actions apply and refuses
// the others with a reason; it never talks to a host itself.
package server

import (
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the server stream subjects.
const AggregateType = "server"

// ID identifies a server (a UUID in canonical form).
type ID string

// Status is what users see.
type Status string

// Statuses shown to users.
const (
	StatusBuilding  Status = "BUILDING"
	StatusActive    Status = "ACTIVE"
	StatusStopped   Status = "STOPPED"
	StatusRebooting Status = "REBOOTING"
	StatusDeleting  Status = "DELETING"
	StatusDeleted   Status = "DELETED"
	StatusError     Status = "ERROR"
)

// Power is the observed power state reported by the host.
type Power string

// Observed power states.
const (
	NoState Power = "NOSTATE"
	Running Power = "RUNNING"
	Shutoff Power = "SHUTOFF"
	Paused  Power = "PAUSED"
	Crashed Power = "CRASHED"
)

// Desired is what the user asked for.
type Desired string

// Desired states.
const (
	WantRunning Desired = "running"
	WantStopped Desired = "stopped"
	WantDeleted Desired = "deleted"
)

// Task is the operation in progress on a server, if any.
type Task string

// Tasks.
const (
	NoTask      Task = ""
	Scheduling  Task = "scheduling"
	Spawning    Task = "spawning"
	PoweringOn  Task = "powering_on"
	PoweringOff Task = "powering_off"
	RebootTask  Task = "rebooting"
	DeleteTask  Task = "deleting"
)

// Flavor is the copy of the flavor a server was built from.
type Flavor struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	VCPUs   int    `json:"vcpus"`
	RAMMiB  int    `json:"ram_mib"`
	DiskGiB int    `json:"disk_gib"`
	// ExtraSpecs are the flavor's placement extra specs.
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
}

// State is what the decider knows about one server.
type State struct {
	ID     ID
	Exists bool
	// Abandoned: the id's create never committed and will not (Abandon).
	Abandoned bool
	Project   string
	Name      string
	Flavor    Flavor
	ImageID   string
	Host      string
	Desired   Desired
	Power     Power
	Task      Task
	Status    Status
	Reason    string
	Operation string
	CreatedAt time.Time
	Hints     Hints
	UserData  []byte
	// KeepRunning: a server found stopped behind Keel's back is started
	// again (the default).
	KeepRunning bool
	// DataDisksGiB are its blank data disks, by size.
	DataDisksGiB []int
	// KeyName and PublicKey: the keypair it was created with (a copy).
	KeyName   string
	PublicKey string
	// AdminPasswordSealed is the sealed generated password (nil for
	// servers created before passwords were generated).
	AdminPasswordSealed []byte
	// Attempts counts failed spawns of this build; FailedHosts are where.
	Attempts    int
	FailedHosts []string
	// Networks are the networks it asked for; NICs the ports made on them
	// (nil until the create saga's network step recorded them).
	Networks []string
	NICs     []NIC
	// Pending is the NIC being attached (its network, then its port) or
	// detached while the task is an interface change.
	Pending NIC
	// AttachOperation is the operation of an attach that has not ended
	// with the NIC attached: its port, made or not, is the server's to
	// release (State.Ports).
	AttachOperation string
}

// NIC is one network interface of a server: a port on a network, with its
// MAC and addresses, as the create or attach saga made it.
type NIC struct {
	Port    string   `json:"port_id"`
	Network string   `json:"network_id"`
	MAC     string   `json:"mac"`
	IPs     []string `json:"ips,omitempty"`
}

func (n NIC) equal(o NIC) bool {
	return n.Port == o.Port && n.Network == o.Network && n.MAC == o.MAC && slices.Equal(n.IPs, o.IPs)
}

// MaxBuildAttempts is how many hosts a build is tried on before ERROR.
const MaxBuildAttempts = 3

// Hints steer placement.
type Hints struct {
	AvailabilityZone string `json:"availability_zone,omitempty"`
	ServerGroup      string `json:"server_group,omitempty"`
	TargetHost       string `json:"target_host,omitempty"` // admins only
}

// check refuses hints that could not name a zone, a group or a host.
func (h Hints) check() error {
	names := []struct{ field, v string }{
		{"availability zone", h.AvailabilityZone}, {"target host", h.TargetHost},
	}
	for _, n := range names {
		if n.v == "" {
			continue
		}
		if err := domain.CheckName(n.field, n.v); err != nil {
			return err
		}
	}
	return domain.CheckText("server group", h.ServerGroup)
}

// Command is one of the commands in commands.go.
type Command interface{ serverCommand() }

// Decider is the server aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:     AggregateType,
	Decide:   Decide,
	Evolve:   Evolve,
	Init:     func(id string) State { return State{ID: ID(id)} },
	Registry: registry,
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s = State{ID: e.ID, Exists: true, Project: e.Project, Name: e.Name, Flavor: e.Flavor, ImageID: e.ImageID,
			Desired: WantRunning, Power: NoState, Task: Scheduling, Status: StatusBuilding, Operation: e.Operation, CreatedAt: e.CreatedAt, Hints: e.Hints, UserData: e.UserData,
			KeepRunning: e.KeepRunning == nil || *e.KeepRunning, DataDisksGiB: e.DataDisksGiB,
			KeyName: e.KeyName, PublicKey: e.PublicKey, AdminPasswordSealed: e.AdminPasswordSealed, Networks: e.Networks}
	case *NICsSet:
		s.NICs = e.NICs
	case *Scheduled:
		s.Host, s.Task = e.Host, Spawning
	case *SpawnFailed:
		s.FailedHosts = append(append([]string(nil), s.FailedHosts...), e.Host)
		s.Host, s.Task, s.Attempts = "", Scheduling, e.Attempt
	case *Spawned:
		s.Power, s.Task, s.Status, s.Reason = Running, NoTask, StatusActive, ""
	case *Failed:
		s.Host, s.Task, s.Status, s.Reason, s.Power = "", NoTask, StatusError, e.Reason, NoState
	case *StartRequested:
		s.Desired, s.Task, s.Operation = WantRunning, PoweringOn, e.Operation
	case *StopRequested:
		s.Desired, s.Task, s.Operation = WantStopped, PoweringOff, e.Operation
	case *RebootRequested:
		s.Task, s.Status, s.Operation = RebootTask, StatusRebooting, e.Operation
	case *Started:
		s.Power, s.Task, s.Status, s.Reason = Running, NoTask, StatusActive, ""
	case *Stopped:
		s.Power, s.Task, s.Status, s.Reason = Shutoff, NoTask, StatusStopped, ""
	case *Rebooted:
		s.Power, s.Task, s.Status, s.Reason = Running, NoTask, StatusActive, ""
	case *ActionFailed:
		s.Task, s.Reason = NoTask, e.Reason
		s.Status = statusFromPower(s.Power)
	case *DeleteRequested:
		s.Desired, s.Task, s.Status, s.Operation = WantDeleted, DeleteTask, StatusDeleting, e.Operation
	case *Deleted:
		s.Status, s.Task, s.Host, s.Power = StatusDeleted, NoTask, "", NoState
	case *PowerObserved:
		s.Power, s.Status, s.Reason = e.Power, statusFromPower(e.Power), ""
		if e.Desired != "" {
			s.Desired = e.Desired
		}
	case *Lost:
		s.Power, s.Status, s.Reason = NoState, StatusError, e.Reason
	case *Abandoned:
		s.ID, s.Abandoned = e.ID, true
	default:
		s = evolveInterface(s, ev)
	}
	return s
}

func statusFromPower(p Power) Status {
	switch p {
	case Running:
		return StatusActive
	case Shutoff, Paused, Crashed:
		return StatusStopped
	default:
		return StatusError
	}
}
