package node_test

import (
	"testing"
	"time"
)

// A restart of keel serve keeps what the simulated hosts hold, as a real
// hypervisor keeps its domains: a server built before the restart can be
// stopped, started and deleted after it, and leaves nothing behind.
func TestServersSurviveARestartOfTheirHosts(t *testing.T) {
	e := start(t, nil)
	e.seed()
	acc, _ := e.createServer("keeps")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	e.restart()

	for _, step := range []struct{ action, status, power string }{
		{"stop", "STOPPED", "SHUTOFF"}, {"start", "ACTIVE", "RUNNING"},
	} {
		a := e.act(acc.Server.ID, step.action)
		if op := e.waitOp(a.OperationID, 20*time.Second); op.Status != "succeeded" {
			t.Fatalf("%s after restart: %+v", step.action, op)
		}
		if s, _ := e.server(acc.Server.ID); s.Status != step.status || s.Power != step.power || s.Task != nil {
			t.Fatalf("after %s: %+v", step.action, s)
		}
	}
	del := e.act(acc.Server.ID, "delete")
	if op := e.waitOp(del.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete after restart: %+v", op)
	}
	for _, h := range e.node.Hosts {
		if n := len(h.Servers()); n != 0 {
			t.Fatalf("host %s still holds %d servers", h.Name, n)
		}
	}
}
