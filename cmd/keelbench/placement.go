package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/httpapi"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// runPlacement starts a node with many simulated hosts and measures
// placements per second and the time from POST /v1/servers to the
// server.spawned commit (the server is ACTIVE), per host count.
func runPlacement(ctx context.Context, e *benchEnv, res *results) error {
	for i, hosts := range e.cfg.PlaceHosts {
		creates := e.cfg.PlaceCreates
		if i < len(e.cfg.PlaceCreatesPer) {
			creates = e.cfg.PlaceCreatesPer[i]
		}
		if err := placeOnce(ctx, e, hosts, creates, res); err != nil {
			return fmt.Errorf("%d hosts: %w", hosts, err)
		}
	}
	return nil
}

func placeOnce(ctx context.Context, e *benchEnv, hosts, creates int, res *results) error {
	url, pool, err := e.database(ctx, fmt.Sprintf("bench_place_%d", hosts))
	if err != nil {
		return err
	}
	logf("  starting a node with %d simulated hosts (it registers them one by one)", hosts)
	start := time.Now()
	n, err := node.Start(ctx, node.Config{AdminPassword: adminPassword, Limits: httpapi.Limits{Rate: -1, ProjectOperations: -1}, DataDir: filepath.Join(e.dir, fmt.Sprintf("place-%d", hosts)), Listen: "127.0.0.1:0",
		DatabaseURL: url, FakeHosts: hosts, HostVCPUs: 64, HostRAMMiB: 256 * 1024, HostDiskGiB: 4000, Log: e.log})
	if err != nil {
		return err
	}
	defer n.Close()
	started := time.Since(start)
	// The hosts are usable once the read model has them.
	for {
		var count int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM hosts`).Scan(&count); err != nil {
			return err
		}
		if count >= hosts {
			break
		}
		if time.Since(start) > 5*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d hosts in the read model after %s", count, hosts, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	visible := time.Since(start)
	logf("  node.Start took %s (%.0f host registrations/s); all %d hosts in the read model after %s",
		started.Round(time.Millisecond), float64(hosts)/started.Seconds(), hosts, visible.Round(time.Millisecond))
	res.add(fmt.Sprintf("host_register_per_s_%d", hosts), float64(hosts)/started.Seconds(), "hosts/s", 0, none)

	c, err := newClient(ctx, n.URL, e.cfg.Clients)
	if err != nil {
		return err
	}
	flavorID, imageID, seq, err := c.seed(ctx)
	if err != nil {
		return err
	}
	if _, err := n.Runner.WaitFor(ctx, seq, 30*time.Second); err != nil {
		return err
	}
	w, err := watchSpawned(ctx, n.Store)
	if err != nil {
		return err
	}
	defer w.stop()

	var next atomic.Int64
	var mu sync.Mutex
	posted := map[string]time.Time{}
	var firstErr error
	var failed atomic.Int64
	var wg sync.WaitGroup
	first := time.Now()
	for range e.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(creates) {
					return
				}
				t0 := time.Now()
				out, _, err := c.createServer(ctx, fmt.Sprintf("place-%d", i), flavorID, imageID)
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					posted[out.Server.ID] = t0
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	postsDone := time.Since(first)
	mu.Lock()
	ids := make([]string, 0, len(posted))
	for id := range posted {
		ids = append(ids, id)
	}
	mu.Unlock()
	logf("  %d creates posted in %s by %d clients (%.0f/s), %d failed (first error: %v)", len(ids), postsDone.Round(time.Millisecond),
		e.cfg.Clients, float64(len(ids))/postsDone.Seconds(), failed.Load(), firstErr)
	seen, err := w.waitAll(ctx, ids, 3*time.Minute)
	if err != nil {
		return err
	}
	var lat []time.Duration
	var last time.Time
	for _, id := range ids {
		if at, ok := seen[id]; ok {
			lat = append(lat, at.Sub(posted[id]))
			if at.After(last) {
				last = at
			}
		}
	}
	if len(lat) == 0 {
		return fmt.Errorf("no server became ACTIVE (first POST error: %v)", firstErr)
	}
	slices.Sort(lat)
	wall := last.Sub(first)
	rate := float64(len(lat)) / wall.Seconds()
	logf("  %d of %d servers ACTIVE in %s: %.0f placements/s; create-to-ACTIVE p50 %s p99 %s max %s",
		len(lat), len(ids), wall.Round(time.Millisecond), rate, percentile(lat, 0.5).Round(time.Millisecond),
		percentile(lat, 0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if err := placementSpread(ctx, n); err != nil {
		return err
	}
	res.add(fmt.Sprintf("placement_per_s_%d_hosts", hosts), rate, "servers/s", 0, none)
	res.add(fmt.Sprintf("create_to_active_p50_ms_%d_hosts", hosts), ms(percentile(lat, 0.5)), "ms", 0, none)
	res.add(fmt.Sprintf("create_to_active_p99_ms_%d_hosts", hosts), ms(percentile(lat, 0.99)), "ms", 0, none)
	return nil
}

// spawnWatch follows the node's stream from its head and notes when each
// server's server.spawned commit arrives.
type spawnWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
	bad  error // the first commit that did not decode
	cc   jetstream.ConsumeContext
}

func watchSpawned(ctx context.Context, store *keeljs.Store) (*spawnWatch, error) {
	cons, err := store.Stream().OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{keeljs.SubjectPrefix + server.AggregateType + ".>"}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	w := &spawnWatch{seen: map[string]time.Time{}}
	w.cc, err = cons.Consume(func(m jetstream.Msg) {
		at := time.Now()
		var env domain.Envelope
		if err := json.Unmarshal(m.Data(), &env); err != nil {
			w.mu.Lock()
			if w.bad == nil {
				w.bad = fmt.Errorf("decode commit on %s: %w", m.Subject(), err)
			}
			w.mu.Unlock()
			return
		}
		for _, ev := range env.Events {
			if ev.Type == server.TypeSpawned {
				w.mu.Lock()
				w.seen[env.AggregateID] = at
				w.mu.Unlock()
			}
		}
	})
	return w, err
}

func (w *spawnWatch) stop() { w.cc.Stop() }

// waitAll waits until every id was seen, or the limit passes; it returns
// what was seen, or why the watch cannot be trusted.
func (w *spawnWatch) waitAll(ctx context.Context, ids []string, limit time.Duration) (map[string]time.Time, error) {
	start := time.Now()
	for ctx.Err() == nil && time.Since(start) < limit {
		w.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := w.seen[id]; !ok {
				missing++
			}
		}
		bad := w.bad != nil
		w.mu.Unlock()
		if missing == 0 || bad {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen), w.bad
}
