package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/sagas"
)

func TestServerLifecycleOnSimulatedHosts(t *testing.T) {
	e := start(t, nil)
	e.seed()
	acc, seq := e.createServer("web-1")
	if acc.Server.Status != "BUILDING" || acc.OperationID == "" {
		t.Fatalf("create answered %+v", acc)
	}
	// Read-your-writes: a GET naming the returned sequence sees the server.
	s, _, err := api.Get[api.Server](context.Background(), e.api, api.Path(api.Servers, acc.Server.ID), api.Opts{MinSequence: seq})
	if err != nil || s.ID != acc.Server.ID {
		t.Fatalf("read after write got %+v", s)
	}
	op := e.waitOp(acc.OperationID, 20*time.Second)
	if op.Status != "succeeded" || op.Kind != "server.create" || len(op.Steps) != 2 ||
		op.Steps[0].Name != "schedule" || op.Steps[1].Name != "spawn" || op.Steps[1].Status != "succeeded" {
		t.Fatalf("create operation: %+v", op)
	}
	s, _ = e.server("web-1")
	if s.Status != "ACTIVE" || s.Power != "RUNNING" || s.Host == nil || !strings.HasPrefix(*s.Host, "sim-") {
		t.Fatalf("server after build: %+v", s)
	}

	// An action that does not apply is refused with a reason.
	r := e.must(409, e.call("POST", "/v1/servers/web-1/start", nil))
	if !strings.Contains(string(r.Body), "only a STOPPED server can be started") {
		t.Fatalf("start of ACTIVE server: %s", r.Body)
	}
	for _, step := range []struct{ action, status, power string }{
		{"stop", "STOPPED", "SHUTOFF"}, {"start", "ACTIVE", "RUNNING"}, {"reboot", "ACTIVE", "RUNNING"},
	} {
		a := e.act("web-1", step.action)
		if op := e.waitOp(a.OperationID, 20*time.Second); op.Status != "succeeded" {
			t.Fatalf("%s: %+v", step.action, op)
		}
		if s, _ := e.server(s.ID); s.Status != step.status || s.Power != step.power {
			t.Fatalf("after %s: %+v", step.action, s)
		}
	}

	del := e.act(s.ID, "delete")
	if op := e.waitOp(del.OperationID, 20*time.Second); op.Status != "succeeded" || op.Kind != "server.delete" {
		t.Fatalf("delete: %+v", op)
	}
	if _, code := e.server(s.ID); code != 404 {
		t.Fatalf("deleted server answered %d", code)
	}
	for _, h := range e.node.Hosts {
		if n := len(h.Servers()); n != 0 {
			t.Fatalf("host %s still holds %d servers after delete", h.Name, n)
		}
	}
	e.expectNoClaims()
}

func TestFailedSpawnIsRetriedOnOtherHostsThenEndsInError(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeKnobs = fake.Knobs{FailRate: 1} })
	e.seed()
	acc, _ := e.createServer("doomed")
	op := e.waitOp(acc.OperationID, 20*time.Second)
	if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, "injected failure") {
		t.Fatalf("operation: %+v", op)
	}
	s, _ := e.server(acc.Server.ID)
	if s.Status != "ERROR" || s.Reason == nil || !strings.Contains(*s.Reason, "build failed on 3 hosts") || s.Host != nil {
		t.Fatalf("server: %+v", s)
	}
	// Each of the 3 hosts was tried once, and none keeps a claim.
	var tried struct {
		Items []struct{ Events []struct{ Type string } } `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/events?type=server.spawn_failed&aggregate_id="+s.ID, nil)).json(t, &tried)
	if len(tried.Items) != 2 {
		t.Fatalf("want 2 retried spawns before the last failure, got %d", len(tried.Items))
	}
	e.expectNoClaims()
	// Deleting works in ERROR too.
	del := e.act(s.ID, "delete")
	if op := e.waitOp(del.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete of ERROR server: %+v", op)
	}
}

// A build that fails on every host tells the user why in words, and keeps
// the host's own account (the driver's error, with what it was doing) for
// admins: GET /v1/operations/{id} shows the one as error and the other as
// detail, on the operation and on its spawn step.
func TestFailedBuildShowsTheReasonAndTheHostsAccount(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeKnobs = fake.Knobs{FailRate: 1} })
	e.seed()
	acc, _ := e.createServer("doomed")
	e.waitOp(acc.OperationID, 20*time.Second)

	type step struct {
		Name   string  `json:"name"`
		Status string  `json:"status"`
		Error  *string `json:"error"`
		Detail *string `json:"detail"`
	}
	var op struct {
		Status string  `json:"status"`
		Error  string  `json:"error"`
		Detail *string `json:"detail"`
		Steps  []step  `json:"steps"`
	}
	e.must(200, e.call("GET", "/v1/operations/"+acc.OperationID, nil)).json(t, &op)

	// The user's words: which hosts, and what went wrong, as the fake
	// driver explains it.
	const prefix = "build failed on 3 hosts; last on "
	host, rest, ok := strings.Cut(strings.TrimPrefix(op.Error, prefix), ": ")
	if op.Status != "failed" || !strings.HasPrefix(op.Error, prefix) || !ok || rest != "injected failure on simulated host "+host {
		t.Fatalf("operation %s, error %q", op.Status, op.Error)
	}
	if strings.Contains(op.Error, acc.Server.ID) {
		t.Fatalf("the user's reason shows the driver's account: %q", op.Error)
	}
	// The admins' account: the last host's driver error, whole.
	want := "injected failure on simulated host " + host + ": spawn " + acc.Server.ID + " on " + host + ": injected failure"
	if op.Detail == nil || *op.Detail != want {
		t.Fatalf("detail %v, want %q", op.Detail, want)
	}
	if len(op.Steps) != 2 || op.Steps[0].Name != "schedule" || op.Steps[0].Detail != nil {
		t.Fatalf("the schedule step did not fail and has no detail: %+v", op.Steps)
	}
	if sp := op.Steps[1]; sp.Name != "spawn" || sp.Status != "failed" || sp.Error == nil || *sp.Error != op.Error ||
		sp.Detail == nil || *sp.Detail != want {
		t.Fatalf("spawn step: %+v", sp)
	}
}

// A spawn its host never answers counts as a failed spawn: the build is
// tried on the other hosts, and fails, compensated, when every one hangs.
func TestOverdueSpawnIsTriedElsewhereThenCompensated(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeKnobs = fake.Knobs{HangRate: 1}
		c.Timeouts = sagas.Timeouts{Schedule: 5 * time.Second, Spawn: time.Second, Action: 5 * time.Second, Destroy: 5 * time.Second}
		c.DeadlineEvery = 100 * time.Millisecond
		c.AgentCallTimeout = 3 * time.Second
	})
	e.seed()
	acc, _ := e.createServer("hangs")
	op := e.waitOp(acc.OperationID, 30*time.Second)
	if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, "build failed on 3 hosts") ||
		!strings.Contains(*op.Error, "did not answer within 1s") {
		t.Fatalf("operation: %+v", op)
	}
	if op.Steps[0].Status != "compensated" || op.Steps[1].Status != "failed" {
		t.Fatalf("steps: %+v", op.Steps)
	}
	s, _ := e.server(acc.Server.ID)
	if s.Status != "ERROR" || s.Host != nil {
		t.Fatalf("server: %+v", s)
	}
	e.expectNoClaims()
	// The hosts that hung let go of the server once their spawn calls gave up.
	eventually(t, 20*time.Second, func() error {
		for _, h := range e.node.Hosts {
			if n := len(h.Servers()); n != 0 {
				return fmt.Errorf("host %s holds %d servers", h.Name, n)
			}
		}
		return nil
	})
}

// A host that never answers a spawn does not sink the build: after the
// spawn deadline it is placed on another host, as after a failed spawn.
func TestOverdueSpawnIsRescheduled(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 2
		c.Timeouts = sagas.Timeouts{Schedule: 5 * time.Second, Spawn: time.Second, Action: 5 * time.Second, Destroy: 5 * time.Second}
		c.DeadlineEvery = 100 * time.Millisecond
		c.AgentCallTimeout = 3 * time.Second
	})
	e.seed()
	e.node.Hosts[0].SetKnobs(fake.Knobs{HangRate: 1})
	e.must(200, e.call("POST", "/v1/hosts/sim-2/disable", map[string]any{"reason": "not yet"}))
	acc, _ := e.createServer("patient", "Keel-Min-Sequence", "0")
	eventually(t, 10*time.Second, func() error {
		if s, _ := e.server(acc.Server.ID); s.Host == nil || *s.Host != "sim-1" {
			return fmt.Errorf("server is not spawning on sim-1 yet: %+v", s)
		}
		return nil
	})
	e.must(200, e.call("POST", "/v1/hosts/sim-2/enable", nil))
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("operation: %+v", op)
	}
	s, _ := e.server(acc.Server.ID)
	if s.Status != "ACTIVE" || s.Host == nil || *s.Host != "sim-2" {
		t.Fatalf("server: %+v", s)
	}
}

func TestNoValidHostSaysWhy(t *testing.T) {
	e := start(t, func(c *node.Config) { c.HostVCPUs, c.HostRAMMiB, c.HostDiskGiB = 4, 1024, 10 })
	e.seed()
	r := e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "huge", "vcpus": 2, "ram_mib": 4096, "disk_gib": 1}))
	r = e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "big", "flavor": "huge", "image": "tiny"}, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	var acc api.Accepted
	r.json(t, &acc)
	op := e.waitOp(acc.OperationID, 20*time.Second)
	s, _ := e.server(acc.Server.ID)
	if op.Status != "failed" || s.Status != "ERROR" || s.Reason == nil || !strings.Contains(*s.Reason, "no valid host") {
		t.Fatalf("operation %+v, server %+v", op, s)
	}
}

func TestDeleteWhileBuildingSupersedesTheBuild(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeKnobs = fake.Knobs{Latency: 500 * time.Millisecond} })
	e.seed()
	acc, _ := e.createServer("short-lived")
	del := e.act(acc.Server.ID, "delete")
	if op := e.waitOp(del.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete: %+v", op)
	}
	op := e.waitOp(acc.OperationID, 20*time.Second)
	if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, "superseded by delete") {
		t.Fatalf("create operation: %+v", op)
	}
	if _, code := e.server(acc.Server.ID); code != 404 {
		t.Fatalf("server answered %d after delete", code)
	}
}

func TestSecondDeleteReturnsTheDeleteInProgress(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeKnobs = fake.Knobs{Latency: 300 * time.Millisecond} })
	e.seed()
	acc, _ := e.createServer("twice-deleted")
	e.waitOp(acc.OperationID, 20*time.Second)
	first, second := e.act(acc.Server.ID, "delete"), e.act(acc.Server.ID, "delete")
	if second.OperationID != first.OperationID || second.Server.Status != "DELETING" {
		t.Fatalf("second delete: %+v, first operation %s", second, first.OperationID)
	}
	if op := e.waitOp(first.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete: %+v", op)
	}
}
