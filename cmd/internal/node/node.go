// Package node wires one `keel serve` process: the event store (embedded
// NATS or a cluster), the read model (a given Postgres, or a private cluster
// started under the data dir), command handling, projections, the server
// saga, simulated hosts and the HTTP API. Tests start a whole node
// in-process with it. It holds wiring only, no behaviour.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/httpapi"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
	"github.com/keel-cloud/keel/billing"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
	"github.com/keel-cloud/keel/migrations"
	"github.com/keel-cloud/keel/projections"
	"github.com/keel-cloud/keel/sagas"
	"github.com/keel-cloud/keel/sagas/monitors"
	"github.com/keel-cloud/keel/secrets"
)

// Config configures a node.
type Config struct {
	DataDir     string        // holds the embedded NATS store and, when started here, Postgres
	Listen      string        // API address, e.g. 127.0.0.1:8080 (":0" picks a port)
	NATSURL     string        // an external NATS (cluster); "" runs the embedded server
	NATSCreds   string        // nkey seed file to connect to NATSURL with ("" = none)
	NATSListen  string        // expose the embedded NATS on this address ("" = in-process only)
	Replicas    int           // stream replicas on an external cluster (default 1)
	DupWindow   time.Duration // JetStream duplicate window (default 2m)
	DatabaseURL string        // "" starts a private Postgres under DataDir/postgres
	// SecretsKey is the file of the key that seals generated passwords
	// (package secrets). "" uses DataDir/secrets.key, created at first
	// start; a given file must exist (replicas share one key).
	SecretsKey string
	// AdminPassword is the bootstrap admin's password on first start ("":
	// generated and written once to AdminPasswordOut). Later starts ignore it.
	AdminPassword string
	// AdminPasswordOut receives the generated password (nil: standard error).
	AdminPasswordOut io.Writer
	// WrapAuth, for benchmarks only, wraps the token check (nil: tokens are
	// checked against the log, commands.App.Authenticate). keel serve never
	// sets it.
	WrapAuth func(httpapi.Authenticator) httpapi.Authenticator
	// Limits bounds each token's request rate and each address's logins
	// (zero: httpapi's defaults; Rate -1: no per-token limit).
	Limits httpapi.Limits

	FakeHosts int // simulated hosts run in this process
	// SimulatedAgents admits simulated fleets (keel agent --driver fake,
	// with DataDir/agent.nk) to the embedded NATS; they are admitted
	// anyway when FakeHosts > 0.
	SimulatedAgents bool
	HostVCPUs       int
	HostRAMMiB      int
	HostDiskGiB     int
	FakeKnobs       fake.Knobs

	Timeouts         sagas.Timeouts
	Weights          scheduler.Weights // scheduler weigher multipliers (default scheduler.DefaultWeights)
	AgentCallTimeout time.Duration     // how long a simulated host call may take before the host gives up (default 5m)
	HeartbeatEvery   time.Duration     // heartbeat period of in-process simulated hosts (default 5s)
	HeartbeatTimeout time.Duration     // no heartbeat for this long: the host is down (default 30s)
	OrphanGrace      time.Duration     // a claim no server uses is released after this (default 2m)
	QuotaGrace       time.Duration     // a quota reservation whose server (port, network, group) never came, or an address no port holds, is given back after this (default 10m)
	// MaxLag and MaxBusy bound the backlog: past either, new servers get a
	// 503 with Retry-After (defaults 50,000 commits and 10,000 servers;
	// negative turns a bound off).
	MaxLag  int64
	MaxBusy int
	// ParkAttempts, ParkAfter and ParkPoll configure the parking of saga
	// and dispatcher commits whose reaction keeps failing (eventlog.Parking:
	// defaults 10 attempts, 1 minute, 2 s), and of the in-process fleet's
	// work. Projections are never parked.
	ParkAttempts int
	ParkAfter    time.Duration
	ParkPoll     time.Duration
	// APIOnly runs the API and command handling without projections, sagas
	// or hosts: the command path alone, for benchmarks. Reads see nothing.
	APIOnly       bool
	DeadlineEvery time.Duration
	ConsoleTTL    time.Duration // how long a console URL may wait to be opened (default 30 s)
	ReadWait      time.Duration
	// Prices is the price table GET /v1/usage bills at (keel serve
	// --prices FILE; zero: every cost is 0, in no currency).
	Prices billing.Prices
	// OVN configures the network adapter (ovn.go); none runs without an
	// NB endpoint.
	OVN OVNConfig
	Log *slog.Logger
}

// Node is a running keel serve.
type Node struct {
	Config   Config
	URL      string // base URL of the API
	Store    *keeljs.Store
	App      *commands.App
	Pool     *pgxpool.Pool
	Read     *postgres.ReadModel
	Runner   *projections.Runner
	Saga     *sagas.ServerSaga
	Hosts    []*fake.Host
	Embedded *keeljs.Embedded
	Postgres *pgcluster.Cluster // nil when DatabaseURL was given
	Metrics  *metrics.Set       // this node's registry, served at /metrics
	Parked   *keeljs.ParkingLot // commits sagas and agents gave up on for now
	Secrets  *secrets.Box       // seals and opens generated passwords
	Audit    *keeljs.AuditLog   // the audit stream the API publishes to

	Keys *hostlink.Keys // the credentials issued to hosts

	nc     *nats.Conn
	access *hostlink.Access      // who may use the embedded NATS (nil on an external one)
	fleet  *hostlink.Credentials // DataDir/agent.nk: simulated fleets'
	http   *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dirLock *os.File // held while the node uses DataDir
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if c.Timeouts == (sagas.Timeouts{}) {
		c.Timeouts = sagas.DefaultTimeouts
	}
	if c.Timeouts.Network == 0 {
		c.Timeouts.Network = sagas.DefaultTimeouts.Network
	}
	if c.DeadlineEvery == 0 {
		c.DeadlineEvery = time.Second
	}
	if c.HostVCPUs == 0 {
		c.HostVCPUs, c.HostRAMMiB, c.HostDiskGiB = 32, 131072, 2000
	}
	if c.Weights == (scheduler.Weights{}) {
		c.Weights = scheduler.DefaultWeights
	}
	if c.QuotaGrace == 0 {
		c.QuotaGrace = 10 * time.Minute
	}
	if c.OrphanGrace == 0 {
		c.OrphanGrace = 2 * time.Minute
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 30 * time.Second
	}
	if c.AgentCallTimeout == 0 {
		c.AgentCallTimeout = 5 * time.Minute
	}
	if c.MaxLag == 0 {
		c.MaxLag = 50_000
	}
	if c.MaxBusy == 0 {
		c.MaxBusy = 10_000
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
}

// Start brings a node up; Close brings it down.
func Start(ctx context.Context, c Config) (*Node, error) {
	c.defaults()
	n := &Node{Config: c}
	if err := n.start(ctx); err != nil {
		n.Close() // stop what was started: NATS, Postgres, goroutines
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	c := n.Config
	var err error
	if err := n.openDataDir(); err != nil {
		return err
	}
	if n.Secrets, err = openSecrets(c); err != nil {
		return err // before NATS and Postgres: a wrong key path fails at once
	}
	if n.fleet, err = hostlink.EnsureFleetCredentials(filepath.Join(c.DataDir, agentCredentialsFile)); err != nil {
		return err
	}
	if err := n.startNATS(ctx); err != nil {
		return err
	}
	if err := n.startPostgres(ctx); err != nil {
		return err
	}
	n.App = commands.NewApp(n.Store)
	n.App.Secrets = n.Secrets
	n.Read = &postgres.ReadModel{Pool: n.Pool}
	n.Runner = &projections.Runner{Pool: n.Pool, Events: n.Store, Projections: projections.All(), Log: c.Log}
	n.Saga = &sagas.ServerSaga{App: n.App, Snapshot: sagas.CachedSnapshot(n.Read, 100*time.Millisecond), Weights: c.Weights, Timeouts: c.Timeouts, Log: c.Log, Now: time.Now,
		FloatingIPsOf: n.Read.FloatingIPsOfPort}
	n.Saga.CatchUp = n.catchUp
	n.Metrics = metrics.New()
	n.App.Observe(n.Metrics)
	snaps, err := keeljs.OpenSnapshots(ctx, n.Store.JS, n.Store.Replicas)
	if err != nil {
		return err
	}
	n.App.UseSnapshots(snaps, c.Log)
	n.Saga.Metrics = n.Metrics
	if err := n.Metrics.CollectReadModel(n.Read, n.Runner); err != nil {
		return err
	}
	names, err := keeljs.OpenKV(ctx, n.Store.JS, keeljs.NamesBucket, 0, n.Store.Replicas)
	if err != nil {
		return err
	}
	n.App.Names = nameStore{names}
	if err := n.bootstrap(ctx); err != nil {
		return err
	}
	images, err := keeljs.OpenImages(ctx, n.Store.JS, n.Store.Replicas)
	if err != nil {
		return err
	}
	idem, err := keeljs.OpenKV(ctx, n.Store.JS, keeljs.IdempotencyBucket, keeljs.IdempotencyTTL, n.Store.Replicas)
	if err != nil {
		return err
	}
	if n.Parked, err = n.Store.ParkingLot(ctx); err != nil {
		return err
	}
	if err := n.Metrics.CollectParked(parkedCounter{n.Parked, n.subscriptions()}); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if n.Keys, err = hostlink.OpenKeys(runCtx, n.Store.JS, n.Store.Replicas, n.access, n.fleet, c.Log); err != nil {
		return err
	}
	if n.access != nil && (c.FakeHosts > 0 || c.SimulatedAgents) {
		// Simulated fleets are let in only where there are simulated
		// hosts: a leaked agent.nk must not add hosts to a real cloud.
		user, _, err := n.fleet.Public()
		if err != nil {
			return err
		}
		n.access.AdmitFleet(user)
	}
	consoles := agent.ConsoleClient{Request: keeljs.Requester(n.nc), Subject: func(host string) string {
		id := commands.HostID(host)
		return hostlink.ConsoleSubject(id, !n.Keys.Own(id))
	}}
	// The bucket forgets a token a minute after its URL expires at the latest.
	tokens, err := keeljs.OpenKV(ctx, n.Store.JS, keeljs.ConsoleTokensBucket, max(c.ConsoleTTL, httpapi.DefaultConsoleTTL)+time.Minute, n.Store.Replicas)
	if err != nil {
		return err
	}
	if n.Audit, err = keeljs.OpenAudit(ctx, n.Store.JS, n.Store.Replicas); err != nil {
		return err
	}
	if err := n.runAuditChain(runCtx); err != nil {
		return err
	}
	var auth httpapi.Authenticator = n.App
	if c.WrapAuth != nil {
		auth = c.WrapAuth(auth)
	}
	api := &httpapi.API{App: n.App, Auth: auth, Limits: c.Limits, Read: n.Read, Runner: n.Runner, Store: n.Store, Images: images, Idem: idem,
		Parked: n.Parked, Log: c.Log, Metrics: n.Metrics, ReadWait: c.ReadWait, Ready: n.ready,
		Consoles: consoles, HostKeys: hostKeys{n.Keys}, Displays: hostlink.Displays{NC: n.nc, Keys: n.Keys}, ConsoleTokens: tokens,
		ConsoleTTL: c.ConsoleTTL, Prices: c.Prices, Audit: n.Audit}
	if c.APIOnly {
		return n.serve(api.Handler())
	}
	api.Backlog = &httpapi.Backlog{MaxLag: uint64(max(c.MaxLag, 0)), MaxBusy: c.MaxBusy, Lag: n.lag, Busy: n.Read.BusyServers}
	n.goRun(func() error { return n.Runner.Run(runCtx) })
	// Sagas and agents park what keeps failing; projections follow the
	// log in order (n.Runner reads n.Store directly) and are never parked.
	n.goRun(func() error { return n.Saga.Run(runCtx, n.parking()) })
	deadlines := &monitors.Deadlines{App: n.App, Find: n.Read, Log: c.Log}
	n.goRun(func() error { deadlines.Run(runCtx, c.DeadlineEvery); return nil })
	orphans := &monitors.Orphans{App: n.App, Find: n.Read, Grace: c.OrphanGrace, Log: c.Log}
	n.goRun(func() error { orphans.Run(runCtx, min(c.OrphanGrace/2, 30*time.Second)); return nil })
	sweep := &monitors.QuotaSweep{App: n.App, Find: n.Read, Grace: c.QuotaGrace, Log: c.Log}
	n.goRun(func() error { sweep.Run(runCtx, min(c.QuotaGrace/2, time.Minute)); return nil })
	addresses := &monitors.AddressSweep{App: n.App, Find: n.Read, Grace: c.QuotaGrace, Log: c.Log}
	n.goRun(func() error { addresses.Run(runCtx, min(c.QuotaGrace/2, time.Minute)); return nil })
	fips := &monitors.FloatingIPSweep{App: n.App, Find: n.Read, Grace: c.QuotaGrace, Log: c.Log}
	n.goRun(func() error { fips.Run(runCtx, min(c.QuotaGrace/2, time.Minute)); return nil })
	routerPorts := &monitors.RouterPortSweep{App: n.App, Find: n.Read, Grace: c.QuotaGrace, Log: c.Log}
	n.goRun(func() error { routerPorts.Run(runCtx, min(c.QuotaGrace/2, time.Minute)); return nil })
	if err := n.watchLiveness(runCtx); err != nil {
		return err
	}
	// Agents reach the control plane through the host link only: their
	// requests are checked here before they become commands, and each
	// host reads only the work the dispatcher gives it.
	svc := &hostlink.Service{App: n.App, Keys: n.Keys, Images: images, JS: n.Store.JS, NC: n.nc, Parked: n.Parked, Commits: n.Store,
		SpoolDir: filepath.Join(c.DataDir, "image-spool"), Log: c.Log}
	if err := svc.Serve(runCtx, n.nc); err != nil {
		return err
	}
	disp := &hostlink.Dispatcher{App: n.App, JS: n.Store.JS, Keys: n.Keys, Secrets: n.Secrets, Log: c.Log}
	fw := &hostlink.Forwarder{JS: n.Store.JS, NC: n.nc, Log: c.Log, StillAsked: disp.StillAsked}
	n.goRun(func() error { return fw.Run(runCtx) })
	n.goRun(func() error { return n.parking().Subscribe(runCtx, disp.Subscription()) })
	n.goRun(func() error { disp.RetryParked(runCtx, n.Parked, n.Store, c.ParkPoll); return nil })
	if err := n.startOVN(ctx, runCtx); err != nil {
		return err
	}
	if c.FakeHosts > 0 {
		hosts, sims := fake.Fleet("sim", c.FakeHosts, c.FakeKnobs, c.HostVCPUs, c.HostRAMMiB, c.HostDiskGiB)
		// Simulated hosts keep their servers under the data dir, so that a
		// restart finds them there as a real hypervisor would.
		if err := fake.PersistFleet(sims, filepath.Join(c.DataDir, "fake-hosts")); err != nil {
			return err
		}
		n.Hosts = sims
		// The in-process fleet connects as any simulated fleet does, with
		// the fleet credentials and their permissions.
		link, err := n.fleetLink()
		if err != nil {
			return err
		}
		link.ParkAttempts, link.ParkAfter = c.ParkAttempts, c.ParkAfter
		ag := &agent.Agent{Name: "embedded", Link: link, Hosts: hosts, Log: c.Log,
			CallTimeout: c.AgentCallTimeout, HeartbeatEvery: c.HeartbeatEvery}
		if err := ag.Register(ctx); err != nil {
			link.Close()
			return err
		}
		n.goRun(func() error { defer link.Close(); return ag.Run(runCtx) })
	}
	return n.serve(api.Handler())
}

func (n *Node) startNATS(ctx context.Context) error {
	c := n.Config
	connect := n.connectNATS
	if c.NATSURL == "" {
		connect = n.startEmbedded
	}
	if err := connect(); err != nil {
		return err
	}
	store, err := keeljs.Open(ctx, n.nc, c.Replicas, c.DupWindow)
	if err != nil {
		return err
	}
	n.Store = store
	return nil
}

func (n *Node) startPostgres(ctx context.Context) error {
	url := n.Config.DatabaseURL
	if url == "" {
		pc, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(n.Config.DataDir, "postgres"), Logf: func(f string, a ...any) {
			n.Config.Log.Info(fmt.Sprintf(f, a...))
		}})
		if err != nil {
			return fmt.Errorf("start private postgres (set KEEL_DATABASE_URL to use another): %w", err)
		}
		n.Postgres, url = pc, pc.URL
	}
	pool, err := postgres.Connect(ctx, url, 40)
	if err != nil {
		return err
	}
	n.Pool = pool
	if err := migrations.Up(ctx, pool); err != nil {
		return err
	}
	return nil
}

func (n *Node) serve(h http.Handler) error {
	ln, err := net.Listen("tcp", n.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.Config.Listen, err)
	}
	n.URL = "http://" + ln.Addr().String()
	// No WriteTimeout: the event stream is long-lived.
	n.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(httpapi.ProblemListener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.Config.Log.Error("http server", "err", err)
		}
	}()
	return nil
}

func (n *Node) goRun(f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil {
			n.Config.Log.Error("component stopped", "err", err)
		}
	}()
}

func (n *Node) ready(ctx context.Context) error {
	if n.nc == nil || !n.nc.IsConnected() {
		return errors.New("nats not connected")
	}
	return n.Pool.Ping(ctx)
}

// lag is how many commits the read model is behind the log's head.
func (n *Node) lag(ctx context.Context) (uint64, error) {
	head, err := n.Store.LastSequence(ctx)
	if err != nil {
		return 0, err
	}
	applied, err := n.Runner.Applied(ctx)
	if err != nil || applied >= head {
		return 0, err
	}
	return head - applied, nil
}

// catchUp waits up to 5 s for the read model to apply every commit in the log.
func (n *Node) catchUp(ctx context.Context) error {
	head, err := n.Store.LastSequence(ctx)
	if err != nil {
		return err
	}
	ok, err := n.Runner.WaitFor(ctx, head, 5*time.Second)
	if err == nil && !ok {
		err = fmt.Errorf("read model did not reach sequence %d within 5s", head)
	}
	return err
}

// runAuditChain copies the audit stream into Postgres, at once when a
// record is published and every second: in every mode, API-only included,
// since every command is audited.
func (n *Node) runAuditChain(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	stop, err := n.Audit.Watch(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	chain := &postgres.AuditChain{Pool: n.Pool, Source: n.Audit, Log: n.Config.Log}
	n.goRun(func() error {
		defer func() { _ = stop() }()
		return chain.Run(ctx, wake)
	})
	return nil
}

// NATSURL is where outside agents connect ("" when not exposed).
func (n *Node) NATSURL() string {
	if n.Embedded != nil {
		return n.Embedded.ClientURL()
	}
	return n.Config.NATSURL
}

// Close stops everything the node started, in reverse order.
func (n *Node) Close() {
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.Shutdown(ctx)
		cancel()
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if n.App != nil {
		n.App.WaitSnapshots() // before NATS goes away under them
	}
	if n.Pool != nil {
		n.Pool.Close()
	}
	if n.Embedded != nil {
		n.Embedded.Close()
	} else if n.nc != nil {
		n.nc.Close()
	}
	if n.Postgres != nil { // Stop leaves a Postgres this node did not start running
		if err := n.Postgres.Stop(); err != nil {
			n.Config.Log.Warn("stop postgres", "err", err)
		}
	}
	n.unlockDataDir()
}

// subscriptions are the durable names this node parks commits of.
func (n *Node) subscriptions() []string {
	if n.Config.APIOnly {
		return nil
	}
	subs := []string{sagas.Durable, hostlink.DispatcherDurable, hostlink.WorkParked}
	if n.Config.OVN.NB != "" {
		subs = append(subs, nbsync.SubscriptionName)
	}
	return subs
}

// parking wraps the log's subscriptions with the parking of commits whose
// reaction keeps failing.
func (n *Node) parking() eventlog.Subscriber {
	c := n.Config
	return &eventlog.Parking{Subscriber: n.Store, Lot: n.Parked, Commits: n.Store,
		MaxAttempts: c.ParkAttempts, After: c.ParkAfter, Poll: c.ParkPoll}
}

// parkedCounter feeds keel_parked_commits, with the subscriptions of this
// node always present.
type parkedCounter struct {
	lot  eventlog.ParkingLot
	subs []string
}

func (p parkedCounter) ParkedCounts(ctx context.Context) (map[string]int, error) {
	return eventlog.CountParked(ctx, p.lot, p.subs...)
}

// nameStore adapts the KV bucket to commands.NameStore.
type nameStore struct{ kv *keeljs.KV }

func (s nameStore) Create(ctx context.Context, key string, v []byte) error {
	return nameErr(s.kv.Create(ctx, key, v))
}

func (s nameStore) Update(ctx context.Context, key string, v []byte, rev uint64) error {
	return nameErr(s.kv.Update(ctx, key, v, rev))
}

func (s nameStore) Delete(ctx context.Context, key string) error { return s.kv.Delete(ctx, key) }

func (s nameStore) GetEntry(ctx context.Context, key string) ([]byte, uint64, time.Time, bool, error) {
	e, err := s.kv.GetEntry(ctx, key)
	if err != nil || e == nil {
		return nil, 0, time.Time{}, false, err
	}
	return e.Value, e.Revision, e.Created, true, nil
}

func nameErr(err error) error {
	if errors.Is(err, keeljs.ErrKeyExists) {
		return commands.ErrNameTaken
	}
	return err
}

// watchLiveness feeds heartbeats and goodbyes (core NATS) to the liveness
// monitor; a simulated fleet's are ignored for a host with credentials of
// its own.
func (n *Node) watchLiveness(ctx context.Context) error {
	l := &monitors.Liveness{App: n.App, Hosts: n.Read, Timeout: n.Config.HeartbeatTimeout, Log: n.Config.Log}
	var subs []*nats.Subscription
	for _, sim := range []bool{false, true} {
		for _, verb := range []string{hostlink.VerbHeartbeat, hostlink.VerbGoodbye} {
			alive := verb == hostlink.VerbHeartbeat
			sub, err := n.nc.Subscribe(hostlink.HostSubject("*", verb, sim), func(m *nats.Msg) {
				id := strings.Split(m.Subject, ".")[2]
				if (sim && n.Keys.Own(id)) || m.Header.Get("Status") != "" || commands.HostID(string(m.Data)) != id {
					return // a fleet for a real host, or not a host's own beat
				}
				if alive {
					l.Beat(id)
				} else {
					l.Goodbye(id)
				}
			})
			if err != nil {
				return fmt.Errorf("subscribe to heartbeats: %w", err)
			}
			subs = append(subs, sub)
		}
	}
	every := min(time.Second, max(n.Config.HeartbeatTimeout/4, 50*time.Millisecond))
	n.goRun(func() error {
		l.Run(ctx, every)
		var errs []error
		for _, s := range subs {
			errs = append(errs, s.Unsubscribe())
		}
		return errors.Join(errs...)
	})
	return nil
}

// fleetLink connects the in-process simulated fleet: to the embedded NATS
// with the fleet credentials, or over the external NATS.
func (n *Node) fleetLink() (*hostlink.Client, error) {
	if n.Embedded == nil {
		nc, err := n.dialExternal("keel-serve-fleet")
		if err != nil {
			return nil, err
		}
		return hostlink.NewClient(nc, n.fleet, n.Config.Log), nil
	}
	return hostlink.Connect("", n.fleet, "embedded", n.Config.Log, nats.InProcessServer(n.Embedded.Server))
}

// hostKeys issues host credentials for the API.
type hostKeys struct{ keys *hostlink.Keys }

func (h hostKeys) Issue(ctx context.Context, host string) ([]byte, error) {
	c, err := h.keys.Issue(ctx, host)
	if err != nil {
		return nil, err
	}
	return c.Encode()
}

func (h hostKeys) Revoke(ctx context.Context, host string) error {
	err := h.keys.Revoke(ctx, host)
	if errors.Is(err, hostlink.ErrNoCredentials) {
		return domain.NotFoundf("%v", err)
	}
	return err
}

// bootstrap makes the admin project and user on first start, and shows a
// generated password once.
func (n *Node) bootstrap(ctx context.Context) error {
	pw, err := n.App.Bootstrap(ctx, n.Config.AdminPassword)
	if err != nil {
		return err
	}
	if pw == "" {
		return nil
	}
	out := n.Config.AdminPasswordOut
	if out == nil {
		out = os.Stderr
	}
	_, err = fmt.Fprintf(out, "\n  Keel made its first user: admin, with the password\n\n      %s\n\n"+
		"  It is shown this once. Log in with: keel login --user admin\n  (or set KEEL_ADMIN_PASSWORD before the first start to choose it).\n\n", pw)
	return err
}
