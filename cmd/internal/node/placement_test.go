package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/sagas"
)

// 1,000 concurrent creates onto 100 hosts that fit 800 servers: exactly 800
// become ACTIVE, 200 end in ERROR saying no valid host, no host goes over
// capacity, and no claim is left for a server that is not on that host.
func TestThousandCreatesOnAHundredHostsNeverDoubleBook(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 creates")
	}
	const hosts, perHost, creates = 100, 8, 1000
	e := start(t, func(c *node.Config) {
		c.FakeHosts = hosts
		// 8 servers of 512 MiB each fill a host's RAM; CPU and disk have room.
		c.HostVCPUs, c.HostRAMMiB, c.HostDiskGiB = 32, perHost*512, 1000
		// "No valid host" is said once the read model has caught up with
		// 1,000 creates; on a loaded 2-core machine that can take longer
		// than the default 30 s, which is not what this test is about.
		c.Timeouts = sagas.DefaultTimeouts
		c.Timeouts.Schedule = 2 * time.Minute
	})
	e.seed()
	var wg sync.WaitGroup
	ops := make(chan string, creates)
	sem := make(chan struct{}, 64)
	for i := 0; i < creates; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := e.call("POST", "/v1/servers", map[string]any{"name": fmt.Sprintf("p-%d", i), "flavor": "small", "image": "tiny"},
				"Keel-Min-Sequence", fmt.Sprint(e.minSeq))
			if r.Status != 202 {
				t.Errorf("create %d: %d %s", i, r.Status, r.Body)
				return
			}
			var a api.Accepted
			if err := json.Unmarshal(r.Body, &a); err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
			ops <- a.OperationID
		}(i)
	}
	wg.Wait()
	close(ops)
	if t.Failed() {
		t.FailNow()
	}
	e.settle(3 * time.Minute)

	ctx := context.Background()
	var active, errored, noHost int
	err := e.node.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status='ACTIVE'), count(*) FILTER (WHERE status='ERROR'),
		count(*) FILTER (WHERE status='ERROR' AND reason LIKE 'no valid host%') FROM servers`).Scan(&active, &errored, &noHost)
	if err != nil {
		t.Fatal(err)
	}
	if active != hosts*perHost || errored != creates-hosts*perHost || noHost != errored {
		var reasons []string
		rows, _ := e.node.Pool.Query(ctx, `SELECT DISTINCT reason FROM servers WHERE status='ERROR' LIMIT 5`)
		for rows.Next() {
			var r string
			_ = rows.Scan(&r)
			reasons = append(reasons, r)
		}
		rows.Close()
		t.Fatalf("want %d ACTIVE and %d ERROR (no valid host), got %d ACTIVE, %d ERROR (%d no valid host): %s",
			hosts*perHost, creates-hosts*perHost, active, errored, noHost, strings.Join(reasons, " | "))
	}
	for _, h := range e.hosts() {
		if h.Used.RAMMiB > h.Total.RAMMiB || h.Servers > perHost {
			t.Errorf("host %s is over capacity: %d/%d MiB, %d servers", h.Name, h.Used.RAMMiB, h.Total.RAMMiB, h.Servers)
		}
	}
	var stray int
	err = e.node.Pool.QueryRow(ctx, `SELECT count(*) FROM host_claims c LEFT JOIN servers s ON s.id = c.server_id
		WHERE s.id IS NULL OR s.host IS DISTINCT FROM c.host`).Scan(&stray)
	if err != nil {
		t.Fatal(err)
	}
	if stray != 0 {
		t.Fatalf("%d claims are held for servers that are not on that host", stray)
	}
	// The simulated hypervisors agree with the read model.
	held := 0
	for _, h := range e.node.Hosts {
		held += len(h.Servers())
	}
	if held != active {
		t.Fatalf("simulated hosts run %d servers, the read model says %d are ACTIVE", held, active)
	}
}

func TestDisabledHostTakesNoNewServersAndBusyHostCannotBeRemoved(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 2 })
	e.seed()
	r := e.must(200, e.call("POST", "/v1/hosts/sim-1/disable", map[string]any{"reason": "bad fan"}))
	var h api.Host
	r.json(t, &h)
	if h.Status != "disabled" {
		t.Fatalf("after disable: %+v", h)
	}
	// At once: every new server lands on sim-2, even with a stale snapshot,
	// because the host itself refuses the claim.
	for i := 0; i < 4; i++ {
		acc, _ := e.createServer(fmt.Sprintf("d-%d", i))
		if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
			t.Fatalf("create: %+v", op)
		}
		if s, _ := e.server(acc.Server.ID); s.Host == nil || *s.Host != "sim-2" {
			t.Fatalf("server placed on a disabled host: %+v", s)
		}
	}
	r = e.must(409, e.call("DELETE", "/v1/hosts/sim-2", nil))
	if !strings.Contains(string(r.Body), "still holds 4 server(s)") {
		t.Fatalf("delete of a busy host: %s", r.Body)
	}
	e.must(200, e.call("POST", "/v1/hosts/sim-1/enable", nil))
	// sim-1 is empty: it can leave the fleet.
	r = e.must(204, e.call("DELETE", "/v1/hosts/sim-1", nil))
	e.must(404, e.call("GET", "/v1/hosts/sim-1", nil, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
}

// createGroupMembers creates n servers in a group at once and waits for
// every build to end; it returns the hosts of the ACTIVE ones and the
// reasons of the failed ones.
func (e *env) createGroupMembers(group string, n int) (map[string]int, []string) {
	e.t.Helper()
	var wg sync.WaitGroup
	accs := make([]api.Accepted, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.call("POST", "/v1/servers", map[string]any{"name": fmt.Sprintf("%s-%d", group, i), "flavor": "small", "image": "tiny",
				"server_group": group}, "Keel-Min-Sequence", fmt.Sprint(e.minSeq))
			if r.Status != 202 {
				e.t.Errorf("create %d: %d %s", i, r.Status, r.Body)
				return
			}
			if err := json.Unmarshal(r.Body, &accs[i]); err != nil {
				e.t.Errorf("create %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	hosts, failures := map[string]int{}, []string{}
	for _, a := range accs {
		e.waitOp(a.OperationID, 60*time.Second)
		s, _ := e.server(a.Server.ID)
		switch {
		case s.Status == "ACTIVE" && s.Host != nil:
			hosts[*s.Host]++
		case s.Status == "ERROR" && s.Reason != nil:
			failures = append(failures, *s.Reason)
		default:
			e.t.Fatalf("server ended %+v", s)
		}
	}
	return hosts, failures
}

func TestAntiAffinityGroupsHoldUnderParallelCreates(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 8 })
	e.seed()
	r := e.must(201, e.call("POST", "/v1/server-groups", map[string]any{"name": "hard", "policy": "anti-affinity"}))
	r2 := e.must(201, e.call("POST", "/v1/server-groups", map[string]any{"name": "soft", "policy": "soft-anti-affinity"}))
	e.minSeq = max(r.seq(), r2.seq())

	hosts, failures := e.createGroupMembers("hard", 10)
	if len(hosts) != 8 || len(failures) != 2 {
		t.Fatalf("hard anti-affinity: %d hosts used (%v), %d failures %v", len(hosts), hosts, len(failures), failures)
	}
	for h, n := range hosts {
		if n != 1 {
			t.Fatalf("hard anti-affinity put %d members on %s", n, h)
		}
	}
	for _, f := range failures {
		if !strings.Contains(f, "no valid host") || !strings.Contains(f, "server_group") {
			t.Fatalf("failure reason does not say why: %q", f)
		}
	}

	hosts, failures = e.createGroupMembers("soft", 10)
	if len(failures) != 0 || len(hosts) != 8 {
		t.Fatalf("soft anti-affinity: hosts %v, failures %v", hosts, failures)
	}
	for h, n := range hosts {
		if n > 2 {
			t.Fatalf("soft anti-affinity put %d members on %s while others had room: %v", n, h, hosts)
		}
	}
}

func TestAvailabilityZonesAggregatesAndExtraSpecs(t *testing.T) {
	e := start(t, nil) // sim-1, sim-2, sim-3
	e.seed()
	r := e.must(201, e.call("POST", "/v1/aggregates", map[string]any{"name": "rack-a", "availability_zone": "az1", "metadata": map[string]string{"ssd": "true"}}))
	r = e.must(200, e.call("POST", "/v1/aggregates/rack-a/hosts", map[string]any{"host": "sim-2"}, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	r = e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "fast", "vcpus": 1, "ram_mib": 256, "extra_specs": map[string]string{"aggregate:ssd": "true"}},
		"Keel-Min-Sequence", fmt.Sprint(r.seq())))
	e.minSeq = r.seq()

	var zones struct {
		Items []struct {
			Name  string   `json:"name"`
			Hosts []string `json:"hosts"`
		} `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/availability-zones", nil, "Keel-Min-Sequence", fmt.Sprint(e.minSeq))).json(t, &zones)
	if got := fmt.Sprint(zones.Items); got != "[{az1 [sim-2]} {default [sim-1 sim-3]}]" {
		t.Fatalf("zones: %s", got)
	}
	place := func(body map[string]any) api.Server {
		t.Helper()
		body["image"] = "tiny"
		if body["flavor"] == nil {
			body["flavor"] = "small"
		}
		var a api.Accepted
		e.must(202, e.call("POST", "/v1/servers", body, "Keel-Min-Sequence", fmt.Sprint(e.minSeq))).json(t, &a)
		e.waitOp(a.OperationID, 20*time.Second)
		s, _ := e.server(a.Server.ID)
		return s
	}
	for i := 0; i < 3; i++ {
		if s := place(map[string]any{"name": "in-az1", "availability_zone": "az1"}); s.Host == nil || *s.Host != "sim-2" {
			t.Fatalf("availability zone az1: %+v", s)
		}
		if s := place(map[string]any{"name": "ssd", "flavor": "fast"}); s.Host == nil || *s.Host != "sim-2" {
			t.Fatalf("aggregate extra spec: %+v", s)
		}
	}
	r = e.must(422, e.call("POST", "/v1/servers", map[string]any{"name": "lost", "flavor": "small", "image": "tiny", "availability_zone": "az9"}))
	if !strings.Contains(string(r.Body), "availability zone az9 does not exist") {
		t.Fatalf("unknown zone: %s", r.Body)
	}
	// A zone whose hosts cannot take the server says so.
	e.must(200, e.call("POST", "/v1/hosts/sim-2/disable", nil))
	s := place(map[string]any{"name": "stuck", "availability_zone": "az1"})
	if s.Status != "ERROR" || s.Reason == nil || !strings.Contains(*s.Reason, "availability_zone removed 2") || !strings.Contains(*s.Reason, "enabled removed 1") {
		t.Fatalf("zone with its only host disabled: %+v", s)
	}
	// Names of aggregates and groups are unique too; a removed host leaves its aggregates.
	e.must(409, e.call("POST", "/v1/aggregates", map[string]any{"name": "rack-a"}))
	e.must(201, e.call("POST", "/v1/aggregates", map[string]any{"name": "rack-z", "availability_zone": "az2"}))
	e.must(200, e.call("POST", "/v1/hosts/sim-2/enable", nil))
	r = e.must(422, e.call("POST", "/v1/flavors", map[string]any{"name": "odd", "vcpus": 1, "ram_mib": 1, "extra_specs": map[string]string{"color": "blue"}}))
	if !strings.Contains(string(r.Body), "unknown extra spec") {
		t.Fatalf("bad extra spec: %s", r.Body)
	}
	e.must(409, e.call("DELETE", "/v1/aggregates/rack-a", nil))
	r = e.must(409, e.call("POST", "/v1/aggregates/rack-z/hosts", map[string]any{"host": "sim-2"}))
	if !strings.Contains(string(r.Body), "already in availability zone az1") {
		t.Fatalf("second zone: %s", r.Body)
	}
	e.must(200, e.call("POST", "/v1/aggregates/rack-z/hosts", map[string]any{"host": "sim-3"}))
	r = e.must(204, e.call("DELETE", "/v1/hosts/sim-3", nil))
	e.must(204, e.call("DELETE", "/v1/aggregates/rack-z", nil, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
}

// A claim that no server uses (its saga died between claiming and
// recording the host) is released after the grace period.
func TestOrphanedClaimIsReleased(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 1; c.OrphanGrace = 300 * time.Millisecond })
	e.seed()
	acc, _ := e.createServer("real")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	ghost := commands.NewID()
	res, err := e.node.App.Hosts.Handle(context.Background(), commands.HostID("sim-1"),
		host.Claim{Server: ghost, Resources: host.Resources{VCPUs: 1, RAMMiB: 512}, At: time.Now()}, commands.Meta{CommandID: commands.NewID()})
	if err != nil {
		t.Fatal(err)
	}
	var released struct {
		Items []json.RawMessage `json:"items"`
	}
	eventually(t, 10*time.Second, func() error {
		e.must(200, e.call("GET", fmt.Sprintf("/v1/events?type=host.released&since=%d", res.Seq), nil)).json(t, &released)
		if len(released.Items) != 1 {
			return fmt.Errorf("%d releases", len(released.Items))
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		h := e.hosts()[0]
		if h.Servers != 1 || h.Used.RAMMiB != 512 {
			return fmt.Errorf("sim-1 holds %d claims, %d MiB", h.Servers, h.Used.RAMMiB)
		}
		return nil
	})
	// The real server's claim stays.
	if s, _ := e.server(acc.Server.ID); s.Status != "ACTIVE" {
		t.Fatalf("server: %+v", s)
	}
}
