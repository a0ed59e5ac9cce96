package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/httpapi"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// cmdBench is what the rounds of the command figure share.
type cmdBench struct {
	e                 *benchEnv
	n                 *node.Node
	c                 *client
	pool              *pgxpool.Pool // on the node's database, for sampling
	flavorID, imageID string
	raw               *keeljs.Store // its own embedded server
	payload           []byte        // the size of a real server.created commit
	handler           *gen          // on its own embedded server
	names             atomic.Int64
	// The command path alone: a node with only its API and command
	// handling (no projections, saga or hosts), on its own data.
	only                  *node.Node
	onlyC                 *client
	onlyFlavor, onlyImage string
	// onlyFree calls the API-only node with a token whose check is skipped:
	// the baseline of the authenticated command path.
	onlyFree *client
	free     *freeAuth
}

// freeAuth admits one fixed token as the admin without reading anything,
// and checks every other token for real: the same node, the same requests,
// with and without the cost of authentication.
type freeAuth struct {
	real      httpapi.Authenticator
	principal atomic.Pointer[commands.Principal]
}

// freeToken is the token freeAuth admits unchecked (not of the form a real
// token has, so the real check would refuse it).
const freeToken = "keelbench-unchecked"

func (f *freeAuth) Authenticate(ctx context.Context, tok string) (commands.Principal, error) {
	if p := f.principal.Load(); p != nil && tok == freeToken {
		return *p, nil
	}
	return f.real.Authenticate(ctx, tok)
}

// runCommand measures server creates per second through the HTTP API of a
// whole node, against raw JetStream appends of commits of the same size,
// durability and concurrency on an identical embedded server and stream.
// The runs alternate, in rounds, so that both see the same machine.
func runCommand(ctx context.Context, e *benchEnv, res *results) error {
	b, err := startCommandBench(ctx, e)
	if b != nil && b.n != nil {
		defer b.n.Close()
	}
	if b != nil && b.only != nil {
		defer b.only.Close()
	}
	if err != nil {
		return err
	}
	cfg := e.cfg
	var raw, handler, api, only, unchecked loadStats
	for r := 1; r <= cfg.Rounds; r++ {
		logf("round %d of %d: %d clients each, %s measured after %s of warm-up", r, cfg.Rounds, cfg.Clients, cfg.CmdDuration, cfg.Warmup)
		rr := b.measure(ctx, "raw JetStream append", b.rawAppend)
		hr := b.measure(ctx, "command handler alone", b.handlerCreate)
		or := b.measure(ctx, "POST, command path only", b.onlyCreate)
		fr := b.measure(ctx, "POST, command path, no token check", b.onlyFreeCreate)
		only, unchecked = only.merge(or), unchecked.merge(fr)
		a, err := b.apiRound(ctx)
		if err != nil {
			return err
		}
		logf("  round %d: API/raw %.2f, handler/raw %.2f", r, a.rate()/rr.rate(), hr.rate()/rr.rate())
		raw, handler, api = raw.merge(rr), handler.merge(hr), api.merge(a)
	}
	if raw.ok == 0 || api.ok == 0 {
		return fmt.Errorf("no successful call: raw %v, api %v", raw.firstErr, api.firstErr)
	}
	logf("all rounds: raw %s", raw)
	logf("all rounds: handler %s", handler)
	logf("all rounds: api %s", api)
	logf("all rounds: command path only %s", only)
	logf("all rounds: command path, no token check %s", unchecked)
	res.add("command_path_create_rps", only.rate(), "ops/s", 0, only.rate()/raw.rate())
	// Issue 9's figure: authenticated creates against the same creates
	// whose token check is skipped, on the same node in the same rounds.
	res.add("command_path_unchecked_create_rps", unchecked.rate(), "ops/s", 0, unchecked.rate()/raw.rate())
	res.add("authenticated_create_ratio", only.rate()/unchecked.rate(), "x", 2, only.rate()/unchecked.rate())
	res.add("command_create_rps", api.rate(), "ops/s", 0, api.rate()/raw.rate())
	res.add("command_handler_create_rps", handler.rate(), "ops/s", 0, handler.rate()/raw.rate())
	res.add("raw_jetstream_append_rps", raw.rate(), "ops/s", 0, none)
	return nil
}

// startCommandBench starts the node (with huge simulated hosts and no
// host latency, so that builds never wait on capacity), seeds a flavor
// and an image, and prepares the two baselines.
func startCommandBench(ctx context.Context, e *benchEnv) (*cmdBench, error) {
	url, pool, err := e.database(ctx, "bench_command")
	if err != nil {
		return nil, err
	}
	b := &cmdBench{e: e, pool: pool}
	b.n, err = node.Start(ctx, node.Config{AdminPassword: adminPassword, Limits: httpapi.Limits{Rate: -1, ProjectOperations: -1}, DataDir: filepath.Join(e.dir, "node"), Listen: "127.0.0.1:0", DatabaseURL: url,
		FakeHosts: e.cfg.FakeHosts, HostVCPUs: 1 << 20, HostRAMMiB: 1 << 30, HostDiskGiB: 1 << 30, Log: e.log,
		// The figure measures how fast the whole node accepts creates, so
		// the backlog bounds that would refuse them are off.
		MaxLag: -1, MaxBusy: -1})
	if err != nil {
		return nil, err
	}
	if b.c, err = newClient(ctx, b.n.URL, e.cfg.Clients); err != nil {
		return b, err
	}
	var seq uint64
	if b.flavorID, b.imageID, seq, err = b.c.seed(ctx); err != nil {
		return b, err
	}
	if _, err := b.n.Runner.WaitFor(ctx, seq, 30*time.Second); err != nil {
		return b, err
	}
	size, err := envelopeSize(ctx, b.c, b.n, b.flavorID, b.imageID)
	if err != nil {
		return b, err
	}
	logf("a server.created commit is %d bytes; raw appends publish payloads of that size", size)
	b.payload = make([]byte, size)
	for i := range b.payload {
		b.payload[i] = 'a' + byte(i%26)
	}
	if b.raw, err = e.eventStore(ctx, "raw-jetstream"); err != nil {
		return b, err
	}
	hs, err := e.eventStore(ctx, "handler-jetstream")
	if err != nil {
		return b, err
	}
	b.handler = &gen{app: newApp(hs), tag: "handler", hosts: e.cfg.FakeHosts}
	return b, b.startOnly(ctx)
}

// startOnly starts the API-only node and seeds it.
func (b *cmdBench) startOnly(ctx context.Context) error {
	url, _, err := b.e.database(ctx, "bench_command_only")
	if err != nil {
		return err
	}
	b.free = &freeAuth{}
	b.only, err = node.Start(ctx, node.Config{AdminPassword: adminPassword, Limits: httpapi.Limits{Rate: -1, ProjectOperations: -1}, DataDir: filepath.Join(b.e.dir, "node-only"), Listen: "127.0.0.1:0",
		DatabaseURL: url, APIOnly: true, Log: b.e.log,
		WrapAuth: func(real httpapi.Authenticator) httpapi.Authenticator { b.free.real = real; return b.free }})
	if err != nil {
		return err
	}
	if b.onlyC, err = newClient(ctx, b.only.URL, b.e.cfg.Clients); err != nil {
		return err
	}
	p, err := b.free.real.Authenticate(ctx, b.onlyC.api.Token)
	if err != nil {
		return err
	}
	b.free.principal.Store(&p)
	b.onlyFree = &client{api: b.onlyC.api.WithToken(freeToken)}
	b.onlyFlavor, b.onlyImage, _, err = b.onlyC.seed(ctx)
	return err
}

// onlyFreeCreate is onlyCreate with the token check skipped.
func (b *cmdBench) onlyFreeCreate(ctx context.Context, _ int) error {
	_, _, err := b.onlyFree.createServer(ctx, fmt.Sprintf("free-%d", b.names.Add(1)), b.onlyFlavor, b.onlyImage)
	return err
}

// onlyCreate posts a server create to the API-only node: HTTP, validation,
// the flavor and image checks, the decider and the append, with nothing
// downstream competing for the cores.
func (b *cmdBench) onlyCreate(ctx context.Context, _ int) error {
	_, _, err := b.onlyC.createServer(ctx, fmt.Sprintf("only-%d", b.names.Add(1)), b.onlyFlavor, b.onlyImage)
	return err
}

func (b *cmdBench) measure(ctx context.Context, what string, op func(context.Context, int) error) loadStats {
	st := load(ctx, b.e.cfg.Clients, b.e.cfg.Warmup, b.e.cfg.CmdDuration, op)
	logf("  %-22s %s", what+":", st)
	return st
}

// rawAppend publishes one payload to a fresh subject of an identical
// KEEL_EVENTS stream, as Store.Append does (message id, expected last
// subject sequence 0, no retry): no decider, no HTTP, no aggregate load.
func (b *cmdBench) rawAppend(ctx context.Context, _ int) error {
	id := uuid.NewString()
	msg := &nats.Msg{Subject: keeljs.Subject(server.AggregateType, id), Data: b.payload, Header: nats.Header{}}
	_, err := b.raw.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(id),
		jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithRetryAttempts(0))
	return err
}

// handlerCreate calls the server command handler directly (aggregate
// load, decider, optimistic append) on its own store: no HTTP, no saga,
// no projections, no hosts. It tells the handler's cost apart from the
// rest of the node's.
func (b *cmdBench) handlerCreate(ctx context.Context, _ int) error {
	_, err := b.handler.buildSteps(int(b.names.Add(1)))[0](ctx)
	return err
}

// apiRound posts creates, samples what Postgres is busy with meanwhile,
// then waits for the saga and the projections to finish the backlog, so
// that the next round's baselines run on a quiet node.
func (b *cmdBench) apiRound(ctx context.Context) (loadStats, error) {
	head0, err := b.n.Store.LastSequence(ctx)
	if err != nil {
		return loadStats{}, err
	}
	xacts0, err := commits(ctx, b.pool)
	if err != nil {
		return loadStats{}, err
	}
	actx, stopActivity := context.WithCancel(ctx)
	samples := make(chan map[string]int, 1)
	go func() { samples <- activity(actx, b.pool) }()
	created0 := b.names.Load()
	api := b.measure(ctx, "POST /v1/servers", func(ctx context.Context, _ int) error {
		_, _, err := b.c.createServer(ctx, fmt.Sprintf("bench-%d", b.names.Add(1)), b.flavorID, b.imageID)
		return err
	})
	stopActivity()
	logf("  %s", topActivity(<-samples, 6))
	head1, err := b.n.Store.LastSequence(ctx)
	xacts1, err2 := commits(ctx, b.pool)
	if err := errors.Join(err, err2); err != nil {
		return api, err
	}
	secs := (b.e.cfg.Warmup + b.e.cfg.CmdDuration).Seconds()
	logf("  meanwhile the node's stream took %.0f commits/s in all (creates, saga, host claims) and its database committed %.0f transactions/s",
		float64(head1-head0)/secs, float64(xacts1-xacts0)/secs)
	if api.firstErr != nil {
		logf("  first API error: %v", api.firstErr)
	}
	return api, afterLoad(ctx, b.n, int(b.names.Load()-created0))
}

// envelopeSize creates one server and returns the size of its stored
// server.created commit.
func envelopeSize(ctx context.Context, c *client, n *node.Node, flavorID, imageID string) (int, error) {
	_, seq, err := c.createServer(ctx, "bench-size", flavorID, imageID)
	if err != nil {
		return 0, err
	}
	m, err := n.Store.Stream().GetMsg(ctx, seq)
	if err != nil {
		return 0, err
	}
	var env domain.Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return 0, err
	}
	if env.AggregateType != server.AggregateType || len(env.Events) != 1 || env.Events[0].Type != server.TypeCreated {
		return 0, fmt.Errorf("commit %d is not a server.created commit: %s", seq, m.Data)
	}
	return len(m.Data), nil
}

// commits returns the transactions committed so far in the pool's database.
func commits(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

// afterLoad reports, without measuring it as a figure, whether the saga and
// the projections kept up with the accepted creates, and how many builds
// failed.
func afterLoad(ctx context.Context, n *node.Node, accepted int) error {
	open := func() (int, uint64, error) {
		var count int
		err := n.Pool.QueryRow(ctx, `SELECT count(*) FROM operations WHERE status IN ('pending','running','compensating')`).Scan(&count)
		if err != nil {
			return 0, 0, err
		}
		st, err := n.Runner.Statuses(ctx)
		var lag uint64
		for _, s := range st {
			lag = max(lag, s.Lag)
		}
		return count, lag, err
	}
	count, lag, err := open()
	if err != nil {
		return err
	}
	open0 := count
	logf("  at the end: %d creates sent; %d operations not finished in the read model, which lags %d commits", accepted, count, lag)
	start, cpu := time.Now(), snapCPU()
	for (count > 0 || lag > 0) && time.Since(start) < 3*time.Minute && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		if count, lag, err = open(); err != nil {
			return err
		}
	}
	logf("  saga and projections caught up %s later (%d operations open, lag %d): %.0f operations/s; %s",
		time.Since(start).Round(time.Millisecond), count, lag, float64(open0-count)/time.Since(start).Seconds(), cpu.cpuSince())
	var servers, failed int
	err = n.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status='ERROR') FROM servers`).Scan(&servers, &failed)
	if err == nil && failed > 0 {
		logf("  warning: %d of %d servers ended in ERROR", failed, servers)
	}
	if err != nil {
		return err
	}
	return placementSpread(ctx, n)
}

// placementSpread tells how placements went over the hosts: long runs of
// consecutive placements on the same host mean that concurrent builds all
// claimed the same host, one after the other.
func placementSpread(ctx context.Context, n *node.Node) error {
	var placed, hosts, switches int
	err := n.Pool.QueryRow(ctx, `WITH s AS (SELECT seq, envelope->'events'->0->'data'->>'host' AS host
			FROM events WHERE types @> ARRAY['server.scheduled'])
		SELECT count(*), count(DISTINCT host), count(*) FILTER (WHERE host IS DISTINCT FROM prev)
		FROM (SELECT host, lag(host) OVER (ORDER BY seq) AS prev FROM s) t`).Scan(&placed, &hosts, &switches)
	if err != nil {
		return err
	}
	logf("  %d placements so far on %d hosts; consecutive placements changed host %d times (mean run %.1f on one host)",
		placed, hosts, switches, float64(placed)/float64(max(switches, 1)))
	return nil
}
