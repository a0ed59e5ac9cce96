package server

import (
	"fmt"
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Create asks for a new server built from a flavor and an image.
type Create struct {
	ID ID
	// Project owns the server.
	Project   string
	Name      string
	Flavor    Flavor
	ImageID   string
	Operation string
	Hints     Hints
	// UserData is given to the guest at first boot (at most MaxUserData bytes).
	UserData []byte
	// KeepRunning nil means true.
	KeepRunning *bool
	// DataDisksGiB are blank data disks to attach, by size (at most
	// MaxDataDisks, each up to MaxDataDiskGiB).
	DataDisksGiB []int
	// KeyName and PublicKey are the keypair the server is created with,
	// copied: a later delete of the keypair changes no server.
	KeyName   string
	PublicKey string
	// AdminPasswordSealed is the generated password of the guest's admin
	// user, sealed (package secrets) with the server id as additional
	// data; never the plaintext.
	AdminPasswordSealed []byte
	// Networks are the networks (ids) the server gets a NIC on, in order
	// (at most MaxNICs): the create saga makes a port on each before
	// placing the server.
	Networks []string
	At       time.Time
}

// MaxNICs bounds a server's NICs.
const MaxNICs = 8

// SetNICs records the ports made for the server's networks (the create
// saga's network step): one per network, in the order asked.
type SetNICs struct {
	Operation string
	NICs      []NIC
	At        time.Time
}

// MaxPublicKey bounds the copied public key (16 KiB, as keypairs).
const MaxPublicKey = 16 << 10

// MaxSealedPassword bounds a sealed password: a nonce, a tag and a short
// password fit in far less.
const MaxSealedPassword = 256

// Bounds of a server's data disks.
const (
	MaxDataDisks   = 8
	MaxDataDiskGiB = 16384
)

// MaxUserData bounds a server's user data, as Nova does (64 KiB).
const MaxUserData = 65535

// Schedule places a building server on a host.
type Schedule struct {
	Host      string
	Operation string
	At        time.Time
}

// Fail ends a build in ERROR with a reason (compensation of a failed build).
type Fail struct {
	Reason    string
	Operation string
	At        time.Time
}

// Start, Stop and Reboot are user actions on an existing server.
type (
	Start struct {
		Operation string
		At        time.Time
	}
	Stop struct {
		Operation string
		At        time.Time
	}
	Reboot struct {
		Operation string
		// Hard resets the guest at once; a soft reboot (the default)
		// shuts it down gracefully, then starts it.
		Hard bool
		At   time.Time
	}
)

// Delete removes a server, in any state.
type Delete struct {
	Operation string
	At        time.Time
}

// ForceDelete lets go of a server whose host did not confirm the delete.
type ForceDelete struct {
	Reason string
	At     time.Time
}

// AbortTask ends a start, stop, reboot or interface change that did not
// finish in time.
type AbortTask struct {
	Reason string
	At     time.Time
}

// Report is what a host says happened to one of its servers.
type Report struct {
	Host string
	Kind ReportKind
	// Port names the NIC of an interface report (the port plugged or
	// unplugged); empty for the others.
	Port   string
	Reason string // for failures, in the user's words
	// Detail is the host's own account of a failure (paths, hypervisor
	// messages): kept in the server's events for admins, never shown as
	// the reason.
	Detail string
	At     time.Time
}

// MaxReportDetail bounds a failure's detail.
const MaxReportDetail = 4096

// Abandon closes a server id whose create never committed: its quota
// reservation was left by a crash between the reservation and the server's
// first commit, and is given back (package sagas/monitors). A create of
// this id is refused afterwards, so a late retry of the request cannot make
// a server that holds no quota. It is refused once the server exists.
type Abandon struct {
	Reason string
	At     time.Time
}

// Observe is what a host sees of one of its servers in its periodic sync
// or on a hypervisor event: its power state, or that its virtual machine
// is missing. Operation names the operation of a restoring start or stop,
// should the observation call for one.
type Observe struct {
	Host      string
	Power     Power
	Missing   bool
	Operation string
	At        time.Time
}

// ReportKind is what a host reports.
type ReportKind string

// Report kinds.
const (
	ReportSpawned      ReportKind = "spawned"
	ReportSpawnFailed  ReportKind = "spawn_failed"
	ReportStarted      ReportKind = "started"
	ReportStopped      ReportKind = "stopped"
	ReportRebooted     ReportKind = "rebooted"
	ReportActionFailed ReportKind = "action_failed"
	ReportDestroyed    ReportKind = "destroyed"
)

func (Create) serverCommand()      {}
func (Abandon) serverCommand()     {}
func (Schedule) serverCommand()    {}
func (Fail) serverCommand()        {}
func (Start) serverCommand()       {}
func (Stop) serverCommand()        {}
func (Reboot) serverCommand()      {}
func (Delete) serverCommand()      {}
func (ForceDelete) serverCommand() {}
func (AbortTask) serverCommand()   {}
func (Report) serverCommand()      {}
func (Observe) serverCommand()     {}
func (SetNICs) serverCommand()     {}

// Decide returns the events a command produces, or says why it does not apply.
func Decide(s State, c Command) ([]domain.Event, error) {
	if a, ok := c.(Abandon); ok {
		switch {
		case s.Exists:
			return nil, domain.Conflictf("server %s exists: its create is not abandoned", s.ID)
		case s.Abandoned:
			return nil, nil
		}
		return one(&Abandoned{ID: s.ID, Reason: a.Reason, At: a.At})
	}
	if _, ok := c.(Create); !ok {
		if !s.Exists || (s.Status == StatusDeleted && !isReport(c)) {
			return nil, domain.NotFoundf("server %s not found", s.ID)
		}
	}
	switch c := c.(type) {
	case Create:
		return decideCreate(s, c)
	case Schedule:
		if s.Task != Scheduling {
			return nil, domain.Conflictf("server %s is %s, not waiting for a host", s.ID, s.describe())
		}
		if c.Host == "" {
			return nil, domain.Invalidf("schedule: host must not be empty")
		}
		return one(&Scheduled{Host: c.Host, Operation: c.Operation, At: c.At})
	case SetNICs:
		return decideSetNICs(s, c)
	case Fail:
		if s.Task != Scheduling && s.Task != Spawning {
			return nil, domain.Conflictf("server %s is %s, not building", s.ID, s.describe())
		}
		return one(&Failed{Host: s.Host, Reason: c.Reason, Operation: c.Operation, At: c.At})
	case Start:
		if err := s.idle("start"); err != nil {
			return nil, err
		}
		if s.Status != StatusStopped {
			return nil, domain.Conflictf("cannot start server %s: it is %s; only a STOPPED server can be started", s.ID, s.Status)
		}
		return one(&StartRequested{Host: s.Host, Operation: c.Operation, At: c.At})
	case Stop:
		if err := s.idle("stop"); err != nil {
			return nil, err
		}
		if s.Status != StatusActive {
			return nil, domain.Conflictf("cannot stop server %s: it is %s; only an ACTIVE server can be stopped", s.ID, s.Status)
		}
		return one(&StopRequested{Host: s.Host, Operation: c.Operation, At: c.At})
	case Reboot:
		if err := s.idle("reboot"); err != nil {
			return nil, err
		}
		if s.Status != StatusActive {
			return nil, domain.Conflictf("cannot reboot server %s: it is %s; only an ACTIVE server can be rebooted", s.ID, s.Status)
		}
		return one(&RebootRequested{Host: s.Host, Operation: c.Operation, Hard: c.Hard, At: c.At})
	case Delete:
		if s.Status == StatusDeleting {
			return nil, nil // already being deleted: the caller gets that operation
		}
		dr := &DeleteRequested{Host: s.Host, Operation: c.Operation, At: c.At}
		if s.Task != NoTask {
			dr.Superseded = s.Operation
		}
		evs := []domain.Event{dr}
		if s.Host == "" {
			evs = append(evs, &Deleted{At: c.At})
		}
		return evs, nil
	case ForceDelete:
		if s.Status != StatusDeleting {
			return nil, domain.Conflictf("server %s is %s, not being deleted", s.ID, s.Status)
		}
		return one(&Deleted{Host: s.Host, Forced: true, Reason: c.Reason, At: c.At})
	case AbortTask:
		if interfaceTask(s.Task) {
			return one(&InterfaceFailed{Host: s.Host, Task: s.Task, Operation: s.Operation, Port: s.Pending.Port, MAC: s.Pending.MAC, Reason: c.Reason, At: c.At})
		}
		if s.Task != PoweringOn && s.Task != PoweringOff && s.Task != RebootTask {
			return nil, domain.Conflictf("server %s has no start, stop, reboot or interface change in progress", s.ID)
		}
		return one(&ActionFailed{Task: s.Task, Reason: c.Reason, At: c.At})
	case AttachInterface:
		return decideAttach(s, c)
	case SetInterfacePort:
		return decideInterfacePort(s, c)
	case DetachInterface:
		return decideDetach(s, c)
	case Report:
		return decideReport(s, c)
	case Observe:
		return decideObserve(s, c)
	default:
		return nil, domain.Invalidf("server: unknown command %T", c)
	}
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("server %s already exists", s.ID)
	}
	if s.Abandoned {
		return nil, domain.Conflictf("the create of server %s was abandoned: it was cut short by a crash and its quota given back; send the request again with a new Idempotency-Key", s.ID)
	}
	if err := domain.CheckName("name", c.Name); err != nil {
		return nil, err
	}
	if err := c.Hints.check(); err != nil {
		return nil, err
	}
	if c.Flavor.ID == "" || c.ImageID == "" {
		return nil, domain.Invalidf("a server needs a flavor and an image")
	}
	if len(c.UserData) > MaxUserData {
		return nil, domain.Invalidf("user_data is %d bytes; at most %d", len(c.UserData), MaxUserData)
	}
	if err := c.checkLogin(); err != nil {
		return nil, err
	}
	if len(c.DataDisksGiB) > MaxDataDisks {
		return nil, domain.Invalidf("%d data disks; at most %d", len(c.DataDisksGiB), MaxDataDisks)
	}
	for i, g := range c.DataDisksGiB {
		if g < 1 || g > MaxDataDiskGiB {
			return nil, domain.Invalidf("data disk %d is %d GiB; from 1 to %d", i+1, g, MaxDataDiskGiB)
		}
	}
	if len(c.Networks) > MaxNICs {
		return nil, domain.Invalidf("%d networks; a server has at most %d NICs", len(c.Networks), MaxNICs)
	}
	for i, n := range c.Networks {
		if n == "" {
			return nil, domain.Invalidf("network %d is empty", i+1)
		}
	}
	return one(&Created{ID: c.ID, Project: c.Project, Name: c.Name, Flavor: c.Flavor, ImageID: c.ImageID, Operation: c.Operation, Hints: c.Hints, UserData: c.UserData,
		KeyName: c.KeyName, PublicKey: c.PublicKey, AdminPasswordSealed: c.AdminPasswordSealed, KeepRunning: c.KeepRunning, DataDisksGiB: c.DataDisksGiB,
		Networks: c.Networks, CreatedAt: c.At})
}

// decideSetNICs records the NICs of a server waiting for its host: one per
// network it asked for, in order, each naming its port. The same NICs again
// are no change (a retried step).
func decideSetNICs(s State, c SetNICs) ([]domain.Event, error) {
	if s.Task != Scheduling || s.Host != "" {
		return nil, domain.Conflictf("server %s is %s, not waiting for its network ports", s.ID, s.describe())
	}
	if c.Operation != s.Operation {
		return nil, domain.Conflictf("server %s: NICs of operation %s, but its operation is %s", s.ID, c.Operation, s.Operation)
	}
	if len(c.NICs) != len(s.Networks) {
		return nil, domain.Invalidf("server %s asked for %d networks, got %d NICs", s.ID, len(s.Networks), len(c.NICs))
	}
	for i, n := range c.NICs {
		if n.Network != s.Networks[i] || n.Port == "" || n.MAC == "" {
			return nil, domain.Invalidf("NIC %d: port %q with MAC %q on network %q, want a port on network %s", i+1, n.Port, n.MAC, n.Network, s.Networks[i])
		}
	}
	if s.NICs != nil {
		if slices.EqualFunc(s.NICs, c.NICs, NIC.equal) {
			return nil, nil
		}
		return nil, domain.Conflictf("server %s already has its NICs", s.ID)
	}
	return one(&NICsSet{Operation: c.Operation, NICs: c.NICs, At: c.At})
}

// checkLogin checks the first-boot credentials: a key name comes with its
// key, and neither the key nor the sealed password is oversized.
func (c Create) checkLogin() error {
	if (c.KeyName == "") != (c.PublicKey == "") {
		return domain.Invalidf("a keypair needs both its name and its public key")
	}
	if c.KeyName != "" {
		if err := domain.CheckName("key_name", c.KeyName); err != nil {
			return err
		}
		if err := domain.CheckTextUpTo("public_key", c.PublicKey, MaxPublicKey); err != nil {
			return err
		}
	}
	if len(c.AdminPasswordSealed) > MaxSealedPassword {
		return domain.Invalidf("the sealed admin password is %d bytes; at most %d", len(c.AdminPasswordSealed), MaxSealedPassword)
	}
	return nil
}

// decideObserve records drift: what the host sees differs from what Keel
// recorded while no task is in progress. The default policy restores the
// desired state: a server that should run and is found stopped (a host
// reboot, a crash, a stop behind Keel's back) is started again unless it
// is not kept running; one that should be stopped and runs is stopped. A
// missing virtual machine leaves the server in ERROR. Observations during
// a task, or of a server not settled (building, deleting, in ERROR), say
// nothing and change nothing.
func decideObserve(s State, c Observe) ([]domain.Event, error) {
	if c.Host == "" || c.Host != s.Host {
		return nil, domain.Conflictf("host %q observes server %s, which is on host %q", c.Host, s.ID, s.Host)
	}
	if s.Task != NoTask || (s.Status != StatusActive && s.Status != StatusStopped) {
		return nil, nil
	}
	if c.Missing {
		return one(&Lost{Host: s.Host, Reason: "its virtual machine disappeared from host " + s.Host, At: c.At})
	}
	switch c.Power {
	case Running, Shutoff, Paused, Crashed:
	default:
		return nil, domain.Invalidf("observed power %q is not RUNNING, SHUTOFF, PAUSED or CRASHED", c.Power)
	}
	if c.Power == s.Power {
		return nil, nil
	}
	po := &PowerObserved{Host: s.Host, Power: c.Power, Previous: s.Power, At: c.At}
	evs := []domain.Event{po}
	switch {
	case s.Desired == WantRunning && c.Power != Running && s.KeepRunning:
		evs = append(evs, &StartRequested{Host: s.Host, Operation: c.Operation, At: c.At})
	case s.Desired == WantRunning && c.Power != Running:
		po.Desired = WantStopped // not kept running: it stays as found
	case s.Desired == WantStopped && c.Power == Running:
		evs = append(evs, &StopRequested{Host: s.Host, Operation: c.Operation, At: c.At})
	}
	return evs, nil
}

// decideReport accepts a host's report only when it answers the task in
// progress on that host; anything else is stale and refused as a conflict.
func decideReport(s State, r Report) ([]domain.Event, error) {
	if err := domain.CheckTextUpTo("report detail", r.Detail, MaxReportDetail); err != nil {
		return nil, err
	}
	if r.Host == "" || r.Host != s.Host {
		return nil, domain.Conflictf("host %q reports on server %s, which is on host %q", r.Host, s.ID, s.Host)
	}
	want, known := map[ReportKind][]Task{
		ReportSpawned: {Spawning}, ReportSpawnFailed: {Spawning},
		ReportStarted: {PoweringOn}, ReportStopped: {PoweringOff}, ReportRebooted: {RebootTask},
		ReportActionFailed: {PoweringOn, PoweringOff, RebootTask}, ReportDestroyed: {DeleteTask},
		ReportInterfaceAttached: {AttachingInterface}, ReportInterfaceDetached: {DetachingInterface},
		ReportInterfaceFailed: {AttachingInterface, DetachingInterface},
	}[r.Kind]
	if !known {
		return nil, domain.Invalidf("unknown report kind %q", r.Kind)
	}
	match := false
	for _, t := range want {
		match = match || t == s.Task
	}
	if !match {
		return nil, domain.Conflictf("report %q does not answer server %s, which is %s", r.Kind, s.ID, s.describe())
	}
	switch r.Kind {
	case ReportInterfaceAttached, ReportInterfaceDetached, ReportInterfaceFailed:
		return decideInterfaceReport(s, r)
	case ReportSpawned:
		return one(&Spawned{Host: r.Host, At: r.At})
	case ReportSpawnFailed:
		if s.Attempts+1 < MaxBuildAttempts {
			return one(&SpawnFailed{Host: r.Host, Reason: r.Reason, Attempt: s.Attempts + 1, Detail: r.Detail, At: r.At})
		}
		reason := fmt.Sprintf("build failed on %d hosts; last on %s: %s", s.Attempts+1, r.Host, r.Reason)
		return one(&Failed{Host: r.Host, Reason: reason, Operation: s.Operation, Detail: r.Detail, At: r.At})
	case ReportStarted:
		return one(&Started{Host: r.Host, At: r.At})
	case ReportStopped:
		return one(&Stopped{Host: r.Host, At: r.At})
	case ReportRebooted:
		return one(&Rebooted{Host: r.Host, At: r.At})
	case ReportActionFailed:
		return one(&ActionFailed{Task: s.Task, Reason: r.Reason, Detail: r.Detail, At: r.At})
	case ReportDestroyed:
		return one(&Deleted{Host: r.Host, At: r.At})
	}
	return nil, domain.Invalidf("unknown report kind %q", r.Kind)
}

func isReport(c Command) bool { _, ok := c.(Report); return ok }

func (s State) idle(action string) error {
	if s.Task != NoTask {
		return domain.Conflictf("cannot %s server %s: it is %s (operation %s); wait for that to finish", action, s.ID, s.describe(), s.Operation)
	}
	return nil
}

func (s State) describe() string {
	if s.Task != NoTask {
		return string(s.Task)
	}
	return string(s.Status)
}

func one(ev domain.Event) ([]domain.Event, error) { return []domain.Event{ev}, nil }
