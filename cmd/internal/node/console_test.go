package node_test

import (
	"testing"
	"time"
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
