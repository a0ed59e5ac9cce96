package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
)

// keel agent processes join a keel serve that runs no hosts of its own, and
// the control plane cannot tell their hosts from in-process ones.
func TestAgentProcessesJoinOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs keel serve and keel agent processes")
	}
	bin := buildKeel(t)
	natsAddr, dataDir := freeAddr(t), t.TempDir()
	p := serve(t, bin, dataDir, pgtest.NewDatabase(t), freeAddr(t), "--fake-hosts", "0", "--nats-listen", natsAddr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	var agentLogs []*bytes.Buffer
	for _, prefix := range []string{"rack-a", "rack-b"} {
		log := &bytes.Buffer{}
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
	var hosts struct {
		Items []hostJSON `json:"items"`
	}
	eventually(t, 30*time.Second, func() error {
		r, err := http.Get(p.url + "/v1/hosts")
		if err != nil {
			return err
		}
		defer r.Body.Close()
		if err := json.NewDecoder(r.Body).Decode(&hosts); err != nil {
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
	must := func(code int, body []byte, err error) []byte {
		t.Helper()
		if err != nil || code >= 300 {
			t.Fatalf("%d %s %v", code, body, err)
		}
		return body
	}
	must(post(p.url+"/v1/flavors", map[string]any{"name": "small", "vcpus": 1, "ram_mib": 512, "disk_gib": 1}))
	var im struct{ ID string }
	_ = json.Unmarshal(must(post(p.url+"/v1/images", map[string]any{"name": "tiny", "disk_format": "raw"})), &im)
	req, _ := http.NewRequest("PUT", p.url+"/v1/images/"+im.ID+"/file", bytes.NewReader([]byte("bytes")))
	req.Header.Set("Content-Type", "application/octet-stream")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("upload: %v %v", err, res)
	}
	time.Sleep(300 * time.Millisecond) // names reach the read model
	var accs []acceptedJSON
	for i := 0; i < 6; i++ {
		var a acceptedJSON
		_ = json.Unmarshal(must(post(p.url+"/v1/servers", map[string]any{"name": fmt.Sprintf("a-%d", i), "flavor": "small", "image": "tiny"})), &a)
		accs = append(accs, a)
	}
	for _, a := range accs {
		eventually(t, 30*time.Second, func() error {
			r, err := http.Get(p.url + "/v1/servers/" + a.Server.ID)
			if err != nil {
				return err
			}
			defer r.Body.Close()
			var s serverJSON
			_ = json.NewDecoder(r.Body).Decode(&s)
			if s.Status != "ACTIVE" || s.Host == nil {
				return fmt.Errorf("server %s is %s", a.Server.ID, s.Status)
			}
			return nil
		})
	}
}
