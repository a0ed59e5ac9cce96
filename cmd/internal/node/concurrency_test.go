package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/projections"
)

// snapshot reads every read-model table as JSON, in a stable order.
func (e *env) snapshot() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for table, order := range map[string]string{
		"servers": "id", "operations": "id", "operation_steps": "operation_id, idx", "flavors": "id",
		"images": "id", "hosts": "name", "host_claims": "host, server_id", "events": "seq",
	} {
		rows, err := e.node.Pool.Query(context.Background(), fmt.Sprintf(`SELECT to_jsonb(t)::text FROM %s t ORDER BY %s`, table, order))
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				e.t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		rows.Close()
	}
	return out
}

// settle waits until no operation is in progress and projections have no lag.
func (e *env) settle(within time.Duration) {
	e.t.Helper()
	eventually(e.t, within, func() error {
		var open int
		err := e.node.Pool.QueryRow(context.Background(), `SELECT count(*) FROM operations WHERE status NOT IN ('succeeded','failed')`).Scan(&open)
		if err != nil {
			return err
		}
		if open > 0 {
			return fmt.Errorf("%d operations still open", open)
		}
		st, err := e.node.Runner.Statuses(context.Background())
		if err != nil {
			return err
		}
		for _, s := range st {
			if s.Lag > 0 {
				return fmt.Errorf("projection %s lags %d", s.Name, s.Lag)
			}
		}
		return nil
	})
}

func TestConcurrentCreatesAndDeletesAgreeWithARebuild(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 5 })
	e.seed()
	const n = 200
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	created := make(chan api.Accepted, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.call("POST", "/v1/servers", map[string]any{"name": fmt.Sprintf("c-%d", i), "flavor": "small", "image": "tiny"},
				"Keel-Min-Sequence", fmt.Sprint(e.minSeq))
			if r.Status != 202 {
				errs <- fmt.Errorf("create %d: %d %s", i, r.Status, r.Body)
				return
			}
			var a api.Accepted
			if err := json.Unmarshal(r.Body, &a); err != nil {
				errs <- err
				return
			}
			created <- a
			if i%2 == 0 {
				if r := e.call("DELETE", "/v1/servers/"+a.Server.ID, nil); r.Status != 202 {
					errs <- fmt.Errorf("delete %d: %d %s", i, r.Status, r.Body)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	close(created)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("requests answered in %s", time.Since(t0))
	e.settle(60 * time.Second)
	t.Logf("settled in %s", time.Since(t0))

	var servers, active int
	if err := e.node.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status='ACTIVE') FROM servers`).Scan(&servers, &active); err != nil {
		t.Fatal(err)
	}
	if servers != n/2 || active != n/2 {
		t.Fatalf("want %d ACTIVE servers left, got %d servers, %d ACTIVE", n/2, servers, active)
	}
	held := 0
	for _, h := range e.node.Hosts {
		held += len(h.Servers())
	}
	if held != n/2 {
		t.Fatalf("simulated hosts hold %d servers, want %d", held, n/2)
	}

	claims := 0
	for _, h := range e.hosts() {
		claims += h.Servers
	}
	if claims != n/2 {
		t.Fatalf("hosts hold %d claims for %d servers", claims, n/2)
	}
	before := e.snapshot()
	r := e.must(200, e.call("POST", "/v1/projections/all/rebuild", nil))
	var rb struct {
		Items []struct {
			Projection string `json:"projection"`
			Commits    uint64 `json:"commits"`
		} `json:"items"`
	}
	r.json(t, &rb)
	if len(rb.Items) != len(projections.All()) || rb.Items[0].Commits == 0 {
		t.Fatalf("rebuild answered %s", r.Body)
	}
	after := e.snapshot()
	t.Logf("rebuilt in %s", time.Since(t0))
	for table := range before {
		if !reflect.DeepEqual(before[table], after[table]) {
			t.Errorf("table %s differs after rebuild: %d rows before, %d after", table, len(before[table]), len(after[table]))
		}
	}
}
