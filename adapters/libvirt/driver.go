package libvirt

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
)

// Config is what a libvirt driver runs with.
type Config struct {
	// Conn is a connection to the host's libvirtd (qemu:///system, or the
	// test driver in fast tests). The driver does not close it.
	Conn *libvirt.Libvirt
	// Dial, when set, connects to the same libvirtd again: the driver
	// redials when its connection is lost (libvirtd restarted or the host
	// rebooted) instead of failing for good.
	Dial func() (*libvirt.Libvirt, error)
	// Events, when set, is a second connection to the same libvirtd on
	// which the driver hears domain lifecycle events (Watch); libvirt's
	// events must not wait behind calls.
	Events *libvirt.Libvirt
	// Dir is the host's storage pool directory: bases/ holds the image
	// cache, servers/<id>/ each server's disks, seed and console log.
	Dir string
	// Fetch opens an image's bytes by object name.
	Fetch Fetcher
	// DomainType is kvm, qemu (TCG) or test; see DetectAccel.
	DomainType string
	// CPUMode is a KVM guest's CPU mode: host-model, or "" for the
	// emulator's default model (see Accel).
	CPUMode string
	// StopTimeout is how long a graceful stop may take before the domain
	// is forced off (default 30 s, below the default deadline of a stop).
	StopTimeout time.Duration
	// Bridge is the Open vSwitch integration bridge servers' NICs are
	// plugged into (br-int when empty).
	Bridge string
	Log    *slog.Logger
}

// Driver runs a host's servers as libvirt domains. It implements
// agent.Driver.
type Driver struct {
	cfg    Config
	connMu sync.RWMutex
	l      *libvirt.Libvirt // the current connection: lv()
	images *ImageCache
	log    *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per server: one call at a time
	// bases is held shared while a server's disks are made on a base and
	// exclusively while unused bases are evicted.
	bases sync.RWMutex
}

var _ agent.Driver = (*Driver)(nil)

// New makes a driver; it creates the pool directories.
func New(cfg Config) (*Driver, error) {
	if cfg.Conn == nil || cfg.Dir == "" || cfg.Fetch == nil {
		return nil, errors.New("libvirt driver: a connection, a directory and an image fetcher are needed")
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	switch cfg.DomainType {
	case "kvm", "qemu", "test":
	default:
		return nil, fmt.Errorf("libvirt driver: unknown domain type %q (kvm, qemu or test)", cfg.DomainType)
	}
	// QEMU runs as its own user: it must pass through the folders to the
	// files libvirt hands it (libvirt gives it each disk as it starts a
	// domain), but need not list them.
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "bases"), filepath.Join(cfg.Dir, "servers")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("libvirt driver: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("libvirt driver: %w", err)
		}
	}
	images := &ImageCache{Dir: filepath.Join(cfg.Dir, "bases"), Fetch: cfg.Fetch, Log: cfg.Log}
	return &Driver{cfg: cfg, l: cfg.Conn, images: images, log: cfg.Log, locks: map[string]*sync.Mutex{}}, nil
}

// Watch implements agent.Watcher: a signal for each domain lifecycle
// event (started, stopped, crashed, undefined ...), never blocking
// libvirt's event stream. When the event connection is lost (libvirtd
// restarted), it redials every second and signals once it is back.
func (d *Driver) Watch(ctx context.Context) (<-chan struct{}, error) {
	if d.cfg.Events == nil {
		return nil, errors.New("no event connection")
	}
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default: // a sync is already due
		}
	}
	go func() {
		defer close(out)
		conn := d.cfg.Events
		for ctx.Err() == nil {
			evs, err := conn.LifecycleEvents(ctx)
			if err != nil {
				d.log.Warn("subscribe to domain lifecycle events", "err", err)
			} else {
			follow:
				for {
					select {
					case ev, ok := <-evs:
						if !ok {
							break follow
						}
						d.log.Debug("domain event", "domain", ev.Dom.Name, "event", ev.Event, "detail", ev.Detail)
						signal()
					case <-conn.Disconnected():
						break follow
					case <-ctx.Done():
						// Read on until go-libvirt closes the channel: its
						// goroutine blocks on an unread event and would
						// never let go of the stream.
						for range evs {
						}
						return
					}
				}
			}
			if d.cfg.Dial == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if c, err := d.cfg.Dial(); err == nil {
				_ = conn.Disconnect()
				conn = c
				signal() // what happened meanwhile was not heard
			}
		}
	}()
	return out, nil
}

// lv is the current libvirt connection.
func (d *Driver) lv() *libvirt.Libvirt {
	d.connMu.RLock()
	defer d.connMu.RUnlock()
	return d.l
}

// ready makes sure the driver holds a live connection, redialing a lost
// one when it can. Its error is for the user: libvirtd is not reachable.
func (d *Driver) ready() error {
	if d.lv().IsConnected() {
		return nil
	}
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.l.IsConnected() {
		return nil
	}
	if d.cfg.Dial == nil {
		return agent.Failf(errors.New("connection to libvirtd lost"), "the host's hypervisor (libvirtd) is not reachable")
	}
	l, err := d.cfg.Dial()
	if err != nil {
		return agent.Failf(err, "the host's hypervisor (libvirtd) is not reachable")
	}
	_ = d.l.Disconnect()
	d.l = l
	d.log.Info("reconnected to libvirtd")
	return nil
}

// Check implements agent.Checker: libvirtd answers (after a redial if its
// connection was lost).
func (d *Driver) Check(ctx context.Context) error {
	if err := d.ready(); err != nil {
		return err
	}
	if _, err := d.lv().ConnectGetVersion(); err != nil {
		return agent.Failf(err, "the host's hypervisor (libvirtd) does not answer")
	}
	return nil
}

// Images is the driver's image cache.
func (d *Driver) Images() *ImageCache { return d.images }

// serverDir holds one server's files.
func (d *Driver) serverDir(id string) string { return filepath.Join(d.cfg.Dir, "servers", id) }

// ConsoleLog is the file server id's serial console writes to.
func (d *Driver) ConsoleLog(id string) string { return filepath.Join(d.serverDir(id), "console.log") }

// lock serialises the calls on one server.
func (d *Driver) lock(id string) func() {
	d.mu.Lock()
	m, ok := d.locks[id]
	if !ok {
		m = &sync.Mutex{}
		d.locks[id] = m
	}
	d.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// lookup finds server id's domain; a missing one is agent.ErrNoServer.
func (d *Driver) lookup(id string) (libvirt.Domain, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return libvirt.Domain{}, fmt.Errorf("server %s: %w", id, agent.ErrNoServer)
	}
	dom, err := d.lv().DomainLookupByUUID(libvirt.UUID(u))
	if err != nil {
		if libvirt.IsNotFound(err) {
			return dom, fmt.Errorf("server %s: %w", id, agent.ErrNoServer)
		}
		return dom, fmt.Errorf("server %s: look up its domain: %w", id, err)
	}
	return dom, nil
}

// power reads a domain's power state.
func (d *Driver) power(dom libvirt.Domain) (agent.Power, error) {
	state, _, err := d.lv().DomainGetState(dom, 0)
	if err != nil {
		return "", fmt.Errorf("domain %s: read its state: %w", dom.Name, err)
	}
	return powerOf(libvirt.DomainState(state)), nil
}

func powerOf(s libvirt.DomainState) agent.Power {
	switch s {
	case libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainShutdown:
		return agent.Running // DomainShutdown: still running, being shut down
	case libvirt.DomainPaused, libvirt.DomainPmsuspended:
		return agent.Paused
	case libvirt.DomainCrashed:
		return agent.Crashed
	default:
		return agent.Shutoff
	}
}

// Spawn implements agent.Driver: the root disk as an overlay on the cached
// base, the NoCloud seed, the domain defined and started. A spawn retried
// after a crash finds what the first one made.
func (d *Driver) Spawn(ctx context.Context, s agent.ServerSpec) error {
	defer d.lock(s.ID)()
	if err := d.ready(); err != nil {
		return err
	}
	if dom, err := d.lookup(s.ID); err == nil {
		return d.start(dom)
	} else if !errors.Is(err, agent.ErrNoServer) {
		return err
	}
	err := d.create(ctx, s)
	if err != nil {
		if _, lerr := d.lookup(s.ID); errors.Is(lerr, agent.ErrNoServer) {
			// Nothing on the host uses the files made so far.
			if rerr := os.RemoveAll(d.serverDir(s.ID)); rerr != nil {
				d.log.Warn("clean up after a failed spawn", "server", s.ID, "err", rerr)
			}
		}
	}
	return err
}

// create makes server s's disks, seed and domain, and starts it.
func (d *Driver) create(ctx context.Context, s agent.ServerSpec) error {
	d.bases.RLock()
	defer d.bases.RUnlock()
	dir := d.serverDir(s.ID)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("server %s: %w", s.ID, err)
	}
	// The image a server's disk rests on, for EvictUnused.
	if err := os.WriteFile(filepath.Join(dir, "image-id"), []byte(s.Image.ID), 0o600); err != nil {
		return fmt.Errorf("server %s: %w", s.ID, err)
	}
	// The seed needs neither the image nor the disks: it is written
	// meanwhile (genisoimage and qemu-img are separate processes).
	seed := filepath.Join(dir, "seed.iso")
	seeded := make(chan error, 1)
	go func() { seeded <- writeSeed(ctx, seed, s) }()
	waitSeed := sync.OnceValue(func() error { return <-seeded })
	defer waitSeed() // nothing writes in the server's directory once create returns
	im := s.Image
	base, err := d.images.Ensure(ctx, Image{ID: im.ID, Object: im.Object, SHA256: im.SHA256, Size: im.Size, Format: im.Format})
	if err != nil {
		return explain(ctx, err, "the host could not fetch the image")
	}
	size := int64(s.DiskGiB) << 30
	var disks []Disk
	root := filepath.Join(dir, "root.qcow2")
	// No domain uses a root disk left by an earlier, interrupted spawn:
	// it is made anew.
	if err := os.Remove(root); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("server %s: %w", s.ID, err)
	}
	if s.Image.Format == "iso" {
		// An installer: booted from the CD-ROM onto a blank root disk.
		if err := CreateBlank(ctx, root, size); err != nil {
			return explain(ctx, err, "the host could not create the server's disk")
		}
		disks = append(disks, Disk{Path: base, Format: "raw", CDROM: true, Bootable: true}, Disk{Path: root, Format: "qcow2", Bootable: true})
	} else {
		if err := CreateOverlay(ctx, base, Image{Format: s.Image.Format}.BaseFormat(), root, size); err != nil {
			return explain(ctx, err, "the host could not create the server's disk")
		}
		disks = append(disks, Disk{Path: root, Format: "qcow2", Bootable: true})
	}
	for i, g := range s.DataDisksGiB {
		p := filepath.Join(dir, fmt.Sprintf("data-%d.qcow2", i+1))
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("server %s: %w", s.ID, err)
		}
		if err := CreateBlank(ctx, p, int64(g)<<30); err != nil {
			return explain(ctx, err, "the host could not create the server's data disks")
		}
		disks = append(disks, Disk{Path: p, Format: "qcow2"})
	}
	if err := waitSeed(); err != nil {
		return explain(ctx, err, "the host could not write the server's first-boot data")
	}
	disks = append(disks, Disk{Path: seed, Format: "raw", CDROM: true})
	x, err := DomainXML(DomainSpec{ID: s.ID, Name: s.Name, Type: d.cfg.DomainType, CPUMode: d.cfg.CPUMode, VCPUs: s.VCPUs, RAMMiB: s.RAMMiB,
		Disks: disks, ConsoleLog: filepath.Join(dir, "console.log"), NICs: nics(s.NICs), Bridge: d.cfg.Bridge})
	if err != nil {
		return err
	}
	dom, err := d.lv().DomainDefineXMLFlags(x, 0)
	if err != nil {
		d.log.Info("define domain", "server", s.ID, "err", err, "xml", x)
		return agent.Failf(fmt.Errorf("server %s: define its domain: %w", s.ID, err), "the hypervisor refused the server's definition")
	}
	if err := d.start(dom); err != nil {
		return agent.Failf(err, "the hypervisor could not start the server")
	}
	return nil
}

// nics are the domain NICs of a server's.
func nics(in []agent.NIC) []NIC {
	out := make([]NIC, len(in))
	for i, n := range in {
		out[i] = NIC{PortID: n.PortID, MAC: n.MAC}
	}
	return out
}

// explain gives err words for the user: an image refused says why, a
// flavor disk too small says so, anything else is what the host could not
// do. An ended context stays as it is.
func explain(ctx context.Context, err error, otherwise string) error {
	var refused *RefusedError
	switch {
	case ctx.Err() != nil:
		return err
	case errors.As(err, &refused):
		return agent.Failf(err, "%s", refused.Error())
	case errors.Is(err, ErrDiskTooSmall):
		return agent.Failf(err, "the flavor's disk is smaller than the image's disk")
	default:
		return agent.Failf(err, "%s", otherwise)
	}
}

// start starts a defined domain unless it runs.
func (d *Driver) start(dom libvirt.Domain) error {
	p, err := d.power(dom)
	if err != nil || p == agent.Running {
		return err
	}
	if p == agent.Paused {
		if err := d.lv().DomainResume(dom); err != nil {
			return fmt.Errorf("domain %s: resume: %w", dom.Name, err)
		}
		return nil
	}
	if err := d.lv().DomainCreate(dom); err != nil {
		return fmt.Errorf("domain %s: start: %w", dom.Name, err)
	}
	return nil
}

// PowerOn implements agent.Driver.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return d.onDomain(id, d.start)
}

// onDomain runs fn on server id's domain, holding the server's lock, on a
// live connection; a missing domain is agent.ErrNoServer.
func (d *Driver) onDomain(id string, fn func(libvirt.Domain) error) error {
	defer d.lock(id)()
	if err := d.ready(); err != nil {
		return err
	}
	dom, err := d.lookup(id)
	if err != nil {
		return err
	}
	return fn(dom)
}

// PowerOff implements agent.Driver: an ACPI shutdown, then, when the guest
// has not stopped within the stop timeout, a forced stop.
func (d *Driver) PowerOff(ctx context.Context, id string) error {
	return d.onDomain(id, func(dom libvirt.Domain) error { return d.shutdown(ctx, dom) })
}

// shutdown stops a domain gracefully, forcing it off after the stop
// timeout; one already off is fine.
func (d *Driver) shutdown(ctx context.Context, dom libvirt.Domain) error {
	p, err := d.power(dom)
	if err != nil || p == agent.Shutoff {
		return err
	}
	if err := d.lv().DomainShutdownFlags(dom, libvirt.DomainShutdownAcpiPowerBtn); err != nil {
		d.log.Info("graceful stop refused; forcing", "domain", dom.Name, "err", err)
	} else {
		deadline := time.NewTimer(d.cfg.StopTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-deadline.C:
				d.log.Info("graceful stop timed out; forcing", "domain", dom.Name, "after", d.cfg.StopTimeout)
				break wait
			case <-tick.C:
				if p, err := d.power(dom); err != nil {
					return err
				} else if p == agent.Shutoff {
					return nil
				}
			}
		}
	}
	return d.destroyDomain(dom)
}

// destroyDomain forces a domain off; one already off is fine.
func (d *Driver) destroyDomain(dom libvirt.Domain) error {
	if err := d.lv().DomainDestroyFlags(dom, libvirt.DomainDestroyDefault); err != nil {
		if p, perr := d.power(dom); perr == nil && p == agent.Shutoff {
			return nil
		}
		return fmt.Errorf("domain %s: force off: %w", dom.Name, err)
	}
	return nil
}

// Reboot implements agent.Driver: soft, a graceful shutdown (forced after
// the stop timeout) then a start, which needs nothing of the guest; hard, a
// reset. A stopped server is started.
func (d *Driver) Reboot(ctx context.Context, id string, hard bool) error {
	return d.onDomain(id, func(dom libvirt.Domain) error { return d.reboot(ctx, dom, hard) })
}

func (d *Driver) reboot(ctx context.Context, dom libvirt.Domain, hard bool) error {
	p, err := d.power(dom)
	if err != nil {
		return err
	}
	if p != agent.Running {
		return d.start(dom)
	}
	if !hard {
		if err := d.shutdown(ctx, dom); err != nil {
			return err
		}
		return d.start(dom)
	}
	if err := d.lv().DomainReset(dom, 0); err != nil {
		if !isUnsupported(err) {
			return fmt.Errorf("domain %s: reset: %w", dom.Name, err)
		}
		if err := d.lv().DomainReboot(dom, libvirt.DomainRebootDefault); err != nil {
			return fmt.Errorf("domain %s: reboot: %w", dom.Name, err)
		}
	}
	return nil
}

// isUnsupported tells a call the hypervisor does not offer (the test
// driver has no reset).
func isUnsupported(err error) bool {
	var e libvirt.Error
	return errors.As(err, &e) && (e.Code == uint32(libvirt.ErrNoSupport) || e.Code == uint32(libvirt.ErrOperationUnsupported))
}

// Destroy implements agent.Driver: the domain forced off and undefined,
// then the server's disks, seed and console log removed.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	defer d.lock(id)()
	if err := d.ready(); err != nil {
		return err
	}
	dom, err := d.lookup(id)
	switch {
	case errors.Is(err, agent.ErrNoServer):
	case err != nil:
		return err
	default:
		if err := d.destroyDomain(dom); err != nil {
			return err
		}
		if err := d.lv().DomainUndefineFlags(dom, libvirt.DomainUndefineManagedSave|libvirt.DomainUndefineSnapshotsMetadata); err != nil && !libvirt.IsNotFound(err) {
			return fmt.Errorf("domain %s: undefine: %w", dom.Name, err)
		}
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil // never a server of this host: nothing on disk to remove
	}
	if err := os.RemoveAll(d.serverDir(id)); err != nil {
		return fmt.Errorf("server %s: remove its files: %w", id, err)
	}
	if _, err := d.EvictUnused(); err != nil {
		d.log.Warn("evict unused image bases", "err", err)
	}
	return nil
}

// EvictUnused removes the cached bases no server of this host rests on
// (each server's folder names its image), and returns their image ids.
// Servers being made hold it off.
func (d *Driver) EvictUnused() ([]string, error) {
	d.bases.Lock()
	defer d.bases.Unlock()
	dirs, err := os.ReadDir(filepath.Join(d.cfg.Dir, "servers"))
	if err != nil {
		return nil, fmt.Errorf("evict: %w", err)
	}
	keep := map[string]bool{}
	for _, e := range dirs {
		b, err := os.ReadFile(filepath.Join(d.cfg.Dir, "servers", e.Name(), "image-id"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("evict: %w", err)
		}
		keep[strings.TrimSpace(string(b))] = true
	}
	gone, err := d.images.Evict(keep)
	if len(gone) > 0 {
		d.log.Info("evicted unused image bases", "images", strings.Join(gone, ","))
	}
	return gone, err
}

// Observe implements agent.Driver: every domain of the host, Keel's by
// their server id.
func (d *Driver) Observe(ctx context.Context) ([]agent.Observed, error) {
	if err := d.ready(); err != nil {
		return nil, err
	}
	doms, _, err := d.lv().ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	out := make([]agent.Observed, 0, len(doms))
	for _, dom := range doms {
		p, err := d.power(dom)
		if libvirt.IsNotFound(err) {
			continue // gone since the list
		}
		if err != nil {
			return nil, err
		}
		o := agent.Observed{Name: dom.Name, Power: p}
		if id, ok := serverOf(dom.Name); ok && id == uuid.UUID(dom.UUID).String() {
			o.ID = id
		}
		out = append(out, o)
	}
	return out, nil
}

// writeSeed writes the NoCloud seed of s (an ISO 9660 image labelled
// cidata): meta-data with the instance id and hostname, and the user data.
func writeSeed(ctx context.Context, path string, s agent.ServerSpec) error {
	dir, err := os.MkdirTemp(filepath.Dir(path), "seed-")
	if err != nil {
		return fmt.Errorf("server %s: seed: %w", s.ID, err)
	}
	defer os.RemoveAll(dir)
	meta := fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", s.ID, hostname(s.Name))
	user := s.UserData
	if len(user) == 0 {
		user = []byte("#cloud-config\n{}\n")
	}
	files := map[string][]byte{"meta-data": []byte(meta), "user-data": user, "vendor-data": vendorData(s)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("server %s: seed: %w", s.ID, err)
		}
	}
	tmp := path + ".part"
	// The seed is the guest's alone: libvirt hands it to QEMU's user.
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		return fmt.Errorf("server %s: seed: %w", s.ID, err)
	}
	out, err := exec.CommandContext(ctx, "genisoimage", "-quiet", "-output", tmp, "-volid", "cidata", "-joliet", "-rock",
		filepath.Join(dir, "meta-data"), filepath.Join(dir, "user-data"), filepath.Join(dir, "vendor-data")).CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("server %s: make its seed: %w: %s", s.ID, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("server %s: seed: %w", s.ID, err)
	}
	return nil
}

// AdminUser is the guest user that gets the server's keypair and
// generated password.
const AdminUser = "keel"

// vendorData is the cloud-config Keel gives every guest beside the user's
// own user-data (which it never rewrites): the admin user with the
// keypair's key and the generated password. JSON strings are YAML scalars,
// so nothing the user chose can break out of them.
func vendorData(s agent.ServerSpec) []byte {
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	var b strings.Builder
	b.WriteString("#cloud-config\nusers:\n  - default\n  - name: " + AdminUser + "\n")
	b.WriteString("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/sh\n    lock_passwd: false\n")
	if len(s.SSHKeys) > 0 {
		b.WriteString("    ssh_authorized_keys:\n")
		for _, k := range s.SSHKeys {
			b.WriteString("      - " + q(k) + "\n")
		}
	}
	if len(s.AdminPassword) > 0 {
		b.WriteString("chpasswd:\n  expire: false\n  users:\n")
		b.WriteString("    - {name: " + AdminUser + ", password: " + q(string(s.AdminPassword)) + ", type: text}\n")
		b.WriteString("ssh_pwauth: true\n")
	}
	return []byte(b.String())
}

// hostname turns a server name into a hostname: letters, digits and
// hyphens, at most 63 characters.
func hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('-')
		}
		if b.Len() == 63 {
			break
		}
	}
	h := strings.Trim(b.String(), "-")
	if h == "" {
		return "server"
	}
	return h
}

// ConsoleTail implements agent.ConsoleReader: the last max bytes of the
// server's serial console log (empty before the guest wrote anything).
func (d *Driver) ConsoleTail(ctx context.Context, id string, limit int) ([]byte, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("server %s: %w", id, agent.ErrNoServer)
	}
	f, err := os.Open(d.ConsoleLog(id))
	if errors.Is(err, os.ErrNotExist) {
		if _, lerr := d.lookup(id); lerr != nil {
			return nil, lerr
		}
		return []byte{}, nil // defined, not started yet
	}
	if err != nil {
		return nil, fmt.Errorf("server %s: console log: %w", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("server %s: console log: %w", id, err)
	}
	off := max(st.Size()-int64(limit), 0)
	buf := make([]byte, st.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("server %s: console log: %w", id, err)
	}
	return buf[:n], nil
}

// OpenVNC connects to the VNC display of server id, which libvirt listens
// on at the host's loopback (a port it picks when the domain starts).
func (d *Driver) OpenVNC(ctx context.Context, id string) (net.Conn, error) {
	dom, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	x, err := d.lv().DomainGetXMLDesc(dom, 0)
	if err != nil {
		return nil, fmt.Errorf("server %s: read its domain: %w", id, err)
	}
	var desc struct {
		Graphics []struct {
			Type   string `xml:"type,attr"`
			Port   int    `xml:"port,attr"`
			Listen string `xml:"listen,attr"`
		} `xml:"devices>graphics"`
	}
	if err := xml.Unmarshal([]byte(x), &desc); err != nil {
		return nil, fmt.Errorf("server %s: read its domain: %w", id, err)
	}
	for _, g := range desc.Graphics {
		if g.Type != "vnc" {
			continue
		}
		if g.Port <= 0 {
			return nil, fmt.Errorf("server %s is not running: %w", id, agent.ErrNoConsole)
		}
		var dialer net.Dialer
		c, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port)))
		if err != nil {
			return nil, fmt.Errorf("server %s: connect to its display: %w", id, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("server %s: %w", id, agent.ErrNoConsole)
}
