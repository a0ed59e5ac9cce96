package agent

import (
	"context"
	"errors"
	"io"

	"github.com/keel-cloud/keel/domain/server"
)

// ControlPlane is the agent's only way to the control plane (package
// hostlink implements it over NATS). A compute node is not trusted with the
// cloud: it never appends to the event log nor reads it. It receives the
// work of its own hosts, and it asks keel serve to record what happened;
// keel serve checks each request against what it recorded (is this server
// on this host?) before it becomes a command.
type ControlPlane interface {
	// Register records a host (a no-op when unchanged).
	Register(ctx context.Context, h HostInfo) error
	// Work delivers the work of hosts, in order per server, until ctx ends.
	// A do that fails is retried; work whose do succeeded is not delivered
	// again (but may be, after a crash: do must be idempotent).
	Work(ctx context.Context, hosts []string, do func(ctx context.Context, w Work) error) error
	// Report tells what became of a piece of work.
	Report(ctx context.Context, host string, r WorkReport) error
	// Servers returns what the control plane recorded of the servers placed
	// on host, and the unknown guests it last recorded there.
	Servers(ctx context.Context, host string) (Recorded, error)
	// Observe reports a difference between what host runs of a server and
	// what was recorded.
	Observe(ctx context.Context, host string, o Observation) error
	// UnknownGuests records the guests Keel did not create that host runs.
	UnknownGuests(ctx context.Context, host string, names, recorded []string) error
	// Image streams an image's bytes (an object of the image store) to a
	// host that builds a server from it.
	Image(ctx context.Context, host, object string) (io.ReadCloser, error)
	// Beat says host is alive (alive) or gone (a goodbye), over core NATS:
	// never the event log.
	Beat(host string, alive bool) error
	// Flush waits until what Beat sent has reached the control plane.
	Flush() error
	// AnswerConsole answers console-log requests for host until stop.
	AnswerConsole(host string, answer func(req []byte) []byte) (stop func(), err error)
	// ServeDisplays relays the control plane's console sessions to the
	// displays of host's servers, opened with open, until stop.
	ServeDisplays(host string, open func(ctx context.Context, server string) (io.ReadWriteCloser, error)) (stop func(), err error)
}

// ErrRefused is the error of a request the control plane refused, in its
// words (a report about a server not on the host, ...): final, never
// retried.
var ErrRefused = errors.New("keel serve refused")

// WorkKind is what a piece of work asks of a host.
type WorkKind string

// Work kinds.
const (
	WorkSpawn     WorkKind = "spawn"
	WorkStart     WorkKind = "start"
	WorkStop      WorkKind = "stop"
	WorkReboot    WorkKind = "reboot"
	WorkDelete    WorkKind = "delete"  // a delete the user asked for: reported
	WorkCleanup   WorkKind = "cleanup" // what a failed build left: destroyed, not reported
	WorkAttachNIC WorkKind = "attach_nic"
	WorkDetachNIC WorkKind = "detach_nic"
	WorkUnplugNIC WorkKind = "unplug_nic" // what a failed attach may have plugged: unplugged, not reported
	WorkReplugNIC WorkKind = "replug_nic" // what a failed detach may have unplugged: plugged again, not reported
)

// Work is one thing the control plane asks of one host, made from one event
// of a server (commit Seq, event Index: the report's command id derives from
// them, so that a repeated piece of work reports once).
type Work struct {
	Seq    uint64   `json:"seq"`
	Index  int      `json:"index"`
	Server string   `json:"server"`
	Host   string   `json:"host"`
	Kind   WorkKind `json:"kind"`
	Hard   bool     `json:"hard,omitempty"` // a hard reboot
	// NIC is the NIC to plug or unplug (attach_nic, detach_nic).
	NIC *NIC `json:"nic,omitempty"`
	// Spec is the server to build (spawn only). Its admin password never
	// travels in clear: SealedPassword is sealed to the host's own curve
	// key by keel serve (Sealer is the sender's public key); the link
	// opens it into Spec.AdminPassword before do. PasswordError says why
	// there is a password but it could not be given (by keel serve or by
	// the link); the build then fails with it.
	Spec           *ServerSpec `json:"spec,omitempty"`
	SealedPassword []byte      `json:"sealed_password,omitempty"`
	Sealer         string      `json:"sealer,omitempty"`
	PasswordError  string      `json:"password_error,omitempty"`
	Correlation    string      `json:"correlation,omitempty"`
	Causation      string      `json:"causation,omitempty"`
}

// WorkReport is what became of a piece of work.
type WorkReport struct {
	Seq         uint64            `json:"seq"`
	Index       int               `json:"index"`
	Server      string            `json:"server"`
	Kind        server.ReportKind `json:"kind"`
	Port        string            `json:"port,omitempty"` // the NIC's port, for interface reports
	Reason      string            `json:"reason,omitempty"`
	Detail      string            `json:"detail,omitempty"`
	Correlation string            `json:"correlation,omitempty"`
	Causation   string            `json:"causation,omitempty"`
}

// Recorded is what the control plane recorded of one host's servers.
type Recorded struct {
	Servers []RecordedServer `json:"servers"`
	// UnknownGuests are the guests Keel did not create, as last recorded.
	UnknownGuests []string `json:"unknown_guests,omitempty"`
}

// RecordedServer is one server placed on a host, as recorded at Version.
type RecordedServer struct {
	ID      string        `json:"id"`
	Version uint64        `json:"version"`
	Host    string        `json:"host"`
	Task    server.Task   `json:"task,omitempty"`
	Status  server.Status `json:"status"`
	Power   server.Power  `json:"power,omitempty"`
}

// Observation is a difference between what a host runs of a server and
// what was recorded at Version.
type Observation struct {
	Server  string       `json:"server"`
	Version uint64       `json:"version"`
	Power   server.Power `json:"power,omitempty"`
	Missing bool         `json:"missing,omitempty"`
}
