// Package ovntest gives tests a private OVN Northbound database (and a
// Southbound one, and optionally ovn-northd), so the OVN adapter is tested
// against a real ovsdb-server and checked with the real ovn-nbctl.
//
// Start creates the databases with ovsdb-tool in a new temporary directory,
// runs one ovsdb-server per database as a child process listening on a unix
// socket in that directory, initialises the Northbound one with
// `ovn-nbctl init`, and stops everything when the test ends, failed or not:
// the children are killed in t.Cleanup, and they die with the test process
// too (Pdeathsig), so no ovsdb-server outlives a test killed by its timeout.
// Nothing is shared with a system OVN, and several can run at once.
//
// It is for tests and keelbench (StartServers) only: production code must
// not import it. It needs the Debian packages ovn-central and
// openvswitch-switch; when they are missing it fails the test with the
// command that installs them (make deps).
package ovntest

import (
	"bytes"
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
)

// Schemas installed by ovn-common.
const (
	NBSchema = "/usr/share/ovn/ovn-nb.ovsschema"
	SBSchema = "/usr/share/ovn/ovn-sb.ovsschema"
)

// startTimeout bounds the wait for a new server's socket to answer.
const startTimeout = 20 * time.Second

// binaries are the programs Start runs.
var binaries = []string{"ovsdb-tool", "ovsdb-server", "ovn-nbctl"}

// Servers are the private databases started by Start.
type Servers struct {
	// NB is the Northbound endpoint, "unix:<NBSocket>", for libovsdb and
	// ovn-nbctl --db.
	NB string
	// NBSocket is the path of the Northbound database's unix socket.
	NBSocket string
	// NBSSL is the Northbound endpoint over SSL, "ssl:127.0.0.1:<port>",
	// when started WithSSL.
	NBSSL string
	// SB is the Southbound endpoint, "unix:<path>".
	SB string
	// Dir holds the databases, sockets and logs; it is removed on stop.
	Dir string

	procs []*proc
	// unlock releases the host-wide lock of a data plane (StartDataPlane).
	unlock func()
	nbArgs []string // more arguments of the NB's ovsdb-server (SSL)
}

// freePort is a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// proc is one child process and a channel closed when it has exited.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// Option changes what Start starts.
type Option func(*options)

type options struct {
	northd bool
	ssl    *SSLFiles
}

// SSLFiles are the PEM files of an NB served over SSL: the server's key
// and certificate, and the CA that clients' certificates must chain to.
type SSLFiles struct{ PrivateKey, Certificate, CACert string }

// WithSSL also serves the Northbound database over SSL on a loopback port
// (Servers.NBSSL), with files; ovn-nbctl keeps using the unix socket.
func WithSSL(files SSLFiles) Option { return func(o *options) { o.ssl = &files } }

// WithNorthd also runs ovn-northd between the two databases, for tests
// that wait for the Southbound side (NB_Global nb_cfg / sb_cfg).
func WithNorthd() Option { return func(o *options) { o.northd = true } }

// Start starts a private Northbound and Southbound ovsdb-server for t and
// stops them when t ends. Missing binaries fail t with the command that
// installs them.
func Start(t testing.TB, opts ...Option) *Servers {
	t.Helper()
	s, stop, err := StartServers("", opts...)
	if err != nil {
		t.Fatalf("ovntest: %v", err)
	}
	t.Cleanup(func() {
		logs := s.logTail()
		if err := stop(); err != nil {
			t.Errorf("ovntest: %v", err)
		}
		if t.Failed() {
			t.Logf("ovntest: server logs:\n%s", logs)
		}
	})
	return s
}

// StartServers is Start for programs that are not tests (keelbench): it
// starts the servers under a new directory in dir ("" for the system's
// temporary directory; keep it short, socket paths are limited to 107
// bytes) and returns them with the function that stops them and removes
// the directory.
func StartServers(dir string, opts ...Option) (*Servers, func() error, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := findBinaries(o.northd); err != nil {
		return nil, nil, err
	}
	root, err := os.MkdirTemp(dir, "ovntest-")
	if err != nil {
		return nil, nil, err
	}
	s := &Servers{
		NBSocket: filepath.Join(root, "nb.sock"),
		SB:       "unix:" + filepath.Join(root, "sb.sock"),
		Dir:      root,
	}
	s.NB = "unix:" + s.NBSocket
	if err := s.begin(o); err != nil {
		return nil, nil, errors.Join(err, s.stop())
	}
	return s, s.stop, nil
}

// findBinaries returns an error naming the missing programs and how to
// install them.
func findBinaries(northd bool) error {
	names := binaries
	if northd {
		names = append(names[:len(names):len(names)], "ovn-northd")
	}
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not found: run `make deps` (scripts/install-deps.sh as root installs ovn-central ovn-host openvswitch-switch)",
			strings.Join(missing, ", "))
	}
	return nil
}

// begin creates both databases, starts their servers, initialises the
// Northbound one and starts ovn-northd if asked.
func (s *Servers) begin(o options) error {
	if o.ssl != nil {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.NBSSL = fmt.Sprintf("ssl:127.0.0.1:%d", port)
		s.nbArgs = []string{"--private-key=" + o.ssl.PrivateKey, "--certificate=" + o.ssl.Certificate,
			"--ca-cert=" + o.ssl.CACert, fmt.Sprintf("--remote=pssl:%d:127.0.0.1", port)}
	}
	for _, db := range []struct{ name, schema string }{{"nb", NBSchema}, {"sb", SBSchema}} {
		if err := s.startDB(db.name, db.schema); err != nil {
			return err
		}
	}
	if _, err := s.nbctl("init"); err != nil {
		return err
	}
	if o.northd {
		return s.startNorthd()
	}
	return nil
}

// startDB creates database name from schema and serves it on name.sock.
func (s *Servers) startDB(name, schema string) error {
	file := filepath.Join(s.Dir, name+".db")
	if out, err := exec.Command("ovsdb-tool", "create", file, schema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create %s: %w: %s", file, err, out)
	}
	return s.serveDB(name)
}

// serveDB runs an ovsdb-server for the database file name.db on name.sock.
func (s *Servers) serveDB(name string) error {
	file := filepath.Join(s.Dir, name+".db")
	sock := filepath.Join(s.Dir, name+".sock")
	args := []string{"--remote=punix:" + sock,
		"--unixctl=" + filepath.Join(s.Dir, name+".ctl"),
		"--log-file=" + filepath.Join(s.Dir, name+".log")}
	if name == "nb" {
		args = append(args, s.nbArgs...)
	}
	p, err := s.spawn(name+"-ovsdb-server", "ovsdb-server", append(args, file)...)
	if err != nil {
		return err
	}
	return p.waitSocket(sock)
}

// startNorthd runs ovn-northd against both databases.
func (s *Servers) startNorthd() error {
	_, err := s.spawn("ovn-northd", "ovn-northd",
		"--ovnnb-db="+s.NB, "--ovnsb-db="+s.SB,
		"--unixctl="+filepath.Join(s.Dir, "northd.ctl"),
		"--log-file="+filepath.Join(s.Dir, "northd.log"))
	return err
}

// spawn starts a child process that dies with this one.
func (s *Servers) spawn(name, bin string, args ...string) (*proc, error) {
	return s.spawnEnv(nil, name, bin, args...)
}

// spawnEnv is spawn with the environment env (nil: this process's).
func (s *Servers) spawnEnv(env []string, name, bin string, args ...string) (*proc, error) {
	log := filepath.Join(s.Dir, name+".out")
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// waitSocket waits until the process accepts connections on sock.
func (p *proc) waitSocket(sock string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			return c.Close()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while starting: %v", p.name, p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", p.name, startTimeout, err)
		}
	}
}

// stop kills the children, waits for them and removes the directory.
func (s *Servers) stop() error {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	s.procs = nil
	if s.unlock != nil { // the data plane's host-wide lock, once its processes are gone
		s.unlock()
		s.unlock = nil
	}
	return os.RemoveAll(s.Dir)
}

// StopNB kills the Northbound ovsdb-server, as an outage would; its
// database file stays, for StartNB.
func (s *Servers) StopNB(t testing.TB) {
	t.Helper()
	for i, p := range s.procs {
		if p.name == "nb-ovsdb-server" {
			_ = p.cmd.Process.Kill()
			<-p.exited
			s.procs = append(s.procs[:i:i], s.procs[i+1:]...)
			return
		}
	}
	t.Fatal("ovntest: no northbound ovsdb-server to stop")
}

// StartNB serves the Northbound database again after StopNB, on the same
// socket and with the rows it held.
func (s *Servers) StartNB(t testing.TB) {
	t.Helper()
	_ = os.Remove(s.NBSocket)
	if err := s.serveDB("nb"); err != nil {
		t.Fatalf("ovntest: %v", err)
	}
}

// NBCtl runs ovn-nbctl against the Northbound database and returns its
// output; an error fails t.
func (s *Servers) NBCtl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.nbctl(args...)
	if err != nil {
		t.Fatalf("ovntest: %v", err)
	}
	return out
}

func (s *Servers) nbctl(args ...string) (string, error) {
	full := append([]string{"--db=" + s.NB, "--timeout=10"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command("ovn-nbctl", full...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ovn-nbctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// logTail returns the end of every log in the directory.
func (s *Servers) logTail() string {
	var b bytes.Buffer
	paths, _ := filepath.Glob(filepath.Join(s.Dir, "*.log"))
	outs, _ := filepath.Glob(filepath.Join(s.Dir, "*.out"))
	for _, f := range append(paths, outs...) {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}
