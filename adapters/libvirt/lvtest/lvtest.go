// Package lvtest gives tests a private libvirtd and a small bootable guest
// disk, so the libvirt driver is tested against real libvirt and QEMU.
//
// Start runs a libvirtd of the test's own in its own mount and PID
// namespaces: empty private directories are bind-mounted over /etc/libvirt,
// /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt,
// its sockets and pid file live in a temporary directory, and it has its own
// host UUID. Its /etc/libvirt holds only libvirtd.conf and qemu.conf: it has
// no networks (not even "default"), storage pools or nwfilters until a test
// defines them. It neither needs nor disturbs a
// system libvirtd, and several can run at once, like several hosts. When the
// test ends, or its process dies, the kernel kills the namespace's processes:
// no QEMU outlives the test. QEMU runs as root without a security driver, cgroups
// or namespaces, and writes serial consoles of type "file" itself (no
// virtlogd).
//
// GuestImage builds the test guest (scripts/test-guest.sh) once into a
// cache that outlives the test process. The guest prints its NoCloud seed on
// the serial console and stays up; see WaitUserData.
//
// It is for tests and keelbench (StartDaemon, BuildGuestImage) only: it
// must not be imported by production code. Tests using it need root;
// without root they skip, and as root a missing libvirtd fails them
// (scripts/install-deps.sh installs it).
package lvtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// startTimeout bounds the wait for a new daemon's socket to answer.
const startTimeout = 60 * time.Second

// Daemon is a private libvirtd started by Start.
type Daemon struct {
	// Socket is the path of the daemon's read-write unix socket.
	Socket string
	// Dir is a scratch directory that libvirt and QEMU can read and write:
	// for disks, seeds and serial logs. It is removed with the daemon.
	Dir string
	// HostUUID is the daemon's host_uuid, different for each daemon.
	HostUUID string
	// Log is the daemon's log file, printed when the test fails.
	Log string

	root   string // temporary directory holding everything of the daemon
	opts   options
	cmd    *exec.Cmd
	exited chan struct{} // closed when unshare, and so the namespaces, exited
}

// Start starts a private libvirtd for t and stops it when t ends, after
// destroying the domains still running on it. It skips t when not root; as
// root a missing libvirtd fails t.
func Start(t testing.TB, opts ...Option) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lvtest: a private libvirtd with qemu:///system needs root")
	}
	d, stop, err := StartDaemon("", opts...)
	if err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	t.Cleanup(func() {
		log := d.logTail() // before stop removes it
		if err := stop(); err != nil {
			t.Errorf("lvtest: %v", err)
		}
		if t.Failed() {
			t.Logf("lvtest: libvirtd log (%s):\n%s", d.Log, log)
		}
	})
	return d
}

// StartDaemon starts a private libvirtd under a new directory in dir (""
// for the system's temporary directory; keep it short, socket paths are
// limited) and returns it with the function that stops it: that destroys
// the domains still running, kills the daemon's namespaces and removes its
// directory. It is Start for programs that are not tests (keelbench); the
// daemon also dies with the calling process. It needs root and libvirtd.
func StartDaemon(dir string, opts ...Option) (*Daemon, func() error, error) {
	bin, err := findLibvirtd()
	if err != nil {
		return nil, nil, err
	}
	root, err := os.MkdirTemp(dir, "lvtest-")
	if err != nil {
		return nil, nil, err
	}
	uuid, err := newUUID()
	if err != nil {
		return nil, nil, err
	}
	d := &Daemon{
		Socket:   filepath.Join(root, "sock", "libvirt-sock"),
		Dir:      filepath.Join(root, "scratch"),
		HostUUID: uuid,
		Log:      filepath.Join(root, "libvirtd.log"),
		root:     root,
		exited:   make(chan struct{}),
	}
	for _, o := range opts {
		o(&d.opts)
	}
	if err := d.begin(bin); err != nil {
		return nil, nil, errors.Join(err, d.stop())
	}
	return d, d.stop, nil
}

// begin lays the daemon out, starts it and waits until it answers.
func (d *Daemon) begin(bin string) error {
	if err := d.layout(); err != nil {
		return err
	}
	if err := qemuCaps.restore(d.capsDir()); err != nil {
		return err
	}
	if err := d.run(bin); err != nil {
		return err
	}
	if err := d.waitReady(); err != nil {
		return fmt.Errorf("%w\n%s", err, d.logTail())
	}
	return nil
}

// Option changes the daemon Start starts.
type Option func(*options)

type options struct{ ovsRun string }

// WithOpenVSwitch gives the daemon the private Open vSwitch whose run
// directory (db.sock) is dir, mounted over /run/openvswitch in its
// namespace: the ovs-vsctl that libvirt runs to plug a NIC with an
// openvswitch virtualport then reaches that switch, not the system's.
func WithOpenVSwitch(dir string) Option { return func(o *options) { o.ovsRun = dir } }

// findLibvirtd returns the path of libvirtd, or an error saying how to
// install it.
func findLibvirtd() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("a private libvirtd with qemu:///system needs root")
	}
	for _, name := range []string{"libvirtd", "/usr/sbin/libvirtd", "/sbin/libvirtd"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("libvirtd not found: run scripts/install-deps.sh as root (make deps)")
}

// privateDirs are the directories of the system libvirt that the daemon
// gets private copies of, under its root.
var privateDirs = map[string]string{
	"/etc/libvirt":       "etc",
	"/run/libvirt":       "run",
	"/var/lib/libvirt":   "lib",
	"/var/log/libvirt":   "log",
	"/var/cache/libvirt": "cache",
}

// layout creates the daemon's directories and configuration files.
func (d *Daemon) layout() error {
	for _, sub := range []string{"etc", "run", "lib", "log", "cache", "sock", "scratch"} {
		if err := os.MkdirAll(filepath.Join(d.root, sub), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/libvirtd.conf": libvirtdConf(d),
		"etc/qemu.conf":     qemuConf(),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d.root, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// run starts libvirtd in new mount and PID namespaces over the private
// directories. The shell is the namespace's init: it reaps the QEMU
// processes libvirtd daemonizes, and when it dies the kernel kills every
// process of the namespace. unshare kills it when unshare dies, and unshare
// dies with the test process (Pdeathsig), so no QEMU outlives the test, even
// a test killed by its timeout.
func (d *Daemon) run(bin string) error {
	var script strings.Builder
	script.WriteString("set -e\n")
	for sys, sub := range privateDirs {
		fmt.Fprintf(&script, "mkdir -p %s\nmount --bind %s %s\n", sys, filepath.Join(d.root, sub), sys)
	}
	if d.opts.ovsRun != "" {
		fmt.Fprintf(&script, "mkdir -p /run/openvswitch\nmount --bind %s /run/openvswitch\n", d.opts.ovsRun)
	}
	// Not exec: the shell stays the namespace's init.
	fmt.Fprintf(&script, "%s --config %s --pid-file %s\n", bin,
		filepath.Join(d.root, "etc", "libvirtd.conf"), filepath.Join(d.root, "libvirtd.pid"))
	out, err := os.Create(filepath.Join(d.root, "libvirtd.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	d.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--pid", "--fork",
		"--mount-proc", "--kill-child=SIGKILL", "sh", "-c", script.String())
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start libvirtd: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	return nil
}

// Kill stops the daemon as a crash or a host reboot would: libvirtd and
// every QEMU it started die at once. Its configuration, defined domains
// and scratch files stay for Restart.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	_ = d.cmd.Process.Kill()
	<-d.exited
	if err := d.waitGone(); err != nil {
		t.Fatalf("lvtest: %v", err)
	}
}

// Restart starts a killed daemon again on the same socket and directories.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	bin, err := findLibvirtd()
	if err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	d.exited = make(chan struct{})
	if err := d.run(bin); err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	if err := d.waitReady(); err != nil {
		t.Fatalf("lvtest: %v\n%s", err, d.logTail())
	}
}

// waitReady waits until the daemon answers on its socket.
func (d *Daemon) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		l, err := d.connect(libvirt.QEMUSystem)
		if err == nil {
			return l.Disconnect()
		}
		select {
		case <-d.exited:
			return fmt.Errorf("libvirtd exited while starting: %v", d.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd not ready after %v: %w", startTimeout, err)
		}
	}
}

// Dial connects to the daemon's QEMU driver (qemu:///system) and closes the
// connection when t ends.
func (d *Daemon) Dial(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	return d.dial(t, libvirt.QEMUSystem)
}

// DialTest connects to the daemon's test driver (test:///default), whose
// state belongs to the connection, and closes it when t ends.
func (d *Daemon) DialTest(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	return d.dial(t, libvirt.TestDefault)
}

// Connect connects to the daemon's QEMU driver (qemu:///system); the caller
// disconnects.
func (d *Daemon) Connect() (*libvirt.Libvirt, error) { return d.connect(libvirt.QEMUSystem) }

func (d *Daemon) dial(t testing.TB, uri libvirt.ConnectURI) *libvirt.Libvirt {
	t.Helper()
	l, err := d.connect(uri)
	if err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

func (d *Daemon) connect(uri libvirt.ConnectURI) (*libvirt.Libvirt, error) {
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.Socket)))
	if err := l.ConnectToURI(uri); err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", uri, d.Socket, err)
	}
	return l, nil
}

// stop destroys the daemon's running domains, kills its namespaces (and so
// libvirtd) and removes its directory.
func (d *Daemon) stop() error {
	var errs []error
	if d.cmd != nil && d.cmd.Process != nil {
		// Destroying is a courtesy (a domain may stop on its own meanwhile):
		// killing the namespace kills every QEMU anyway.
		_ = d.destroyDomains()
		_ = d.cmd.Process.Kill()
		<-d.exited
		errs = append(errs, d.waitGone())
	}
	qemuCaps.save(d.capsDir())
	errs = append(errs, removeAll(d.root))
	return errors.Join(errs...)
}

// waitGone waits until libvirtd no longer accepts connections: the kernel
// kills the namespace's processes asynchronously after its init died.
func (d *Daemon) waitGone() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd at %s still answers 10 s after its namespace was killed", d.Socket)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeAll removes dir, trying again for a while: a QEMU being killed may
// still write its files.
func removeAll(dir string) error {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// destroyDomains destroys the domains running on the daemon, so no QEMU
// outlives it.
func (d *Daemon) destroyDomains() error {
	l, err := d.connect(libvirt.QEMUSystem)
	if err != nil {
		return nil // the daemon is gone already: so are its domains
	}
	defer l.Disconnect()
	doms, _, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	var errs []error
	for _, dom := range doms {
		if err := l.DomainDestroyFlags(dom, 0); err != nil {
			errs = append(errs, fmt.Errorf("destroy %s: %w", dom.Name, err))
		}
	}
	return errors.Join(errs...)
}

// logTail returns the end of the daemon's log and output.
func (d *Daemon) logTail() string {
	var b bytes.Buffer
	for _, f := range []string{d.Log, filepath.Join(d.root, "libvirtd.out")} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
