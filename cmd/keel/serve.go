package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/billing"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/sagas"
)

func serveCmd() *cobra.Command {
	var c node.Config
	var latency time.Duration
	var failRate float64
	var verbose bool
	var logFormat string
	var pricesFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane (API, commands, projections, sagas, simulated hosts)",
		Long: `Run the control plane.

With no --nats, an embedded NATS JetStream server keeps its data under
--data-dir/jetstream (every write fsynced). With no KEEL_DATABASE_URL, a
private PostgreSQL cluster is started under --data-dir/postgres from the
local binaries (as the postgres user when run as root) and stopped on exit.

Only one keel serve may use a data dir at a time: it holds DATA_DIR/keel.lock.
The data dir is readable by its owner only (mode 0700; 0710 with group
postgres when root runs a private Postgres). The private Postgres takes only
Keel, with a generated password kept in DATA_DIR/postgres/keel-password. The
embedded NATS takes only keel serve itself, compute nodes with the
credentials issued to each (keel host credentials NAME -o FILE: that host's
subjects only) and simulated fleets with DATA_DIR/agent.nk (simulated hosts'
subjects only); none of them reaches the event log.

Each server gets a generated password for its admin user (keel server
login-info). The event log holds it sealed with AES-256-GCM under the key in
DATA_DIR/secrets.key (created, mode 0600, at first start), or in the file
--secrets-key names (env KEEL_SECRETS_KEY): every replica of one control
plane needs the same key. Agents never hold it: keel serve seals each
password again to the key of the host that builds the server.

With --ovn-nb, keel serve runs the network adapter: it writes the networks,
subnets, ports, security groups, routers and floating IPs of the log into
that OVN Northbound database and repairs drift every --ovn-reconcile. Of
several replicas, one at a time writes (the holder of the lease ovn-nb in
the KV bucket KEEL_LEASES; another takes over at once when it stops, and
within about 17 s, the lease's TTL and a try, when it dies). An ssl: endpoint needs --ovn-nb-private-key,
--ovn-nb-certificate and --ovn-nb-ca-cert. Host agents never reach the NB.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(os.Stderr, logFormat, verbose)
			if err != nil {
				return err
			}
			c.Log = log
			c.DatabaseURL = os.Getenv("KEEL_DATABASE_URL")
			c.AdminPassword = os.Getenv("KEEL_ADMIN_PASSWORD")
			c.FakeKnobs = fake.Knobs{Latency: latency, FailRate: failRate}
			if pricesFile != "" {
				if c.Prices, err = billing.Load(pricesFile); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.Start(ctx, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "\nKeel is up.\n  API:      %s/v1\n  OpenAPI:  %s/openapi.json\n  Docs:     %s/docs\n  Health:   %s/healthz  %s/readyz\n",
				n.URL, n.URL, n.URL, n.URL, n.URL)
			if u := n.NATSURL(); u != "" && n.AgentCredentials() != "" {
				fmt.Fprintf(os.Stderr, "  NATS:     %s (simulated fleets connect here with --credentials %s; compute nodes with their own: keel host credentials NAME -o FILE)\n", u, n.AgentCredentials())
			} else if u != "" {
				fmt.Fprintf(os.Stderr, "  NATS:     %s\n", u)
			}
			fmt.Fprintf(os.Stderr, "  Data:     %s\n  Log in:   KEEL_API=%s keel login --user admin\n  Then:     keel flavor list\nCtrl-C stops everything started here.\n\n", c.DataDir, n.URL)
			<-ctx.Done()
			c.Log.Info("shutting down")
			n.Close()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "API listen address")
	f.Float64Var(&c.Limits.Rate, "rate-limit", httpapi.DefaultRate, "API requests per second per token, each keel serve counting on its own (429 with Retry-After beyond; -1: no limit)")
	f.IntVar(&c.Limits.Burst, "rate-burst", httpapi.DefaultBurst, "API requests a token may send at once before --rate-limit applies")
	f.IntVar(&c.Limits.ProjectOperations, "project-operations", httpapi.DefaultProjectOperations, "servers of one project with an operation under way before new creates, starts, stops and reboots get 429 (-1: no bound)")
	f.StringVar(&c.DataDir, "data-dir", defaultDataDir(), "where Keel keeps its data (embedded NATS, private Postgres)")
	f.StringVar(&pricesFile, "prices", "", `price table for GET /v1/usage, JSON: {"currency": "EUR", "flavors": {"m1.small": 0.012}, "vcpu_hour": 0.01, "ram_gib_hour": 0.005} (hourly prices: a flavor's by name, else by vCPUs and RAM GiB; none: every cost is 0)`)
	f.StringVar(&c.SecretsKey, "secrets-key", os.Getenv("KEEL_SECRETS_KEY"), "file of the key that seals generated passwords; it must exist (default: DATA_DIR/secrets.key, created at first start; env KEEL_SECRETS_KEY)")
	f.StringVar(&c.NATSURL, "nats", "", "use this NATS cluster instead of the embedded server (e.g. nats://10.0.0.1:4222)")
	f.StringVar(&c.NATSCreds, "nats-credentials", "", "nkey seed file to connect to --nats with")
	f.StringVar(&c.NATSListen, "nats-listen", "", "expose the embedded NATS on this address for agents (e.g. 127.0.0.1:4222)")
	f.IntVar(&c.Replicas, "replicas", 1, "stream replicas on a NATS cluster (3 for R3)")
	f.IntVar(&c.FakeHosts, "fake-hosts", 3, "simulated hosts to run in this process")
	f.BoolVar(&c.SimulatedAgents, "simulated-agents", false, "let simulated fleets (keel agent --driver fake --credentials DATA_DIR/agent.nk) join even with --fake-hosts 0 (they always may when --fake-hosts > 0)")
	f.IntVar(&c.HostVCPUs, "host-vcpus", 32, "vCPUs of each simulated host")
	f.IntVar(&c.HostRAMMiB, "host-ram-mib", 131072, "RAM of each simulated host")
	f.IntVar(&c.HostDiskGiB, "host-disk-gib", 2000, "disk of each simulated host")
	f.DurationVar(&latency, "fake-latency", 200*time.Millisecond, "latency of each simulated hypervisor call")
	f.Float64Var(&failRate, "fake-fail-rate", 0, "probability that a simulated spawn fails")
	f.DurationVar(&c.Timeouts.Spawn, "spawn-timeout", sagas.DefaultTimeouts.Spawn, "deadline of the spawn step")
	f.DurationVar(&c.Timeouts.Schedule, "schedule-timeout", sagas.DefaultTimeouts.Schedule, "deadline of the schedule step")
	f.DurationVar(&c.Timeouts.Action, "action-timeout", sagas.DefaultTimeouts.Action, "deadline of start, stop and reboot")
	f.DurationVar(&c.Timeouts.Destroy, "destroy-timeout", sagas.DefaultTimeouts.Destroy, "deadline of the destroy step")
	f.DurationVar(&c.HeartbeatTimeout, "heartbeat-timeout", 30*time.Second, "a host without heartbeats for this long is down")
	f.DurationVar(&c.HeartbeatEvery, "heartbeat", 5*time.Second, "heartbeat period of the in-process simulated hosts")
	f.IntVar(&c.ParkAttempts, "park-attempts", eventlog.DefaultParkAttempts, "park a saga or agent commit whose reaction failed this many times (and for --park-after)")
	f.DurationVar(&c.ParkAfter, "park-after", eventlog.DefaultParkAfter, "park a commit only once its reaction has been failing for this long (and --park-attempts times)")
	f.DurationVar(&c.ParkPoll, "park-poll", eventlog.DefaultParkPoll, "how often parked commits marked for retry are looked for")
	f.Int64Var(&c.MaxLag, "max-lag", 50_000, "refuse new servers (503, Retry-After) while the read model is this many commits behind the log (-1: never)")
	f.IntVar(&c.MaxBusy, "max-busy", 10_000, "refuse new servers (503, Retry-After) while this many servers are being built or changed (-1: never)")
	f.Float64Var(&c.Weights.RAM, "weight-ram", scheduler.DefaultWeights.RAM, "scheduler RAM weigher multiplier (positive spreads, negative packs)")
	f.Float64Var(&c.Weights.CPU, "weight-cpu", scheduler.DefaultWeights.CPU, "scheduler CPU weigher multiplier (positive spreads, negative packs)")
	f.Float64Var(&c.Weights.Group, "weight-group", scheduler.DefaultWeights.Group, "scheduler soft (anti-)affinity weigher multiplier")
	f.StringVar(&c.OVN.NB, "ovn-nb", "", "run the network adapter against this OVN Northbound database: unix:/path, tcp:host:port or ssl:host:port (comma-separated for a cluster; none: no OVN)")
	f.StringVar(&c.OVN.PrivateKey, "ovn-nb-private-key", "", "private key file of Keel's client certificate, for an ssl: --ovn-nb")
	f.StringVar(&c.OVN.Certificate, "ovn-nb-certificate", "", "Keel's client certificate file, for an ssl: --ovn-nb")
	f.StringVar(&c.OVN.CACert, "ovn-nb-ca-cert", "", "CA certificate file the NB server's certificate must chain to, for an ssl: --ovn-nb")
	f.DurationVar(&c.OVN.Reconcile, "ovn-reconcile", nbsync.DefaultInterval, "period of the network adapter's full reconcile of the NB against the log")
	f.StringVar(&c.OVN.GatewayChassis, "ovn-gateway-chassis", "", "chassis (ovn-controller system-id) that hosts routers' gateway ports and their NAT")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	f.StringVar(&logFormat, "log-format", "text", logFormatFlag)
	return cmd
}

func defaultDataDir() string {
	if d := os.Getenv("KEEL_DATA_DIR"); d != "" {
		return d
	}
	return "./keel-data"
}
