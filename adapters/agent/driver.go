// Package agent is the host agent: it follows the server events addressed to
// the hosts it manages, drives each host's hypervisor through the Driver
// port, and reports what happened as commands. The fake driver (simulated
// hosts) and the libvirt driver sit behind the same port.
//
// The agent never decides anything: a report the server aggregate refuses
// (because the user moved on) is dropped.
package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/keel-cloud/keel/domain/host"
)

// ServerSpec is what a driver needs to create a server.
type ServerSpec struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	VCPUs   int    `json:"vcpus"`
	RAMMiB  int    `json:"ram_mib"`
	DiskGiB int    `json:"disk_gib"`
	ImageID string `json:"image_id"`
	// Image is the image the root disk is made from (its bytes are fetched
	// by object name and checked against SHA256 and Format).
	Image ImageRef `json:"image"`
	// UserData is given to the guest at first boot (NoCloud user-data).
	UserData []byte `json:"user_data,omitempty"`
	// DataDisksGiB are blank data disks to attach, by size.
	DataDisksGiB []int `json:"data_disks_gib,omitempty"`
	// SSHKeys are the public keys (authorized_keys lines) to authorize for
	// the guest's admin user, keel, at first boot.
	SSHKeys []string `json:"ssh_keys,omitempty"`
	// AdminPassword is the plaintext password of the admin user, keel,
	// opened by the agent from the copy keel serve sealed to the host (nil for
	// servers without one). Drivers must not log it.
	AdminPassword []byte `json:"-"`
	// NICs are the server's network interfaces, in order (eth0 first):
	// each is a Keel port, plugged into the host's integration bridge.
	NICs []NIC `json:"nics,omitempty"`
}

// NIC is one network interface of a server: the Keel port it is plugged
// as (the OVN logical switch port of the same id) and its MAC address.
type NIC struct {
	PortID string `json:"port_id"`
	MAC    string `json:"mac"`
}

// ImageRef is what a driver needs to know of an image.
type ImageRef struct {
	ID     string `json:"id"`
	Object string `json:"object"` // object name in the image store
	SHA256 string `json:"sha256"` // hex, as recorded at upload
	Size   int64  `json:"size"`
	Format string `json:"format"` // declared disk format: raw, qcow2 or iso
}

// Power is a server's power state as the hypervisor reports it.
type Power string

// The power states a driver observes.
const (
	Running Power = "RUNNING"
	Shutoff Power = "SHUTOFF"
	Paused  Power = "PAUSED"
	Crashed Power = "CRASHED"
)

// Observed is one server (or unknown guest) a host holds.
type Observed struct {
	// ID is the Keel server id; empty for a guest Keel did not create.
	ID    string
	Name  string // the hypervisor's name for it
	Power Power
}

// Driver is the port to one host's hypervisor. Every call is idempotent:
// destroying a missing server or starting a running one succeeds. A call
// on a server the host does not hold fails with an error for which
// errors.Is(err, ErrNoServer) holds.
type Driver interface {
	// Spawn creates and starts a server.
	Spawn(ctx context.Context, s ServerSpec) error
	PowerOn(ctx context.Context, id string) error
	// PowerOff stops a server: gracefully, then forced after the driver's
	// stop timeout.
	PowerOff(ctx context.Context, id string) error
	// Reboot restarts a server: softly (a graceful stop as PowerOff, then
	// a start) or hard (a reset).
	Reboot(ctx context.Context, id string, hard bool) error
	// Destroy stops and removes a server and everything it holds on the host.
	Destroy(ctx context.Context, id string) error
	// Observe lists what the host holds: Keel's servers and any other guest.
	Observe(ctx context.Context) ([]Observed, error)
	// AttachNIC plugs a NIC into a server: into its definition, and live
	// when it runs. A NIC it has already (the same MAC) is fine.
	AttachNIC(ctx context.Context, id string, n NIC) error
	// DetachNIC unplugs a server's NIC (by its MAC): from its definition,
	// and live when it runs. A NIC it does not have is fine.
	DetachNIC(ctx context.Context, id string, n NIC) error
}

// NICLister is what a driver tells of a server's NICs: those of its
// definition, in order (what it has at its next boot).
type NICLister interface {
	NICs(ctx context.Context, id string) ([]NIC, error)
}

// Checker is what a driver whose hypervisor can be unreachable offers: an
// error while it does not answer. The agent heartbeats a host only while
// its check passes.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrNoServer is the error of a call on a server the host does not hold.
var ErrNoServer = errors.New("no such server on this host")

// HostInfo is what a host registers with.
type HostInfo struct {
	Name   string
	Driver string
	// Hypervisor, CPUModel and CPUFeatures are what the driver read from
	// the hypervisor (empty for simulated hosts).
	Hypervisor  string
	CPUModel    string
	CPUFeatures []string
	VCPUs       int
	RAMMiB      int
	DiskGiB     int
	Traits      []string
	// Ratios are the overcommit ratios set at first registration (nil: the defaults).
	Ratios *host.Ratios
}

// Host is one managed host: its identity and its driver.
type Host struct {
	Info   HostInfo
	Driver Driver
}

// ErrInjected is the failure a simulated host injects.
var ErrInjected = errors.New("injected failure")

// Failure is a driver error with words for the user: Reason is what the
// server's operation shows; the wrapped error, with its paths and
// hypervisor detail, goes to the agent's log.
type Failure struct {
	Reason string
	Err    error
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Failf wraps err with a reason for the user.
func Failf(err error, format string, args ...any) error {
	return &Failure{Reason: fmt.Sprintf(format, args...), Err: err}
}

// Reason is what the user is told of err: the reason of its Failure, or,
// for an error no driver explained, a plain "the host could not ...".
func Reason(err error, doing string) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the host did not " + doing + " in time"
	}
	return "the host could not " + doing
}
