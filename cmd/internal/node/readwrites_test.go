package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/host"
)

// stallProjections holds the projection checkpoints locked, so the read
// model stops moving (as on a busy or lagging replica) until the returned
// function is called.
func (e *env) stallProjections() func() {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.node.Pool.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints FOR UPDATE`); err != nil {
		e.t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			done = true
			_ = tx.Rollback(ctx)
		}
	}
	e.t.Cleanup(release)
	return release
}

// A name its caller has just created resolves at once, whatever the read
// model's lag, and the answer kept under the Idempotency-Key is that one.
func TestNameJustCreatedResolvesWhileTheReadModelLags(t *testing.T) {
	e := start(t, func(c *node.Config) { c.ReadWait = 500 * time.Millisecond })
	e.seed()
	e.stallProjections()
	for i := range 10 {
		flavor := fmt.Sprintf("f-%d", i)
		e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": flavor, "vcpus": 1, "ram_mib": 64, "disk_gib": 1}))
		r := e.call("POST", "/v1/servers", map[string]any{"name": "s", "flavor": flavor, "image": "tiny"},
			"Idempotency-Key", "server-on-"+flavor)
		if r.Status != 202 {
			t.Fatalf("server naming flavor %s, created a moment before: %d %s", flavor, r.Status, r.Body)
		}
	}
	// So do images and server groups, by name, and deleting by name.
	e.must(201, e.call("POST", "/v1/server-groups", map[string]any{"name": "g", "policy": "anti-affinity"}))
	e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "t", "flavor": "f-1", "image": "tiny", "server_group": "g"}))
	e.must(204, e.call("DELETE", "/v1/flavors/f-9", nil))
	r := e.must(422, e.call("POST", "/v1/servers", map[string]any{"name": "u", "flavor": "f-9", "image": "tiny"}))
	if !strings.Contains(string(r.Body), "flavor f-9 not found") {
		t.Fatalf("server naming a deleted flavor: %s", r.Body)
	}
}

// A refusal that rests on the read model (a server named but not found) is
// not kept under the Idempotency-Key: once the server exists, the same
// retry succeeds. A read-model lag beyond the bound is a 503 with
// Retry-After, never kept either.
func TestRefusalsOnTheReadModelAreNotKept(t *testing.T) {
	e := start(t, func(c *node.Config) { c.ReadWait = 500 * time.Millisecond })
	e.seed()
	stop := func() resp {
		return e.call("POST", "/v1/servers/later/stop", nil, "Idempotency-Key", "stop-later")
	}
	r := e.must(404, stop())
	if !strings.Contains(string(r.Body), "server later not found") {
		t.Fatalf("stop of a missing server: %s", r.Body)
	}
	acc, _ := e.createServer("later")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}

	release := e.stallProjections()
	e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "unseen", "vcpus": 1, "ram_mib": 64, "disk_gib": 1}))
	r = e.call("GET", "/v1/servers/later", nil, "Keel-Min-Sequence", "999999")
	if r.Status != 422 || !strings.Contains(string(r.Body), "beyond the end of the event log") {
		t.Fatalf("Keel-Min-Sequence beyond the head: %d %s", r.Status, r.Body)
	}
	head, _ := e.node.Store.LastSequence(context.Background())
	began := time.Now()
	r = e.call("GET", "/v1/flavors/unseen", nil, "Keel-Min-Sequence", fmt.Sprint(head))
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Header.Get("Content-Type"), "problem+json") {
		t.Fatalf("read-model lag beyond the bound: %d %v %s", r.Status, r.Header, r.Body)
	}
	if waited := time.Since(began); waited > 5*time.Second {
		t.Fatalf("the lagging read waited %s, bound 500ms", waited)
	}
	release()

	var a api.Accepted
	e.must(202, stop()).json(t, &a)
	if op := e.waitOp(a.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("stop: %+v", op)
	}
	// The read model caught up: the flavor is listed to a client that
	// names the sequence of its write.
	var page struct {
		Items []api.Flavor `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/flavors?name=unseen", nil, "Keel-Min-Sequence", fmt.Sprint(head))).json(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("list after the write: %+v", page)
	}
}

// Keel-Min-Sequence beyond the head of the log is refused at once rather
// than held for the read wait.
func TestMinSequenceBeyondTheHeadIsRefusedAtOnce(t *testing.T) {
	e := start(t, func(c *node.Config) { c.ReadWait = 10 * time.Second })
	e.seed()
	began := time.Now()
	r := e.call("GET", "/v1/servers", nil, "Keel-Min-Sequence", "1000000")
	if r.Status != 422 || !strings.Contains(string(r.Body), "beyond the end of the event log") {
		t.Fatalf("answer: %d %s", r.Status, r.Body)
	}
	if waited := time.Since(began); waited > 2*time.Second {
		t.Fatalf("answered after %s", waited)
	}
	r = e.call("GET", "/v1/servers?min_seq=1000000", nil)
	if r.Status != 422 {
		t.Fatalf("min_seq beyond the head: %d %s", r.Status, r.Body)
	}
}

// Placement does not say "no valid host" on a read model that lags behind
// the log: a host enabled a moment before the create takes the server.
func TestPlacementLooksAgainWhenTheReadModelLags(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 1 })
	e.seed()
	r := e.must(200, e.call("POST", "/v1/hosts/sim-1/disable", map[string]any{"reason": "not yet"}))
	e.must(200, e.call("GET", "/v1/hosts/sim-1", nil, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	release := e.stallProjections()
	// The API answers a host action once the read model shows it; the
	// command alone is enough here.
	meta := commands.Meta{CommandID: commands.NewID()}
	if _, err := e.node.App.Hosts.Handle(context.Background(), commands.HostID("sim-1"), host.Enable{At: time.Now()}, meta); err != nil {
		t.Fatal(err)
	}
	acc, _ := e.createServer("eager")
	time.AfterFunc(300*time.Millisecond, release)
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create on a host enabled a moment before: %+v", op)
	}
}
