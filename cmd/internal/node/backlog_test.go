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
)

// New servers meet a 503 with Retry-After while too many are still being
// built, and the refused request writes nothing; once the builds are done,
// creates are accepted again.
func TestCreatesWaitWhileTheBacklogIsFull(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.MaxBusy = 2
		c.FakeKnobs = fake.Knobs{Latency: 1500 * time.Millisecond}
	})
	e.seed()
	var accepted []api.Accepted
	var refused resp
	eventually(t, 10*time.Second, func() error {
		r := e.call("POST", "/v1/servers", map[string]any{"name": "burst", "flavor": "small", "image": "tiny"})
		switch r.Status {
		case 202:
			var a api.Accepted
			r.json(t, &a)
			accepted = append(accepted, a)
			return fmt.Errorf("accepted %d so far", len(accepted))
		case 503:
			refused = r
			return nil
		}
		t.Fatalf("create: %d %s", r.Status, r.Body)
		return nil
	})
	if len(accepted) < 2 || refused.Header.Get("Retry-After") == "" || refused.Header.Get("Keel-Sequence") != "" ||
		!strings.Contains(string(refused.Body), "servers are being built or changed (limit 2)") {
		t.Fatalf("after %d accepted, the refusal was %v %s", len(accepted), refused.Header, refused.Body)
	}
	head, _ := e.node.Store.LastSequence(context.Background())
	var list struct {
		Items []api.Server `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/servers", nil, "Keel-Min-Sequence", fmt.Sprint(head))).json(t, &list)
	if len(list.Items) != len(accepted) {
		t.Fatalf("%d servers exist, %d were accepted", len(list.Items), len(accepted))
	}
	for _, a := range accepted {
		if op := e.waitOp(a.OperationID, 20*time.Second); op.Status != "succeeded" {
			t.Fatalf("build: %+v", op)
		}
	}
	eventually(t, 5*time.Second, func() error {
		if r := e.call("POST", "/v1/servers", map[string]any{"name": "later", "flavor": "small", "image": "tiny"}); r.Status != 202 {
			return fmt.Errorf("create after the backlog drained: %d %s", r.Status, r.Body)
		}
		return nil
	})
}
