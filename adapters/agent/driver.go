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

	"github.com/keel-cloud/keel/domain/host"
)

// ServerSpec is what a driver needs to create a server.
type ServerSpec struct {
	ID      string
	Name    string
	VCPUs   int
	RAMMiB  int
	DiskGiB int
	ImageID string
}

// Driver is the port to one host's hypervisor. Every call is idempotent:
// destroying a missing server or starting a running one succeeds.
type Driver interface {
	// Spawn creates and starts a server.
	Spawn(ctx context.Context, s ServerSpec) error
	PowerOn(ctx context.Context, id string) error
	PowerOff(ctx context.Context, id string) error
	Reboot(ctx context.Context, id string) error
	// Destroy stops and removes a server and everything it holds on the host.
	Destroy(ctx context.Context, id string) error
}

// HostInfo is what a host registers with.
type HostInfo struct {
	Name    string
	Driver  string
	VCPUs   int
	RAMMiB  int
	DiskGiB int
	Traits  []string
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
