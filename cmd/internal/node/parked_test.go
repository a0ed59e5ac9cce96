package node_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/sagas"
)

func (e *env) parked() []api.ParkedCommit {
	e.t.Helper()
	items, err := api.ListAll[api.ParkedCommit](context.Background(), e.api, api.Parked,
		api.Opts{Query: url.Values{"subscription": {hostlink.WorkParked}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

// parkedOf are the parked commits of one server, in log order.
func (e *env) parkedOf(id string) []api.ParkedCommit {
	e.t.Helper()
	var out []api.ParkedCommit
	for _, p := range e.parked() {
		if p.AggregateID == id {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) gauge(want int) {
	e.t.Helper()
	metrics := string(e.must(200, e.call("GET", "/metrics", nil)).Body)
	if !strings.Contains(metrics, fmt.Sprintf(`keel_parked_commits{subscription="%s"} %d`, hostlink.WorkParked, want)) {
		e.t.Fatalf("want keel_parked_commits %d:\n%s", want, grepLines(metrics, "keel_parked"))
	}
}

// A host that cannot record a destroy fails the agent's work again and
// again. The delete is parked in keel serve after a few attempts instead of
// holding up the server's later work on that host: the clean-up that
// follows the forced delete when the host never confirms reaches the agent
// too (and, the host still broken, is parked in turn). Both show in the admin list
// and the gauge; once the host is mended, an operator retries one server's
// commits (the host destroys it) and skips the other's (nothing runs).
func TestParkedReactionLetsLaterCommitsOfItsKeyThrough(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 1
		c.ParkAttempts, c.ParkAfter, c.ParkPoll = 2, time.Millisecond, 50*time.Millisecond
		c.Timeouts = sagas.DefaultTimeouts
		c.Timeouts.Destroy = 2 * time.Second
	})
	e.seed()
	var ids []string
	for _, name := range []string{"a", "b"} {
		acc, _ := e.createServer(name)
		if op := e.waitOp(acc.OperationID, 30*time.Second); op.Status != "succeeded" {
			t.Fatalf("create %s: %+v", name, op)
		}
		ids = append(ids, acc.Server.ID)
	}
	host := e.node.Hosts[0]

	// The host's state file cannot be written: every destroy fails.
	jam := filepath.Join(e.cfg.DataDir, "fake-hosts", host.Name+".json.tmp")
	if err := os.Mkdir(jam, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		a := e.act(id, "delete")
		e.waitOp(a.OperationID, 30*time.Second) // forced when the destroy step times out
	}
	eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			if p := e.parkedOf(id); len(p) != 2 {
				return fmt.Errorf("server %s: parked %+v; want its delete request and its forced delete", id, p)
			}
		}
		return nil
	})
	for _, p := range e.parked() {
		if p.Attempts < 2 || p.State != "parked" || !strings.Contains(p.Reason, "save") {
			t.Fatalf("parked record %+v", p)
		}
	}
	e.gauge(4)
	if n := len(host.Servers()); n != 2 {
		t.Fatalf("host holds %d servers, want both still there", n)
	}

	if err := os.Remove(jam); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.parkedOf(ids[0]) {
		e.must(202, e.call("POST", fmt.Sprintf("/v1/admin/parked/%s/%d/retry", hostlink.WorkParked, p.Sequence), nil))
	}
	for _, p := range e.parkedOf(ids[1]) {
		e.must(200, e.call("POST", fmt.Sprintf("/v1/admin/parked/%s/%d/skip", hostlink.WorkParked, p.Sequence), nil))
		var pj api.Problem
		e.must(404, e.call("POST", fmt.Sprintf("/v1/admin/parked/%s/%d/skip", hostlink.WorkParked, p.Sequence), nil)).json(t, &pj)
		if !strings.Contains(pj.Detail, "GET /v1/admin/parked") {
			t.Fatalf("404 detail: %q", pj.Detail)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if p := e.parked(); len(p) != 0 {
			return fmt.Errorf("still parked: %+v", p)
		}
		if _, ok := host.Servers()[ids[0]]; ok {
			return fmt.Errorf("the retried destroy of %s did not run", ids[0])
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // four polls
	if _, ok := host.Servers()[ids[1]]; !ok {
		t.Fatalf("the skipped destroy of %s ran", ids[1])
	}
	e.gauge(0)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
