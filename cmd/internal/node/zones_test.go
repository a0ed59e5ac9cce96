package node_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cmd/internal/node"
)

// Two racing adds of one host into aggregates of two zones, round after
// round: one wins, the other is a 409 naming the zone, and the host is never
// in two zones.
func TestRacingAddsKeepAHostInOneZone(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 1 })
	eventually(t, 10*time.Second, func() error {
		if r := e.call("GET", "/v1/hosts/sim-1", nil); r.Status != 200 {
			return fmt.Errorf("host sim-1: %d", r.Status)
		}
		return nil
	})
	for round := range 15 {
		var seq uint64
		for _, z := range []string{"a", "b"} {
			r := e.must(201, e.call("POST", "/v1/aggregates", map[string]any{"name": fmt.Sprintf("%s-%d", z, round), "availability_zone": "az-" + z}))
			seq = max(seq, r.seq())
		}
		var wg sync.WaitGroup
		rs := make([]resp, 2)
		for i, z := range []string{"a", "b"} {
			wg.Go(func() {
				rs[i] = e.call("POST", fmt.Sprintf("/v1/aggregates/%s-%d/hosts", z, round), map[string]any{"host": "sim-1"}, "Keel-Min-Sequence", fmt.Sprint(seq))
			})
		}
		wg.Wait()
		winner := ""
		for i, z := range []string{"a", "b"} {
			switch rs[i].Status {
			case 200:
				winner = fmt.Sprintf("%s-%d", z, round)
			case 409:
				if !strings.Contains(string(rs[i].Body), "host sim-1 is already in availability zone az-") || !strings.Contains(string(rs[i].Body), "a host is in one zone") {
					t.Fatalf("round %d: %s", round, rs[i].Body)
				}
			default:
				t.Fatalf("round %d: %d %s", round, rs[i].Status, rs[i].Body)
			}
			seq = max(seq, rs[i].seq())
		}
		var zones struct {
			Items []struct {
				Name  string   `json:"name"`
				Hosts []string `json:"hosts"`
			} `json:"items"`
		}
		e.must(200, e.call("GET", "/v1/availability-zones", nil, "Keel-Min-Sequence", fmt.Sprint(seq))).json(t, &zones)
		var in []string
		for _, z := range zones.Items {
			for _, h := range z.Hosts {
				if h == "sim-1" {
					in = append(in, z.Name)
				}
			}
		}
		if rs[0].Status == rs[1].Status || len(in) != 1 || winner == "" {
			t.Fatalf("round %d: answers %d and %d; sim-1 in zones %v", round, rs[0].Status, rs[1].Status, in)
		}
		e.must(200, e.call("DELETE", "/v1/aggregates/"+winner+"/hosts/sim-1", nil))
	}
}

// Partial updates merge on the server; If-Match takes the version a GET
// answers in ETag, and a stale one is a 412 naming the current version.
func TestIfMatchOnHostAndAggregateUpdates(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 1 })
	var r resp
	eventually(t, 10*time.Second, func() error {
		if r = e.call("GET", "/v1/hosts/sim-1", nil); r.Status != 200 {
			return fmt.Errorf("host sim-1: %d", r.Status)
		}
		return nil
	})
	var h struct {
		Version int64              `json:"version"`
		Ratios  map[string]float64 `json:"overcommit"`
	}
	r.json(t, &h)
	if tag := r.Header.Get("ETag"); h.Version < 1 || tag != fmt.Sprintf(`"%d"`, h.Version) {
		t.Fatalf("ETag %q, version %d", tag, h.Version)
	}
	v := fmt.Sprintf(`"%d"`, h.Version)
	r = e.must(200, e.call("PATCH", "/v1/hosts/sim-1/overcommit", map[string]any{"ram": 1.5}, "If-Match", v))
	r.json(t, &h)
	if h.Ratios["cpu"] != 4 || h.Ratios["ram"] != 1.5 || r.Header.Get("ETag") != fmt.Sprintf(`"%d"`, h.Version) {
		t.Fatalf("after a ram-only change: %s (ETag %s)", r.Body, r.Header.Get("ETag"))
	}
	// A client still holding the first version is refused; nothing changes.
	r = e.must(412, e.call("PATCH", "/v1/hosts/sim-1/overcommit", map[string]any{"cpu": 8}, "If-Match", v))
	if want := fmt.Sprintf("is now at version %d, not %s", h.Version, strings.Trim(v, `"`)); !strings.Contains(string(r.Body), want) {
		t.Fatalf("412 body %s, want %q", r.Body, want)
	}
	e.must(412, e.call("PATCH", "/v1/hosts/sim-1/overcommit", map[string]any{"cpu": 8}, "If-Match", "banana"))
	// Without a precondition (and through the old PUT), a partial change merges.
	r = e.must(200, e.call("PUT", "/v1/hosts/sim-1/overcommit", map[string]any{"cpu": 8}))
	r.json(t, &h)
	if h.Ratios["cpu"] != 8 || h.Ratios["ram"] != 1.5 || h.Ratios["disk"] != 1 {
		t.Fatalf("after a cpu-only change: %s", r.Body)
	}
	e.must(422, e.call("PATCH", "/v1/hosts/sim-1/overcommit", map[string]any{}))

	r = e.must(201, e.call("POST", "/v1/aggregates", map[string]any{"name": "rack", "metadata": map[string]string{"ssd": "true"}}))
	tag := r.Header.Get("ETag")
	r = e.must(200, e.call("GET", "/v1/aggregates/rack", nil, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	if r.Header.Get("ETag") != tag || tag != `"1"` {
		t.Fatalf("aggregate ETag %q after create, %q on GET", tag, r.Header.Get("ETag"))
	}
	e.must(200, e.call("PUT", "/v1/aggregates/rack/metadata", map[string]any{"metadata": map[string]string{"gpu": "a100"}}, "If-Match", tag))
	r = e.must(412, e.call("PUT", "/v1/aggregates/rack/metadata", map[string]any{"metadata": map[string]string{"ssd": ""}}, "If-Match", tag))
	if !strings.Contains(string(r.Body), "is now at version 2, not 1") {
		t.Fatalf("412 body %s", r.Body)
	}
	// A zone does not change under hosts.
	e.must(200, e.call("POST", "/v1/aggregates/rack/hosts", map[string]any{"host": "sim-1"}))
	r = e.must(409, e.call("PUT", "/v1/aggregates/rack/metadata", map[string]any{"metadata": map[string]string{"availability_zone": "az1"}}))
	if !strings.Contains(string(r.Body), "remove them before changing its availability zone") {
		t.Fatalf("zone change with hosts: %s", r.Body)
	}
}
