package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
)

// A real guest, the way a user gets one: keel serve, a keel agent with the
// libvirt driver on a private libvirtd, the test guest uploaded through the
// API, a server created with user data. It boots under TCG from a qcow2
// overlay on the cached image, prints the user data it read from its
// NoCloud seed, and is ACTIVE; stop, start, reboot and delete work, and
// after the delete the host holds no domain, disk or seed.
func TestRealGuestOnLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	lv := lvtest.Start(t)
	guest := lvtest.GuestImage(t)
	bin := buildKeel(t)
	natsAddr, dataDir, agentDir := freeAddr(t), t.TempDir(), filepath.Join(lv.Dir, "agent")
	p := serve(t, bin, dataDir, pgtest.NewDatabase(t), freeAddr(t), "--fake-hosts", "0", "--nats-listen", natsAddr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	agentLog := &syncBuffer{} // read while the agent writes
	creds := issueCredentials(t, bin, p.url, p.token, "node-a")
	var a *exec.Cmd
	startAgent := func() {
		a = exec.Command(bin, "agent", "--driver", "libvirt", "--libvirt-uri", "qemu:///system?socket="+lv.Socket,
			"--data-dir", agentDir, "--nats", "nats://"+natsAddr,
			"--credentials", creds, "--heartbeat", "500ms", "--stop-timeout", "5s")
		a.Stdout, a.Stderr = agentLog, agentLog
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
	}
	startAgent()
	defer func() { interrupt(t, "the agent", a, agentLog) }()
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s\nagent:\n%s", p.log, agentLog)
		}
	}()
	c := p.client()
	ctx := context.Background()

	// The node registers what libvirt says of it.
	eventually(t, 30*time.Second, func() error {
		h, _, err := api.Get[api.Host](ctx, c, api.Path(api.Hosts, "node-a"), api.Opts{})
		if err != nil {
			return err
		}
		if h.State != "up" || h.Driver != "libvirt" || h.Total.VCPUs < 1 || h.Total.RAMMiB < 256 {
			return fmt.Errorf("host %+v", h)
		}
		return nil
	})
	// KVM when a guest runs under it on this machine, TCG otherwise: the
	// agent must have found the same.
	want := libvirt.DetectAccel(ctx, "qemu-system-x86_64")
	mode := want.CPUMode
	if mode == "" {
		mode = `""` // as the log writes an empty value
	}
	if !strings.Contains(agentLog.String(), "domain_type="+want.DomainType+" cpu_mode="+mode+" ") {
		t.Fatalf("the agent did not choose %s with cpu mode %q (%s):\n%s", want.DomainType, want.CPUMode, want.Why, agentLog)
	}

	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "tiny", VCPUs: 1, RAMMiB: 256, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	up := uploadGuest(t, c, guest)

	if _, _, err := api.Create[api.Keypair](ctx, c, api.Keypairs, api.KeypairBody{Name: "alice", PublicKey: ed25519Key}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	marker := "hello from " + uuid.NewString()
	userData := "#!/bin/sh\necho '" + marker + "'\n"
	acc, _, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: "vm-1", Flavor: "tiny", Image: "keel-test-guest",
		KeyName: "alice", UserData: base64.StdEncoding.EncodeToString([]byte(userData))}, api.Opts{MinSequence: up.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	id := acc.Server.ID
	waitStatus := func(want string, within time.Duration) {
		t.Helper()
		eventually(t, within, func() error {
			s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
			if err != nil {
				return err
			}
			if s.Status == "ERROR" {
				t.Fatalf("server in ERROR: %v", deref(s.Reason))
			}
			if s.Status != want || s.Task != nil {
				return fmt.Errorf("server %s, task %v; want %s", s.Status, deref(s.Task), want)
			}
			return nil
		})
	}
	waitStatus("ACTIVE", 2*time.Minute)
	// What the guest printed, through the API: the console log read from
	// the host by its agent.
	eventually(t, 2*time.Minute, func() error {
		log, err := api.ConsoleLog(ctx, c, id, 0)
		if err != nil {
			return err
		}
		got, ok := lvtest.UserData(string(log))
		if !ok || !strings.Contains(got, marker) {
			return fmt.Errorf("console log so far:\n%s", log)
		}
		return nil
	})
	// The guest got the admin user with the keypair's key and the password
	// login-info gives (it prints the seed's vendor-data).
	login, _, err := api.Get[api.LoginInfo](ctx, c, api.Path(api.Servers, id, "login-info"), api.Opts{})
	if err != nil || login.Username != "keel" || len(login.Password) < 16 {
		t.Fatalf("login info %+v, %v", login, err)
	}
	eventually(t, time.Minute, func() error { // the guest may still be printing it
		log, err := api.ConsoleLog(ctx, c, id, 0)
		if err != nil {
			return err
		}
		if _, vendor, ok := strings.Cut(string(log), "KEEL-GUEST vendor-data-begin"); !ok ||
			!strings.Contains(vendor, `password: "`+login.Password+`"`) || !strings.Contains(vendor, ed25519Key) {
			return fmt.Errorf("the guest's vendor-data lacks the key or the password of login-info:\n%s", log)
		}
		return nil
	})
	// The graphical console: a URL that completes an RFB handshake with the
	// guest's display through keel serve, once.
	rc, _, err := api.Get[api.RemoteConsole](ctx, c, api.Path(api.Servers, id, "console"), api.Opts{})
	if err != nil || rc.Protocol != "vnc" || !strings.HasPrefix(rc.URL, "ws://") {
		t.Fatalf("console %+v, %v", rc, err)
	}
	width, height, name := rfbHandshake(t, rc.URL)
	if width == 0 || height == 0 {
		t.Fatalf("the display is %dx%d (%q)", width, height, name)
	}
	t.Logf("console: RFB handshake done through keel serve: display %dx%d %q", width, height, name)
	expectConsoleRefused(t, rc.URL, http.StatusForbidden)
	// A guest Keel did not create: recorded on the host, never touched.
	if _, err := lv.Dial(t).DomainDefineXMLFlags(`<domain type='qemu'><name>legacy-db</name><memory unit='MiB'>16</memory>
		<os><type arch='x86_64'>hvm</type></os></domain>`, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		h, _, err := api.Get[api.Host](ctx, c, api.Path(api.Hosts, "node-a"), api.Opts{})
		if err != nil {
			return err
		}
		if strings.Join(h.UnknownGuests, ",") != "legacy-db" {
			return fmt.Errorf("host records unknown guests %v", h.UnknownGuests)
		}
		return nil
	})
	if _, err := lv.Dial(t).DomainLookupByName("legacy-db"); err != nil {
		t.Fatalf("the guest Keel did not create was touched: %v", err)
	}
	if log, err := api.ConsoleLog(ctx, c, id, 10); err != nil || len(log) != 10 {
		t.Fatalf("the last 10 bytes of the console log: %q, %v", log, err)
	}
	domainState := func() string {
		out, err := exec.Command("virsh", "-c", "qemu:///system?socket="+lv.Socket, "domstate", "keel-"+id).CombinedOutput()
		if err != nil {
			return "none: " + strings.TrimSpace(string(out))
		}
		return strings.TrimSpace(string(out))
	}
	if s := domainState(); s != "running" {
		t.Fatalf("domain %s after boot", s)
	}

	// The console log keeps every boot: booted() waits for the boot under
	// way to finish and counts boots and ACPI power-offs so far.
	booted := func(want func(boots, offs int) error) (int, int) {
		t.Helper()
		var boots, offs int
		eventually(t, time.Minute, func() error {
			log, err := api.ConsoleLog(ctx, c, id, 1<<20)
			if err != nil {
				return err
			}
			boots, offs = strings.Count(string(log), "KEEL-GUEST booted"), strings.Count(string(log), "KEEL-GUEST acpi-poweroff")
			if ready := strings.Count(string(log), "KEEL-GUEST ready"); ready != boots {
				return fmt.Errorf("boot %d not finished", boots)
			}
			if err := want(boots, offs); err != nil {
				return fmt.Errorf("%w; console log:\n%s", err, log)
			}
			return nil
		})
		return boots, offs
	}
	boots, offs := booted(func(int, int) error { return nil })
	// Each step boots the guest (+1) or not, and shuts it down through
	// ACPI (+1) or not: a soft reboot does both, a hard one only boots.
	for _, step := range []struct {
		action, query, status, domain string
		boot, off                     int
	}{
		{"stop", "", "STOPPED", "shut off", 0, 1}, {"start", "", "ACTIVE", "running", 1, 0},
		{"reboot", "", "ACTIVE", "running", 1, 1}, {"reboot", "hard", "ACTIVE", "running", 1, 0},
	} {
		o := api.Opts{}
		if step.query != "" {
			o.Query = url.Values{"type": {step.query}}
		}
		var acc api.Accepted
		if _, err := c.Do(ctx, api.Request{Method: "POST", Path: api.Path(api.Servers, id, step.action), Opts: o}, &acc); err != nil {
			t.Fatalf("%s %s: %v", step.action, step.query, err)
		}
		eventually(t, time.Minute, func() error {
			op, _, err := api.Get[api.Operation](ctx, c, api.Path(api.Operations, acc.OperationID), api.Opts{})
			if err != nil {
				return err
			}
			if op.Status != "succeeded" {
				return fmt.Errorf("%s %s: operation %s", step.action, step.query, op.Status)
			}
			return nil
		})
		waitStatus(step.status, time.Minute)
		if s := domainState(); s != step.domain {
			t.Fatalf("after %s the domain is %s; want %s", step.action, s, step.domain)
		}
		boots, offs = booted(func(b, o int) error {
			if b != boots+step.boot || o != offs+step.off {
				return fmt.Errorf("after %s %s: %d boots (%d before), %d ACPI power-offs (%d before)", step.action, step.query, b, boots, o, offs)
			}
			return nil
		})
	}

	// Destroyed behind Keel's back: the agent hears it, Keel records the
	// drift and starts the server again, as an operation of its own.
	virsh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system?socket=" + lv.Socket}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("virsh %v: %v: %s", args, err, out)
		}
	}
	before, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	virsh("destroy", "keel-"+id)
	eventually(t, time.Minute, func() error {
		s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
		if err != nil {
			return err
		}
		if s.Status != "ACTIVE" || s.Task != nil || deref(s.OperationID) == deref(before.OperationID) || domainState() != "running" {
			return fmt.Errorf("server %s task %v op %v, domain %s", s.Status, deref(s.Task), deref(s.OperationID), domainState())
		}
		op, _, err := api.Get[api.Operation](ctx, c, api.Path(api.Operations, *s.OperationID), api.Opts{})
		if err != nil {
			return err
		}
		if op.Kind != "server.start" || op.Status != "succeeded" {
			return fmt.Errorf("restoring operation %s %s", op.Kind, op.Status)
		}
		return nil
	})

	// The agent killed, the domain destroyed meanwhile (a host that went
	// down): the agent that comes back starts the server again.
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	virsh("destroy", "keel-"+id)
	startAgent()
	eventually(t, time.Minute, func() error {
		if s := domainState(); s != "running" {
			return fmt.Errorf("domain %s after the agent came back", s)
		}
		s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
		if err != nil {
			return err
		}
		if s.Status != "ACTIVE" || s.Task != nil {
			return fmt.Errorf("server %s task %v", s.Status, deref(s.Task))
		}
		return nil
	})

	// libvirtd gone, with its guests (a crashed or rebooting host): the
	// host is down at once; a server created meanwhile ends in ERROR
	// rather than staying BUILDING. When libvirtd returns, the host is up
	// by itself and the server runs again.
	hostState := func(want string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			h, _, err := api.Get[api.Host](ctx, c, api.Path(api.Hosts, "node-a"), api.Opts{})
			if err != nil {
				return err
			}
			if h.State != want {
				return fmt.Errorf("host %s, want %s", h.State, want)
			}
			return nil
		})
	}
	lv.Kill(t)
	hostState("down")
	acc2, _, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: "vm-2", Flavor: "tiny", Image: "keel-test-guest"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, acc2.Server.ID), api.Opts{})
		if err != nil {
			return err
		}
		if s.Status != "ERROR" || !strings.Contains(deref(s.Reason).(string), "no valid host") {
			return fmt.Errorf("server created while the only host is down: %s (%v)", s.Status, deref(s.Reason))
		}
		return nil
	})
	lv.Restart(t)
	hostState("up")
	eventually(t, time.Minute, func() error {
		if s := domainState(); s != "running" {
			return fmt.Errorf("domain %s after libvirtd came back", s)
		}
		s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
		if err != nil {
			return err
		}
		if s.Status != "ACTIVE" || s.Task != nil {
			return fmt.Errorf("server %s task %v", s.Status, deref(s.Task))
		}
		return nil
	})
	if _, err := api.Delete(ctx, c, api.Path(api.Servers, acc2.Server.ID), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}

	if _, err := api.Delete(ctx, c, api.Path(api.Servers, id), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		_, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
		if !api.IsStatus(err, 404) {
			return fmt.Errorf("server still there (%v)", err)
		}
		return nil
	})
	doms, _, err := lv.Dial(t).ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 1 || doms[0].Name != "legacy-db" {
		t.Fatalf("domains left on the host besides the operator's own: %+v", doms)
	}
	if left, _ := os.ReadDir(filepath.Join(agentDir, "servers")); len(left) != 0 {
		t.Fatalf("server files left on the host: %v", left)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// Two compute nodes (two private libvirtds on one machine): servers in an
// anti-affinity group land one on each, each node's libvirtd holds only
// its own, and a delete leaves neither anything.
func TestTwoLibvirtNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two real guests")
	}
	lvs := []*lvtest.Daemon{lvtest.Start(t), lvtest.Start(t)}
	guest := lvtest.GuestImage(t)
	bin := buildKeel(t)
	natsAddr, dataDir := freeAddr(t), t.TempDir()
	p := serve(t, bin, dataDir, pgtest.NewDatabase(t), freeAddr(t), "--fake-hosts", "0", "--nats-listen", natsAddr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	names := []string{"node-a", "node-b"}
	logs := []*syncBuffer{{}, {}}
	for i, lv := range lvs {
		a := exec.Command(bin, "agent", "--driver", "libvirt", "--libvirt-uri", "qemu:///system?socket="+lv.Socket,
			"--host-name", names[i], "--data-dir", filepath.Join(lv.Dir, "agent"), "--nats", "nats://"+natsAddr,
			"--credentials", issueCredentials(t, bin, p.url, p.token, names[i]), "--heartbeat", "500ms")
		a.Stdout, a.Stderr = logs[i], logs[i]
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		defer interrupt(t, "agent "+names[i], a, logs[i])
	}
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s\nagent a:\n%s\nagent b:\n%s", p.log, logs[0], logs[1])
		}
	}()
	c := p.client()
	ctx := context.Background()
	eventually(t, 30*time.Second, func() error {
		for _, n := range names {
			h, _, err := api.Get[api.Host](ctx, c, api.Path(api.Hosts, n), api.Opts{})
			if err != nil {
				return err
			}
			if h.State != "up" {
				return fmt.Errorf("host %s %s", n, h.State)
			}
		}
		return nil
	})
	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "tiny", VCPUs: 1, RAMMiB: 256, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.ServerGroup](ctx, c, api.ServerGroups, api.GroupBody{Name: "pair", Policy: "anti-affinity"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	up := uploadGuest(t, c, guest)
	var ids []string
	for i := range 2 {
		acc, _, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: fmt.Sprintf("vm-%d", i), Flavor: "tiny",
			Image: "keel-test-guest", ServerGroup: "pair"}, api.Opts{MinSequence: up.Sequence})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.Server.ID)
	}
	on := map[string]string{} // host -> server
	for _, id := range ids {
		eventually(t, 2*time.Minute, func() error {
			s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
			if err != nil {
				return err
			}
			if s.Status == "ERROR" {
				t.Fatalf("server %s in ERROR: %v", id, deref(s.Reason))
			}
			if s.Status != "ACTIVE" || s.Host == nil {
				return fmt.Errorf("server %s %s", id, s.Status)
			}
			on[*s.Host] = id
			return nil
		})
	}
	if len(on) != 2 {
		t.Fatalf("servers placed on %v; want one on each node", on)
	}
	// Each node's libvirtd holds its own server, and only that one.
	for i, lv := range lvs {
		doms, _, err := lv.Dial(t).ConnectListAllDomains(1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(doms) != 1 || doms[0].Name != "keel-"+on[names[i]] {
			t.Fatalf("%s holds %+v; want only keel-%s", names[i], doms, on[names[i]])
		}
	}
	for _, id := range ids {
		if _, err := api.Delete(ctx, c, api.Path(api.Servers, id), api.Opts{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, lv := range lvs {
		eventually(t, time.Minute, func() error {
			doms, _, err := lv.Dial(t).ConnectListAllDomains(1, 0)
			if err != nil {
				return err
			}
			if len(doms) != 0 {
				return fmt.Errorf("%s still holds %+v", names[i], doms)
			}
			return nil
		})
	}
}

// uploadGuest creates the image keel-test-guest from the test guest's
// qcow2 file and uploads it; it answers with the upload's commit.
func uploadGuest(t *testing.T, c *api.Client, guest string) *api.Response {
	t.Helper()
	ctx := context.Background()
	im, _, err := api.Create[api.Image](ctx, c, api.Images, api.ImageBody{Name: "keel-test-guest", DiskFormat: "qcow2"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(guest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Images, im.ID, "file"), Raw: f,
		RawType: "application/octet-stream", RawLength: st.Size()}, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return up
}

// issueCredentials issues host's credentials with the CLI, as an operator
// does, and returns their file.
func issueCredentials(t *testing.T, bin, apiURL, token, host string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), host+".creds")
	cmd := exec.Command(bin, "host", "credentials", host, "-o", file)
	cmd.Env = append(os.Environ(), "KEEL_API="+apiURL, "KEEL_TOKEN="+token)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keel host credentials %s: %v\n%s", host, err, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v, want mode 0600", fi, err)
	}
	return file
}

// rfbHandshake opens a console URL as noVNC does and goes through the RFB
// handshake (version, security None, client and server init); it returns
// the display's size and name.
func rfbHandshake(t *testing.T, url string) (width, height int, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("open the console %s: %v", url, err)
	}
	defer ws.CloseNow()
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatalf("RFB: read %d bytes: %v", n, err)
		}
		return b
	}
	write := func(b []byte) {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("RFB: write: %v", err)
		}
	}
	version := string(read(12))
	if !strings.HasPrefix(version, "RFB 003.") {
		t.Fatalf("RFB: the display greets with %q", version)
	}
	write([]byte("RFB 003.008\n"))
	types := read(int(read(1)[0]))
	if !bytes.Contains(types, []byte{1}) {
		t.Fatalf("RFB: security types %v, want None (1) among them", types)
	}
	write([]byte{1})
	if res := binary.BigEndian.Uint32(read(4)); res != 0 {
		t.Fatalf("RFB: security result %d", res)
	}
	write([]byte{1}) // ClientInit: shared
	init := read(24)
	width, height = int(binary.BigEndian.Uint16(init[0:2])), int(binary.BigEndian.Uint16(init[2:4]))
	name = string(read(int(binary.BigEndian.Uint32(init[20:24]))))
	return width, height, name
}

// expectConsoleRefused opens a console URL and wants it refused with
// status, as an RFC 9457 problem.
func expectConsoleRefused(t *testing.T, url string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("console %s opened; want it refused with %d", url, status)
	}
	if res == nil || res.StatusCode != status || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("console %s refused with %v (%v); want a %d problem", url, res, err, status)
	}
}
