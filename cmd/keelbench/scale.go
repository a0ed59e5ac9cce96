package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
)

// runScale writes the log of a large cloud through the real command
// handlers (hosts, then servers built on them), starts `keel serve` on it
// as a separate process with a fresh database, and measures its catch-up,
// its memory, and the server list at that size against the same queries
// straight on Postgres.
func runScale(ctx context.Context, e *benchEnv, res *results) error {
	hosts, servers := e.cfg.ScaleHosts, e.cfg.ScaleServers
	bin := filepath.Join(e.dir, "keel")
	logf("  building bin/keel into %s", bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/keel").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/keel: %w: %s", err, out)
	}
	dataDir := filepath.Join(e.dir, "scale")
	emb, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: filepath.Join(dataDir, "jetstream"), SyncAlways: true})
	if err != nil {
		return err
	}
	store, err := keeljs.Open(ctx, emb.Conn, 1, 0)
	if err != nil {
		emb.Close()
		return err
	}
	g := &gen{app: newApp(store), tag: "scale", hosts: hosts}
	start := time.Now()
	err = parallel(ctx, e.cfg.Writers, hosts, func(ctx context.Context, i int) error { return registerHost(ctx, g, i) })
	if err == nil {
		took := time.Since(start)
		logf("  %d hosts registered by %d writers in %s (%.0f/s)", hosts, e.cfg.Writers, took.Round(time.Millisecond), float64(hosts)/took.Seconds())
		start = time.Now()
		err = parallel(ctx, e.cfg.Writers, servers, func(ctx context.Context, i int) error {
			for _, s := range g.placedSteps(i) {
				if _, err := s(ctx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	head, err2 := store.LastSequence(ctx)
	emb.Close()
	if err != nil || err2 != nil {
		return fmt.Errorf("seed: %w %v", err, err2)
	}
	took := time.Since(start)
	logf("  %d servers (4 commits each) written in %s (%.0f commits/s); the log has %d commits", servers, took.Round(time.Millisecond),
		float64(g.commits.Load()-int64(hosts))/took.Seconds(), head)

	dbURL, pool, err := e.database(ctx, "bench_scale")
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--listen", addr, "--fake-hosts", "0", "--rate-limit", "-1", "--project-operations", "-1")
	cmd.Env = append(os.Environ(), "KEEL_DATABASE_URL="+dbURL, "KEEL_ADMIN_PASSWORD="+adminPassword)
	logFile, err := os.Create(filepath.Join(e.dir, "scale-serve.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer stopProcess(cmd)
	// keel serve answers once it has started: log in as soon as it does.
	var c *client
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if c, err = newClient(ctx, "http://"+addr, 4); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (log: %s)", err, logFile.Name())
		}
	}
	lagZero, err := waitCaughtUp(ctx, c, start, 10*time.Minute)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	logf("  keel serve (pid %d) caught up with the log in %s (%.0f commits/s); %s", cmd.Process.Pid, lagZero.Round(time.Millisecond),
		float64(head)/lagZero.Seconds(), cpuOf(cmd.Process.Pid))
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM servers`).Scan(&rows); err != nil {
		return err
	}
	var head2 uint64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(seq),0) FROM events`).Scan(&head2); err == nil && head2 > head {
		logf("  keel serve itself appended %d commits while catching up (its saga reacting to the seeded servers, or liveness)", head2-head)
	}
	rss, err := vmRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	logf("  %d servers in the read model; keel serve VmRSS %.0f MiB", rows, rss)
	suffix := fmt.Sprintf("%dk_hosts_%dk_servers", hosts/1000, servers/1000)
	if servers < 1000 || hosts < 1000 {
		suffix = fmt.Sprintf("%d_hosts_%d_servers", hosts, servers)
	}
	res.add("serve_rss_mib_"+suffix, rss, "MiB", 0, none)
	res.add("serve_catchup_s_"+suffix, lagZero.Seconds(), "s", 1, none)
	return listFigures(ctx, c, pool, servers, res)
}

// placedSteps are the commits of a server built on its host: created,
// the host's claim, scheduled and spawned.
func (g *gen) placedSteps(i int) []step {
	id, h, now := g.serverID(i), g.host(i), time.Now().UTC()
	op := commands.DeriveID(id, "create")
	return []step{
		g.srv(id, op, "create", server.Create{ID: server.ID(id), Name: "scale-" + strconv.Itoa(i), Flavor: benchFlavor,
			ImageID: benchImage, Operation: op, At: now}),
		g.claim(op, 0, h, id),
		g.srv(id, op, "schedule", server.Schedule{Host: h, Operation: op, At: now}),
		g.srv(id, op, "spawned", server.Report{Host: h, Kind: server.ReportSpawned, At: now}),
	}
}

func registerHost(ctx context.Context, g *gen, i int) error {
	name := g.host(i)
	spec := host.Spec{Name: name, Driver: "fake", VCPUs: 64, RAMMiB: 256 * 1024, DiskGiB: 4000}
	meta := commands.Meta{CommandID: "register/" + name, Actor: domain.Actor{User: "agent"}}
	r, err := g.app.Hosts.Handle(ctx, commands.HostID(name), host.Register{ID: commands.HostID(name), Spec: spec, At: time.Now().UTC()}, meta)
	_, err = g.count(r.Seq, r.Duplicate, err, "register host "+name)
	return err
}

// parallel runs f(0..n-1) on workers goroutines; it stops at the first error.
func parallel(ctx context.Context, workers, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitCaughtUp polls /v1/projections until every projection lags 0 behind
// a non-empty stream; it returns the time since start.
func waitCaughtUp(ctx context.Context, c *client, start time.Time, limit time.Duration) (time.Duration, error) {
	var last string
	for ctx.Err() == nil && time.Since(start) < limit {
		out, _, err := api.Get[api.ProjectionList](ctx, c.api, api.Projections, api.Opts{})
		if err != nil {
			last = err.Error()
		} else {
			done := len(out.Items) > 0
			parts := []string{}
			for _, it := range out.Items {
				done = done && it.Lag == 0 && it.Sequence > 0
				parts = append(parts, fmt.Sprintf("%s lag %d", it.Name, it.Lag))
			}
			if done {
				return time.Since(start), nil
			}
			last = strings.Join(parts, ", ")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("keel serve did not catch up within %s: %s", limit, last)
}

func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuOf reads the user+system CPU time a process used so far.
func cpuOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return ""
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return fmt.Sprintf("it used %.1f s of CPU", (u+k)/100)
}

// listFigures times the first page and a deep page of GET /v1/servers, and
// the same keyset queries straight on Postgres.
func listFigures(ctx context.Context, c *client, pool *pgxpool.Pool, servers int, res *results) error {
	type page = api.List[json.RawMessage]
	get := func(path string) (page, time.Duration, error) {
		t0 := time.Now()
		p, _, err := api.Get[page](ctx, c.api, path, api.Opts{})
		return p, time.Since(t0), err
	}
	median := func(f func() (time.Duration, error)) (time.Duration, error) {
		var ds []time.Duration
		for range 7 {
			d, err := f()
			if err != nil {
				return 0, err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], nil
	}
	const cols = `SELECT id::text, name, status, reason, desired, power, task, host, flavor, image_id::text, operation_id::text, version, created_at, updated_at FROM servers`
	raw := func(q string, args ...any) (time.Duration, error) {
		t0 := time.Now()
		rows, err := pool.Query(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		n := 0
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				return 0, err
			}
			n++
		}
		rows.Close()
		return time.Since(t0), rows.Err()
	}
	first, err := median(func() (time.Duration, error) { _, d, err := get("/v1/servers?limit=50"); return d, err })
	if err != nil {
		return err
	}
	firstRaw, err := median(func() (time.Duration, error) { return raw(cols + ` ORDER BY created_at, id LIMIT 51`) })
	if err != nil {
		return err
	}
	logf("  first page (limit 50): API %s, raw pgx %s", first.Round(10*time.Microsecond), firstRaw.Round(10*time.Microsecond))
	res.add("list_servers_first_page_ms", ms(first), "ms", 2, ms(first)/ms(firstRaw))

	pages := max(1, min(1000, servers/100-1))
	cursor := ""
	walk := time.Now()
	var walked time.Duration
	for i := 1; i < pages; i++ {
		p, d, err := get("/v1/servers?limit=100&cursor=" + url.QueryEscape(cursor))
		if err != nil {
			return err
		}
		walked += d
		if p.NextCursor == "" {
			pages = i + 1
			break
		}
		cursor = p.NextCursor
	}
	logf("  walked %d pages of 100 in %s (mean %s per page)", pages-1, time.Since(walk).Round(time.Millisecond),
		(walked / time.Duration(max(pages-1, 1))).Round(10*time.Microsecond))
	deep, err := median(func() (time.Duration, error) {
		_, d, err := get("/v1/servers?limit=100&cursor=" + url.QueryEscape(cursor))
		return d, err
	})
	if err != nil {
		return err
	}
	var cur struct {
		At time.Time `json:"t"`
		ID string    `json:"i"`
	}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cur); err != nil {
			return err
		}
	}
	deepRaw, err := median(func() (time.Duration, error) {
		return raw(cols+` WHERE (created_at, id) > ($1, $2::uuid) ORDER BY created_at, id LIMIT 101`, cur.At, cur.ID)
	})
	if err != nil {
		return err
	}
	var plan string
	_ = pool.QueryRow(ctx, `EXPLAIN (FORMAT TEXT) `+cols+` WHERE (created_at, id) > ($1, $2::uuid) ORDER BY created_at, id LIMIT 101`, cur.At, cur.ID).Scan(&plan)
	logf("  page %d (limit 100, after row %d): API %s, raw pgx %s; plan starts with %q", pages, (pages-1)*100,
		deep.Round(10*time.Microsecond), deepRaw.Round(10*time.Microsecond), plan)
	res.add("list_servers_deep_page_ms", ms(deep), "ms", 2, ms(deep)/ms(deepRaw))
	return nil
}
