package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

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
	agentLog := &bytes.Buffer{}
	a := exec.Command(bin, "agent", "--driver", "libvirt", "--libvirt-uri", "qemu:///system?socket="+lv.Socket,
		"--host-name", "node-a", "--data-dir", agentDir, "--nats", "nats://"+natsAddr,
		"--credentials", filepath.Join(dataDir, "agent.nk"), "--secrets-key", filepath.Join(dataDir, "secrets.key"), "--heartbeat", "500ms", "--stop-timeout", "5s")
	a.Stdout, a.Stderr = agentLog, agentLog
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Process.Signal(syscall.SIGINT); _ = a.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s\nagent:\n%s", p.log, agentLog)
		}
	}()
	c := api.New(p.url)
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
	if !strings.Contains(agentLog.String(), "domain_type=qemu") {
		t.Fatalf("the agent did not choose TCG on a machine without working KVM:\n%s", agentLog)
	}

	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "tiny", VCPUs: 1, RAMMiB: 256, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	im, _, err := api.Create[api.Image](ctx, c, api.Images, api.ImageBody{Name: "keel-test-guest", DiskFormat: "qcow2"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(guest)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	up, err := c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Images, im.ID, "file"), Raw: f,
		RawType: "application/octet-stream", RawLength: st.Size()}, nil)
	f.Close()
	if err != nil {
		t.Fatalf("upload: %v", err)
	}

	marker := "hello from " + uuid.NewString()
	userData := "#!/bin/sh\necho '" + marker + "'\n"
	acc, _, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: "vm-1", Flavor: "tiny", Image: "keel-test-guest",
		UserData: base64.StdEncoding.EncodeToString([]byte(userData))}, api.Opts{MinSequence: up.Sequence})
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
	console := filepath.Join(agentDir, "servers", id, "console.log")
	if got := lvtest.WaitUserData(t, console, 2*time.Minute); !strings.Contains(got, marker) {
		t.Fatalf("the guest printed user data %q; want it to hold %q", got, marker)
	}
	l := lv.Dial(t)
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

	for _, step := range []struct{ action, status, domain string }{
		{"stop", "STOPPED", "shut off"}, {"start", "ACTIVE", "running"}, {"reboot", "ACTIVE", "running"},
	} {
		if _, err := c.Do(ctx, api.Request{Method: "POST", Path: api.Path(api.Servers, id, step.action)}, nil); err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		waitStatus(step.status, time.Minute)
		if s := domainState(); s != step.domain {
			t.Fatalf("after %s the domain is %s; want %s", step.action, s, step.domain)
		}
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
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 0 {
		t.Fatalf("domains left on the host: %+v", doms)
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
