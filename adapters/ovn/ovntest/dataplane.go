package ovntest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VSwitchSchema is the Open vSwitch database schema (openvswitch-common).
const VSwitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// Chassis is the system-id the private ovn-controller registers as.
const Chassis = "keel-test-chassis"

// DataPlane is a private Open vSwitch (its own ovsdb-server and an
// ovs-vswitchd with the userspace "netdev" datapath: no kernel module) with
// the integration bridge br-int, and an ovn-controller binding it to the
// Southbound database of the Servers it was started for. A VM tap plugged
// into br-int with external_ids:iface-id=<logical switch port> is then on
// the OVN network of that port: native DHCP, ACLs, routers and NAT work.
type DataPlane struct {
	// RunDir holds the switch's db.sock and br-int.mgmt: give it to
	// ovs-vsctl as OVS_RUNDIR, or to lvtest.WithOpenVSwitch.
	RunDir string
	// DB is the switch's database endpoint, "unix:<RunDir>/db.sock".
	DB string

	s   *Servers
	env []string
}

// dataPlaneBinaries are the programs StartDataPlane runs.
var dataPlaneBinaries = []string{"ovs-vswitchd", "ovs-vsctl", "ovn-controller", "ovn-sbctl"}

// StartDataPlane starts the data plane for s, which must have been started
// with WithNorthd, and waits until ovn-controller has registered its
// chassis in the Southbound database. It is stopped with s.
func (s *Servers) StartDataPlane(t testing.TB) *DataPlane {
	t.Helper()
	p, err := s.startDataPlane()
	if err != nil {
		t.Fatalf("ovntest: data plane: %v\n%s", err, s.logTail())
	}
	return p
}

func (s *Servers) startDataPlane() (*DataPlane, error) {
	var missing []string
	for _, name := range dataPlaneBinaries {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not found: run `make deps` (scripts/install-deps.sh as root installs ovn-host openvswitch-switch)",
			strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("ovs-vswitchd needs root (tap devices, raw sockets)")
	}
	// ovs-vswitchd's userspace datapath makes kernel tap devices named
	// after the datapath and the bridge (ovs-netdev, br-int): two data
	// planes on one machine would take each other's. Test processes (go
	// test runs packages in parallel) take turns through a host-wide lock,
	// held until the Servers stop.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "keel-ovntest-dataplane.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock the data plane: %w", err)
	}
	s.unlock = func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); _ = lock.Close() }
	run := filepath.Join(s.Dir, "ovs")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, err
	}
	p := &DataPlane{RunDir: run, DB: "unix:" + filepath.Join(run, "db.sock"), s: s,
		env: append(os.Environ(), "OVS_RUNDIR="+run, "OVS_DBDIR="+run, "OVS_LOGDIR="+run, "OVS_SYSCONFDIR="+run,
			"OVN_RUNDIR="+run, "OVN_DBDIR="+run, "OVN_LOGDIR="+run, "OVN_SYSCONFDIR="+run)}
	conf := filepath.Join(run, "conf.db")
	if out, err := exec.Command("ovsdb-tool", "create", conf, VSwitchSchema).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ovsdb-tool create %s: %w: %s", conf, err, out)
	}
	db, err := s.spawnEnv(p.env, "ovs-ovsdb-server", "ovsdb-server", "--remote=punix:"+filepath.Join(run, "db.sock"),
		"--unixctl="+filepath.Join(run, "db.ctl"), "--log-file="+filepath.Join(s.Dir, "ovs-ovsdb-server.log"), conf)
	if err != nil {
		return nil, err
	}
	if err := db.waitSocket(filepath.Join(run, "db.sock")); err != nil {
		return nil, err
	}
	if _, err := p.vsctl("--no-wait", "init"); err != nil {
		return nil, err
	}
	if _, err := p.vsctl("--no-wait", "set", "Open_vSwitch", ".",
		"external_ids:system-id="+Chassis,
		"external_ids:ovn-remote="+s.SB,
		"external_ids:ovn-encap-type=geneve",
		"external_ids:ovn-encap-ip=127.0.0.1",
		"external_ids:ovn-bridge-datapath-type=netdev"); err != nil {
		return nil, err
	}
	if _, err := p.vsctl("--no-wait", "add-br", "br-int", "--", "set", "Bridge", "br-int",
		"datapath_type=netdev", "fail-mode=secure", "other-config:disable-in-band=true"); err != nil {
		return nil, err
	}
	if _, err := s.spawnEnv(p.env, "ovs-vswitchd", "ovs-vswitchd", p.DB,
		"--unixctl="+filepath.Join(run, "vswitchd.ctl"), "--log-file="+filepath.Join(s.Dir, "ovs-vswitchd.log")); err != nil {
		return nil, err
	}
	// Wait until the switch has made br-int, then start ovn-controller on it.
	if _, err := p.vsctl("--timeout=30", "wait-until", "Interface", "br-int", "ofport>=0"); err != nil {
		return nil, err
	}
	// Its control socket goes to OVS_RUNDIR (it has no --unixctl).
	ctl, err := s.spawnEnv(p.env, "ovn-controller", "ovn-controller", p.DB, "--log-file="+filepath.Join(s.Dir, "ovn-controller.log"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		out, err := exec.Command("ovn-sbctl", "--db="+s.SB, "--timeout=5", "--bare", "--columns=name", "list", "Chassis").Output()
		if err == nil && strings.Contains(string(out), Chassis) {
			return p, nil
		}
		select {
		case <-ctl.exited:
			return nil, fmt.Errorf("ovn-controller exited while starting: %v", ctl.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ovn-controller's chassis %s not in the Southbound DB after %v (%v)", Chassis, startTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// VSCtl runs ovs-vsctl against the data plane's switch; an error fails t.
func (p *DataPlane) VSCtl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.vsctl(args...)
	if err != nil {
		t.Fatalf("ovntest: %v", err)
	}
	return out
}

func (p *DataPlane) vsctl(args ...string) (string, error) {
	cmd := exec.Command("ovs-vsctl", append([]string{"--db=" + p.DB}, args...)...)
	cmd.Env = p.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ovs-vsctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// WaitBound waits until ovn-controller has bound logical switch port to
// this chassis (a VM's tap with that iface-id is on br-int), as the
// Southbound Port_Binding says.
func (p *DataPlane) WaitBound(t testing.TB, port string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, err := exec.Command("ovn-sbctl", "--db="+p.s.SB, "--timeout=5", "--bare", "--columns=chassis", "find", "Port_Binding", "logical_port="+port).Output()
		if err == nil && strings.TrimSpace(string(out)) != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovntest: port %s not bound to a chassis after %v (%v)\n%s", port, limit, err, p.s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
