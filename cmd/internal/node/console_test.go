package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// The console log is read from the server's host: a simulated host keeps
// none and says so (409), a server on no host has none (409), an unknown
// server is a 404. Real hosts answer with the log (TestRealGuestOnLibvirt).
func TestConsoleLogAsksTheHost(t *testing.T) {
	e := start(t, nil)
	e.seed()
	acc, _ := e.createServer("web-1")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	e.mustProblem(409, e.call("GET", "/v1/servers/web-1/console-log", nil), "keeps no console log (a simulated host)")
	e.mustProblem(404, e.call("GET", "/v1/servers/nobody/console-log", nil), "nobody")
	e.mustProblem(422, e.call("GET", "/v1/servers/web-1/console-log?max_bytes=0", nil), "validation failed")

	// A server that found no host is on none.
	e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "huge", "vcpus": 1, "ram_mib": 1 << 24, "disk_gib": 1}))
	r := e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "nowhere", "flavor": "huge", "image": "tiny"}))
	var big struct {
		OperationID string `json:"operation_id"`
	}
	r.json(t, &big)
	e.waitOp(big.OperationID, 20*time.Second)
	e.mustProblem(409, e.call("GET", "/v1/servers/nowhere/console-log", nil), "is on no host (ERROR)")
}

// Data disks count against the host's disk: a server with two of them
// claims its flavor's disk and theirs, shows them, and gives all back when
// deleted.
func TestDataDisksAreClaimed(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 1 })
	e.seed()
	r := e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "db", "flavor": "small", "image": "tiny", "data_disks_gib": []int{5, 7}},
		"Keel-Min-Sequence", fmt.Sprint(e.minSeq)))
	var acc api.Accepted
	r.json(t, &acc)
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	s, _ := e.server(acc.Server.ID)
	if fmt.Sprint(s.DataDisksGiB) != "[5 7]" {
		t.Fatalf("server shows data disks %v", s.DataDisksGiB)
	}
	used := func() int {
		h, _, err := api.Get[api.Host](context.Background(), e.api, api.Path(api.Hosts, "sim-1"), api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		return h.Used.DiskGiB
	}
	if u := used(); u != 1+5+7 {
		t.Fatalf("host uses %d GiB of disk; want 13 (flavor 1 + data 5 + 7)", u)
	}
	del := e.act(acc.Server.ID, "delete")
	e.waitOp(del.OperationID, 20*time.Second)
	eventually(t, 10*time.Second, func() error {
		if u := used(); u != 0 {
			return fmt.Errorf("host still uses %d GiB", u)
		}
		return nil
	})
}
