package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/secrets"
)

type agentFlags struct {
	natsURL, driver, prefix, name string
	stateDir                      string
	hosts, vcpus, ramMiB, diskGiB int
	latency, heartbeat            time.Duration
	failRate                      float64
	cpuRatio, ramRatio, diskRatio float64
	traits                        []string
	verbose                       bool
	logFormat                     string
	creds                         string // nkey seed file for NATS
	libvirtURI, hostName, dataDir string
	accel                         string
	stopTimeout                   time.Duration
	syncEvery                     time.Duration
	parkAttempts                  int
	parkAfter, parkPoll           time.Duration
	secretsKey                    string // file of keel serve's secrets key
}

func agentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a host agent: a libvirt compute node (--driver libvirt) or simulated hosts (--driver fake)",
		Long: `Run a host agent. It registers its hosts, sends heartbeats (core NATS, not
the event log), follows the server events addressed to its hosts, drives
their hypervisors and reports results as commands, exactly as a real agent.

With --driver libvirt it runs this machine as the compute node --host-name:
it reads its capacity and CPU from libvirt (--libvirt-uri), keeps image
bases and server disks under --data-dir, and runs servers as libvirt
domains, under KVM when a probe guest runs under it and TCG otherwise
(--accel).

With --driver fake it runs --hosts simulated hosts named PREFIX-1..PREFIX-N,
each of the size given by --host-vcpus, --host-ram-mib and --host-disk-gib.
keel serve must expose its NATS: keel serve --nats-listen 127.0.0.1:4222.

The embedded NATS of keel serve admits only holders of the agents' nkey seed,
which it keeps in DATA_DIR/agent.nk (mode 0600): pass that file (or a copy,
kept as private) with --credentials. For now this one credential gives full
access to the event store; per-host credentials come later.

Servers carry a generated admin password sealed with keel serve's secrets
key; the agent opens it to put it in the guest's first-boot seed. Pass
that key with --secrets-key DATA_DIR/secrets.key (or a copy, kept as
private); without it, builds of servers with a password fail on this host,
saying why. Per-host trust will replace this: keel serve will send each host
its own work, and agents will hold no key that opens every server's secret.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats", envOr("KEEL_NATS", "nats://127.0.0.1:4222"), "NATS URL of the control plane")
	fl.StringVar(&f.creds, "credentials", os.Getenv("KEEL_NATS_CREDENTIALS"), "nkey seed file to connect with, e.g. ./keel-data/agent.nk (env KEEL_NATS_CREDENTIALS)")
	fl.StringVar(&f.secretsKey, "secrets-key", os.Getenv("KEEL_SECRETS_KEY"), "keel serve's secrets key file, e.g. ./keel-data/secrets.key, to open generated passwords (env KEEL_SECRETS_KEY)")
	fl.StringVar(&f.driver, "driver", "fake", "hypervisor driver: libvirt (a real compute node) or fake (simulated hosts)")
	fl.StringVar(&f.libvirtURI, "libvirt-uri", "qemu:///system", "libvirt connection (--driver libvirt); ?socket=PATH names libvirtd's socket")
	fl.StringVar(&f.hostName, "host-name", "", "name the node registers as (--driver libvirt; default: the machine's hostname)")
	fl.StringVar(&f.dataDir, "data-dir", "/var/lib/keel-agent", "image cache and server disks (--driver libvirt)")
	fl.StringVar(&f.accel, "accel", "auto", "auto (KVM when a probe guest runs under it, else TCG), kvm or tcg (--driver libvirt)")
	fl.DurationVar(&f.syncEvery, "sync-every", agent.DefaultSyncEvery, "how often a libvirt node compares what it runs with what Keel recorded (also on every domain event); 0: never (--driver libvirt)")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long a graceful stop may take before the server is forced off; keep it below keel serve's --action-timeout (--driver libvirt)")
	fl.IntVar(&f.hosts, "hosts", 1, "number of simulated hosts")
	fl.StringVar(&f.prefix, "host-prefix", defaultPrefix(), "simulated hosts are named PREFIX-1..PREFIX-N")
	fl.StringVar(&f.name, "name", "", "agent name (its durable consumer); default: the host prefix")
	fl.IntVar(&f.vcpus, "host-vcpus", 32, "vCPUs of each simulated host")
	fl.IntVar(&f.ramMiB, "host-ram-mib", 131072, "RAM of each simulated host")
	fl.IntVar(&f.diskGiB, "host-disk-gib", 2000, "disk of each simulated host")
	fl.DurationVar(&f.latency, "fake-latency", 200*time.Millisecond, "latency of each simulated hypervisor call")
	fl.Float64Var(&f.failRate, "fake-fail-rate", 0, "probability that a simulated spawn fails")
	fl.DurationVar(&f.heartbeat, "heartbeat", 5*time.Second, "heartbeat period")
	fl.Float64Var(&f.cpuRatio, "cpu-ratio", host.DefaultRatios.CPU, "CPU overcommit ratio of new hosts")
	fl.Float64Var(&f.ramRatio, "ram-ratio", host.DefaultRatios.RAM, "RAM overcommit ratio of new hosts")
	fl.Float64Var(&f.diskRatio, "disk-ratio", host.DefaultRatios.Disk, "disk overcommit ratio of new hosts")
	fl.StringSliceVar(&f.traits, "trait", nil, "a trait of every simulated host (repeatable), e.g. gpu")
	fl.StringVar(&f.stateDir, "state-dir", "./keel-agent-data", "where simulated hosts keep their servers across restarts (\"\" keeps them in memory)")
	fl.IntVar(&f.parkAttempts, "park-attempts", eventlog.DefaultParkAttempts, "park a commit whose work failed this many times (and for --park-after); see keel parked")
	fl.DurationVar(&f.parkAfter, "park-after", eventlog.DefaultParkAfter, "park a commit only once its work has been failing for this long")
	fl.DurationVar(&f.parkPoll, "park-poll", eventlog.DefaultParkPoll, "how often parked commits marked for retry are looked for")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	fl.StringVar(&f.logFormat, "log-format", "text", logFormatFlag)
	return cmd
}

func runAgent(f agentFlags) error {
	if f.driver != "fake" && f.driver != "libvirt" {
		return fmt.Errorf("unknown driver %q: libvirt or fake", f.driver)
	}
	if f.hosts < 1 {
		return errors.New("--hosts must be at least 1")
	}
	log, err := newLogger(os.Stderr, f.logFormat, f.verbose)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := connectAgent(f)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := keeljs.Attach(ctx, nc)
	if err != nil {
		return err
	}
	app := commands.NewApp(store)
	var box agent.Opener
	if f.secretsKey != "" {
		b, err := secrets.LoadFile(f.secretsKey)
		if err != nil {
			return err
		}
		box = b
	} else {
		log.Warn("no --secrets-key: servers with a generated password cannot be built on this agent's hosts")
	}
	var hosts []agent.Host
	if f.driver == "libvirt" {
		h, closeConn, err := libvirtHost(ctx, f, store, log)
		if err != nil {
			return err
		}
		defer closeConn()
		hosts, f.prefix, f.hosts = []agent.Host{h}, h.Info.Name, 1
	} else {
		var sims []*fake.Host
		hosts, sims = fake.Fleet(f.prefix, f.hosts, fake.Knobs{Latency: f.latency, FailRate: f.failRate}, f.vcpus, f.ramMiB, f.diskGiB)
		if f.stateDir != "" {
			if err := fake.PersistFleet(sims, f.stateDir); err != nil {
				return err
			}
		}
	}
	ratios := host.Ratios{CPU: f.cpuRatio, RAM: f.ramRatio, Disk: f.diskRatio}
	for i := range hosts {
		hosts[i].Info.Ratios, hosts[i].Info.Traits = &ratios, f.traits
	}
	name := f.name
	if name == "" {
		name = f.prefix
	}
	lot, err := store.ParkingLot(ctx)
	if err != nil {
		return err
	}
	// Work that keeps failing is parked (keel parked list) rather than
	// holding up the later work of its server.
	events := &eventlog.Parking{Subscriber: store, Lot: lot, Commits: store,
		MaxAttempts: f.parkAttempts, After: f.parkAfter, Poll: f.parkPoll}
	ag := &agent.Agent{Name: name, App: app, Events: events, Hosts: hosts, Log: log, Secrets: box,
		Publish: nc.Publish, Flush: nc.Flush, HeartbeatEvery: f.heartbeat, Respond: keeljs.Responder(nc)}
	if f.driver == "libvirt" {
		ag.SyncEvery = f.syncEvery // simulated hosts cannot drift
	}
	log.Info("agent starting", "driver", f.driver, "hosts", f.hosts, "prefix", f.prefix, "nats", f.natsURL)
	err = ag.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// connectAgent connects to the control plane's NATS with the credentials of
// f, if any.
func connectAgent(f agentFlags) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("keel-agent-" + f.prefix), nats.MaxReconnects(-1)}
	if f.creds != "" {
		creds, err := keeljs.CredentialsOption(f.creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, creds)
	}
	nc, err := nats.Connect(f.natsURL, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("connect to %s: %w (pass the agents' credentials of keel serve: --credentials DATA_DIR/agent.nk)", f.natsURL, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s (does keel serve run with --nats-listen?): %w", f.natsURL, err)
	}
	return nc, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultPrefix() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "fake"
	}
	return "fake-" + h
}
