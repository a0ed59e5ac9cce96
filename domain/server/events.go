package server

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Event type names. Never rename or reuse one.
const (
	TypeCreated         = "server.created"
	TypeScheduled       = "server.scheduled"
	TypeSpawned         = "server.spawned"
	TypeSpawnFailed     = "server.spawn_failed"
	TypeFailed          = "server.failed"
	TypeStartRequested  = "server.start_requested"
	TypeStopRequested   = "server.stop_requested"
	TypeRebootRequested = "server.reboot_requested"
	TypeStarted         = "server.started"
	TypeStopped         = "server.stopped"
	TypeRebooted        = "server.rebooted"
	TypeActionFailed    = "server.action_failed"
	TypeDeleteRequested = "server.delete_requested"
	TypeDeleted         = "server.deleted"
	TypePowerObserved   = "server.power_observed"
	TypeLost            = "server.lost"
	TypeAbandoned       = "server.abandoned"
	TypeNICsSet         = "server.nics_set"
)

// NICsSet records the ports made for a server's networks before it is
// placed: its NICs, in order (eth0 first).
type NICsSet struct {
	Operation string    `json:"operation_id"`
	NICs      []NIC     `json:"nics"`
	At        time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*NICsSet) EventType() string { return TypeNICsSet }

// Abandoned closes the id of a server whose create never committed (see
// Abandon); the server never existed.
type Abandoned struct {
	ID     ID        `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType implements domain.Event.
func (*Abandoned) EventType() string { return TypeAbandoned }

// Created records a new server; it is BUILDING and waits for a host.
type Created struct {
	ID        ID     `json:"id"`
	Project   string `json:"project_id,omitempty"`
	Name      string `json:"name"`
	Flavor    Flavor `json:"flavor"`
	ImageID   string `json:"image_id"`
	Operation string `json:"operation_id"`
	Hints     Hints  `json:"hints,omitzero"`
	// UserData is the guest's first-boot user data (base64 in JSON).
	UserData []byte `json:"user_data,omitempty"`
	// KeepRunning false: a server found stopped behind Keel's back stays
	// stopped. Absent (older commits) means true.
	KeepRunning *bool `json:"keep_running,omitempty"`
	// DataDisksGiB are the blank data disks the server gets, by size.
	DataDisksGiB []int `json:"data_disks_gib,omitempty"`
	// KeyName and PublicKey: the keypair's name and a copy of its key.
	KeyName   string `json:"key_name,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	// AdminPasswordSealed is the generated admin password, AES-256-GCM
	// sealed with the server id as additional data (base64 in JSON).
	AdminPasswordSealed []byte `json:"admin_password_sealed,omitempty"`
	// Networks are the networks the server gets a NIC on, in order.
	Networks  []string  `json:"networks,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// SpawnFailed records a spawn that failed on one host; the build goes back
// to scheduling on another host (attempt counts the failures so far).
type SpawnFailed struct {
	Host    string `json:"host"`
	Reason  string `json:"reason"`
	Attempt int    `json:"attempt"`
	// Detail is the host's own account (paths, hypervisor messages), for
	// admins; Reason is the user's.
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Scheduled records the host chosen for a building server.
type Scheduled struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	At        time.Time `json:"at"`
}

// Spawned records that the host started the new server.
type Spawned struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// Failed records that a build failed; the server is in ERROR and holds no host.
// Host names the host that must clean up what it may have created.
type Failed struct {
	Host      string `json:"host,omitempty"`
	Reason    string `json:"reason"`
	Operation string `json:"operation_id"`
	// Detail is the last host's own account, for admins (see SpawnFailed).
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// StartRequested records that the user asked a stopped server to start.
type StartRequested struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	At        time.Time `json:"at"`
}

// StopRequested records that the user asked a running server to stop.
type StopRequested struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	At        time.Time `json:"at"`
}

// RebootRequested records that the user asked a running server to reboot:
// softly (a graceful shutdown, then a start) unless Hard (a reset).
type RebootRequested struct {
	Host      string    `json:"host"`
	Operation string    `json:"operation_id"`
	Hard      bool      `json:"hard,omitempty"`
	At        time.Time `json:"at"`
}

// Started records that the host reports the server running after a start.
type Started struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// Stopped records that the host reports the server shut off.
type Stopped struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// Rebooted records that the host reports the server rebooted and running.
type Rebooted struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// ActionFailed records that a start, stop or reboot did not happen.
type ActionFailed struct {
	Task   Task   `json:"task"`
	Reason string `json:"reason"`
	// Detail is the host's own account, for admins (see SpawnFailed).
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// DeleteRequested records that the user asked to delete the server.
// Host is empty when the server holds no host; then Deleted follows at once.
type DeleteRequested struct {
	Host string `json:"host,omitempty"`
	// Superseded is the operation that was in progress and ends with this delete.
	Superseded string    `json:"superseded,omitempty"`
	Operation  string    `json:"operation_id"`
	At         time.Time `json:"at"`
}

// Deleted records that the server is gone. Forced is set when the
// host did not confirm and the control plane let go of it anyway.
type Deleted struct {
	Host   string    `json:"host,omitempty"`
	Forced bool      `json:"forced,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// PowerObserved records that the host found the server in another power
// state than Keel had recorded, with no task in progress: drift. Desired,
// when set, is the desired state from now on (a server that is not kept
// running accepts being stopped). A restoring start or stop follows in the
// same commit when the policy asks for one.
type PowerObserved struct {
	Host     string    `json:"host"`
	Power    Power     `json:"power"`
	Previous Power     `json:"previous"`
	Desired  Desired   `json:"desired,omitempty"`
	At       time.Time `json:"at"`
}

// Lost records that the server's virtual machine is gone from its host:
// the server is in ERROR (its disks may be gone too; delete it).
type Lost struct {
	Host   string    `json:"host"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func (*Created) EventType() string         { return TypeCreated }
func (*PowerObserved) EventType() string   { return TypePowerObserved }
func (*Lost) EventType() string            { return TypeLost }
func (*Scheduled) EventType() string       { return TypeScheduled }
func (*Spawned) EventType() string         { return TypeSpawned }
func (*SpawnFailed) EventType() string     { return TypeSpawnFailed }
func (*Failed) EventType() string          { return TypeFailed }
func (*StartRequested) EventType() string  { return TypeStartRequested }
func (*StopRequested) EventType() string   { return TypeStopRequested }
func (*RebootRequested) EventType() string { return TypeRebootRequested }
func (*Started) EventType() string         { return TypeStarted }
func (*Stopped) EventType() string         { return TypeStopped }
func (*Rebooted) EventType() string        { return TypeRebooted }
func (*ActionFailed) EventType() string    { return TypeActionFailed }
func (*DeleteRequested) EventType() string { return TypeDeleteRequested }
func (*Deleted) EventType() string         { return TypeDeleted }

var registry = domain.Registry{
	TypeCreated:         func() domain.Event { return &Created{} },
	TypeScheduled:       func() domain.Event { return &Scheduled{} },
	TypeSpawned:         func() domain.Event { return &Spawned{} },
	TypeSpawnFailed:     func() domain.Event { return &SpawnFailed{} },
	TypeFailed:          func() domain.Event { return &Failed{} },
	TypeStartRequested:  func() domain.Event { return &StartRequested{} },
	TypeStopRequested:   func() domain.Event { return &StopRequested{} },
	TypeRebootRequested: func() domain.Event { return &RebootRequested{} },
	TypeStarted:         func() domain.Event { return &Started{} },
	TypeStopped:         func() domain.Event { return &Stopped{} },
	TypeRebooted:        func() domain.Event { return &Rebooted{} },
	TypeActionFailed:    func() domain.Event { return &ActionFailed{} },
	TypeDeleteRequested: func() domain.Event { return &DeleteRequested{} },
	TypeDeleted:         func() domain.Event { return &Deleted{} },
	TypePowerObserved:   func() domain.Event { return &PowerObserved{} },
	TypeLost:            func() domain.Event { return &Lost{} },
	TypeAbandoned:       func() domain.Event { return &Abandoned{} },
	TypeNICsSet:         func() domain.Event { return &NICsSet{} },

	TypeInterfaceAttachRequested: func() domain.Event { return &InterfaceAttachRequested{} },
	TypeInterfacePortSet:         func() domain.Event { return &InterfacePortSet{} },
	TypeInterfaceAttached:        func() domain.Event { return &InterfaceAttached{} },
	TypeInterfaceDetachRequested: func() domain.Event { return &InterfaceDetachRequested{} },
	TypeInterfaceDetached:        func() domain.Event { return &InterfaceDetached{} },
	TypeInterfaceFailed:          func() domain.Event { return &InterfaceFailed{} },
}
