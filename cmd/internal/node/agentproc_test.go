package node_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
)

// keel agent processes join a keel serve that runs no hosts of its own, and
// the control plane cannot tell their hosts from in-process ones.
func TestAgentProcessesJoinOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs keel serve and keel agent processes")
	}
	bin := buildKeel(t)
	natsAddr, dataDir := freeAddr(t), t.TempDir()
	p := serve(t, bin, dataDir, pgtest.NewDatabase(t), freeAddr(t), "--fake-hosts", "0", "--simulated-agents", "--nats-listen", natsAddr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	var agentLogs []*syncBuffer
	for _, prefix := range []string{"rack-a", "rack-b"} {
		log := &syncBuffer{}
		agentLogs = append(agentLogs, log)
		a := exec.Command(bin, "agent", "--nats", "nats://"+natsAddr, "--credentials", filepath.Join(dataDir, "agent.nk"),
			"--hosts", "5", "--host-prefix", prefix, "--state-dir", t.TempDir(),
			"--host-vcpus", "8", "--host-ram-mib", "4096", "--host-disk-gib", "100", "--fake-latency", "10ms", "--heartbeat", "200ms")
		a.Stdout, a.Stderr = log, log
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Process.Signal(syscall.SIGINT); _ = a.Wait() }()
	}
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s", p.log)
			for _, l := range agentLogs {
				t.Logf("agent:\n%s", l)
			}
		}
	}()
	c := p.client()
	ctx := context.Background()
	eventually(t, 30*time.Second, func() error {
		hosts, _, err := api.Get[api.HostList](ctx, c, api.Hosts, api.Opts{})
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hosts.Items {
			if h.State == "up" && h.Total.RAMMiB == 4096 {
				up++
			}
		}
		if up != 10 {
			return fmt.Errorf("%d of 10 hosts up", up)
		}
		return nil
	})
	// Servers name the flavor and image after the upload's sequence.
	seq := seedOver(t, c)
	var accs []api.Accepted
	for i := 0; i < 6; i++ {
		a, _, err := api.Create[api.Accepted](ctx, c, api.Servers,
			api.ServerBody{Name: fmt.Sprintf("a-%d", i), Flavor: "small", Image: "tiny"}, api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, a)
	}
	for _, a := range accs {
		eventually(t, 30*time.Second, func() error {
			s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, a.Server.ID), api.Opts{})
			if err != nil {
				return err
			}
			if s.Status != "ACTIVE" || s.Host == nil {
				return fmt.Errorf("server %s is %s", a.Server.ID, s.Status)
			}
			return nil
		})
	}
}

// seedOver creates the flavor small (256 MiB) and the active image tiny
// through c; it returns the sequence of the upload, after which both can
// be named.
func seedOver(t *testing.T, c *api.Client) uint64 {
	t.Helper()
	ctx := context.Background()
	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "small", VCPUs: 1, RAMMiB: 256, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	im, _, err := api.Create[api.Image](ctx, c, api.Images, api.ImageBody{Name: "tiny", DiskFormat: "raw"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Images, im.ID, "file"),
		Raw: strings.NewReader("bytes"), RawType: "application/octet-stream", RawLength: 5}, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return res.Sequence
}
