package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/billing"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// usagePrices make a second of a small server cost 0.01.
var usagePrices = billing.Prices{Currency: "EUR", Flavors: map[string]float64{"small": 36}}

// A project's usage shows each of its servers once, with the time it ran
// to the second (a stopped one up to its stop, a running one up to the end
// of the window) and its cost from the price table; another project's
// member sees their own, empty, usage and cannot name this project.
func TestUsageShowsEachServersRunningTime(t *testing.T) {
	e := start(t, func(c *node.Config) { c.Prices = usagePrices })
	ctx := context.Background()
	e.seed()
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "public-tiny", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	e.minSeq = e.upload(pub.ID, []byte("public bytes"), res.Sequence)
	e.addProject("alpha")
	e.addProject("beta")
	alice, bob := e.addUser("alice", "alpha", "member"), e.addUser("bob", "beta", "member")

	ids := map[string]string{}
	for _, name := range []string{"web-1", "web-2"} {
		acc, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: name, Flavor: "small", Image: "public-tiny"}, api.Opts{MinSequence: e.minSeq})
		if err != nil {
			t.Fatalf("alice creates %s: %v", name, err)
		}
		if op := e.waitOp(acc.OperationID, 30*time.Second); op.Status != "succeeded" {
			t.Fatalf("create %s: %s", name, op.Status)
		}
		ids[name] = acc.Server.ID
	}
	// While they run, their usage grows: a running server counts up to now.
	eventually(t, 30*time.Second, func() error {
		u, _, err := api.GetUsage(ctx, alice.c, api.UsageQuery{}, api.Opts{})
		if err != nil {
			return err
		}
		if len(u.Lines) != 2 || u.Lines[0].Seconds < 2 {
			return fmt.Errorf("usage so far: %+v", u.Lines)
		}
		return nil
	})
	var stop api.Accepted
	if _, err := alice.c.Do(ctx, api.Request{Method: http.MethodPost, Path: api.Path(api.Servers, ids["web-1"], "stop")}, &stop); err != nil {
		t.Fatalf("alice stops web-1: %v", err)
	}
	// The operation ends after the server's stop, in the same read model.
	if op := e.waitOp(stop.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("stop web-1: %s", op.Status)
	}

	to := time.Now().UTC()
	window := api.UsageQuery{From: to.Add(-time.Hour), To: to}
	u, _, err := api.GetUsage(ctx, alice.c, window, api.Opts{})
	if err != nil {
		t.Fatalf("alice's usage: %v", err)
	}
	if u.ProjectID != alice.project || u.Currency != "EUR" || !u.From.Equal(window.From) || !u.To.Equal(to) {
		t.Errorf("usage of project %s %s, %v to %v; want alice's project %s in EUR, %v to %v", u.ProjectID, u.Currency, u.From, u.To, alice.project, window.From, to)
	}
	web1Ran := e.eventAt(ids["web-1"], "server.stopped").Sub(e.eventAt(ids["web-1"], "server.spawned"))
	web2Ran := to.Sub(e.eventAt(ids["web-2"], "server.spawned"))
	want := map[string]int64{ids["web-1"]: int64(math.Round(web1Ran.Seconds())), ids["web-2"]: int64(math.Round(web2Ran.Seconds()))}
	got := map[string]int64{}
	var hours float64
	for _, l := range u.Lines {
		if _, twice := got[l.ResourceID]; twice {
			t.Errorf("server %s has two lines", l.ResourceID)
		}
		got[l.ResourceID] = l.Seconds
		if l.Flavor.Name != "small" || l.Cost != math.Round(float64(l.Seconds)*0.01*1e6)/1e6 {
			t.Errorf("line %+v: want flavor small at 0.01 a second", l)
		}
		hours += l.Hours
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("seconds by server %v; want %v (web-1 from spawned to stopped, web-2 from spawned to the end of the window)", got, want)
	}
	if math.Abs(u.Totals.ServerHours-hours) > 1e-6 || len(u.Lines) != 2 || u.Lines[0].Name != "web-1" {
		t.Errorf("totals %+v over lines %+v; want the sum of two lines, web-1 first", u.Totals, u.Lines)
	}

	// A cloud admin reads alpha's usage by name; bob reads beta's, empty,
	// and alpha's is not found for him.
	if admin, _, err := api.GetUsage(ctx, e.api, api.UsageQuery{Project: "alpha", From: window.From, To: to}, api.Opts{}); err != nil || !reflect.DeepEqual(admin, u) {
		t.Errorf("the admin's view of alpha: %+v, %v; want alice's %+v", admin, err, u)
	}
	theirs, _, err := api.GetUsage(ctx, bob.c, window, api.Opts{})
	if err != nil || theirs.ProjectID != bob.project || len(theirs.Lines) != 0 || theirs.Totals != (api.UsageTotals{}) {
		t.Errorf("bob's usage: %+v, %v; want beta's, empty", theirs, err)
	}
	for _, ref := range []string{"alpha", alice.project} {
		if _, res, err := api.GetUsage(ctx, bob.c, api.UsageQuery{Project: ref}, api.Opts{}); status(res, err) != http.StatusNotFound {
			t.Errorf("bob naming project %s: %d %v; want 404", ref, status(res, err), err)
		}
	}
	// Windows that cannot be answered are the caller's mistake.
	for _, q := range []url.Values{{"from": {"yesterday"}}, {"from": {to.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}},
		{"from": {"2020-01-01"}, "to": {"2022-01-01"}}} {
		_, res, err := api.Get[api.Usage](ctx, alice.c, api.UsagePath, api.Opts{Query: q})
		if status(res, err) != http.StatusBadRequest {
			t.Errorf("usage %v: %d %v; want 400", q, status(res, err), err)
		}
	}
}

// eventAt is the time (data "at") of server id's first event of type typ.
func (e *env) eventAt(id, typ string) time.Time {
	e.t.Helper()
	page, _, err := api.Get[api.EventPage](context.Background(), e.api, api.Events, api.Opts{Query: url.Values{"aggregate_id": {id}, "limit": {"1000"}, "all_projects": {"true"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range page.Items {
		for _, ev := range c.Events {
			if ev.Type != typ {
				continue
			}
			var d struct {
				At time.Time `json:"at"`
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				e.t.Fatal(err)
			}
			return d.At
		}
	}
	e.t.Fatalf("server %s has no %s", id, typ)
	return time.Time{}
}

// Killing keel serve while servers are being built neither loses nor
// doubles a running interval: after the restart each server that was
// spawned has exactly one, and a rebuild of the usage projection from the
// log gives the same bill.
func TestUsageSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a keel serve process")
	}
	bin := buildKeel(t)
	dataDir, dbURL, addr := t.TempDir(), pgtest.NewDatabase(t), freeAddr(t)
	prices := filepath.Join(t.TempDir(), "prices.json")
	raw, _ := json.Marshal(usagePrices)
	if err := os.WriteFile(prices, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	p := serve(t, bin, dataDir, dbURL, addr, "--prices", prices)
	defer func() {
		if t.Failed() {
			t.Logf("keel serve output:\n%s", p.log.String())
		}
	}()
	minSeq := "Keel-Min-Sequence: " + fmt.Sprint(seedOver(t, p.client()))
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	for i := 0; i < 120; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 2 * time.Millisecond)
			code, _, err := post(p.url+"/v1/servers", map[string]any{"name": fmt.Sprintf("u-%d", i), "flavor": "small", "image": "tiny"}, minSeq, p.auth())
			if err == nil && code == http.StatusAccepted {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}(i)
	}
	p.killAfter(t, 30*time.Second, &mu, 30, func() int { return acked })
	wg.Wait()
	t.Logf("%d creates acknowledged before kill -9", acked)

	p = serve(t, bin, dataDir, dbURL, addr, "--prices", prices)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	count := func(sql string) int {
		var n int
		if err := db.QueryRow(context.Background(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, 90*time.Second, func() error {
		if n := count(`SELECT count(*) FROM operations WHERE status NOT IN ('succeeded','failed')`); n > 0 {
			return fmt.Errorf("%d operations still open", n)
		}
		return nil
	})
	// Operations end after their servers' commits, in the same read
	// model: usage has seen every spawn. A window ending now counts the
	// open intervals up to its end, whenever it is asked.
	ctx := context.Background()
	to := time.Now().UTC()
	window := api.UsageQuery{From: to.Add(-time.Hour), To: to}
	before, _, err := api.GetUsage(ctx, p.client(), window, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	spawned := count(`SELECT count(*) FROM events WHERE 'server.spawned' = ANY(types)`)
	if spawned == 0 || len(before.Lines) != spawned {
		t.Errorf("%d lines for %d servers spawned; want one each", len(before.Lines), spawned)
	}
	seen := map[string]bool{}
	for _, l := range before.Lines {
		if seen[l.ResourceID] {
			t.Errorf("server %s has two lines", l.ResourceID)
		}
		seen[l.ResourceID] = true
	}
	if n := count(`SELECT count(*) FROM (SELECT resource_id FROM usage_intervals GROUP BY resource_id HAVING count(*) <> 1) x`); n != 0 {
		t.Errorf("%d servers have other than one running interval; none was stopped", n)
	}
	if _, err := p.client().Do(ctx, api.Request{Method: http.MethodPost, Path: "/v1/projections/usage/rebuild"}, nil); err != nil {
		t.Fatalf("rebuild usage: %v", err)
	}
	after, _, err := api.GetUsage(ctx, p.client(), window, api.Opts{})
	if err != nil || !reflect.DeepEqual(after, before) {
		t.Errorf("after a rebuild from the log: %+v, %v\nwant the same bill %+v", after.Totals, err, before.Totals)
	}
}
