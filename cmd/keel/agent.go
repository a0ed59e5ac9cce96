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
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/eventlog"
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
	creds                         string // credentials file (package hostlink)
	parkAttempts                  int
	parkAfter                     time.Duration
	libvirtURI, hostName, dataDir string
	accel                         string
	stopTimeout                   time.Duration
	syncEvery                     time.Duration
}

func agentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a host agent: a libvirt compute node (--driver libvirt) or simulated hosts (--driver fake)",
		Long: `Run a host agent. It registers its hosts, sends heartbeats, reads the work
keel serve gives its hosts, drives their hypervisors and reports results;
keel serve checks each report before it becomes a command.

With --driver libvirt it runs this machine as the compute node --host-name:
it reads its capacity and CPU from libvirt (--libvirt-uri), keeps image
bases and server disks under --data-dir, and runs servers as libvirt
domains, under KVM when a probe guest runs under it and TCG otherwise
(--accel).

With --driver fake it runs --hosts simulated hosts named PREFIX-1..PREFIX-N,
each of the size given by --host-vcpus, --host-ram-mib and --host-disk-gib.
keel serve must expose its NATS: keel serve --nats-listen 127.0.0.1:4222.

A compute node is not trusted with the cloud. It connects with credentials
of its own, issued where keel serve runs:

  keel host credentials NODE -o node.creds   # then copy it to NODE, mode 0600
  keel agent --driver libvirt --credentials node.creds --nats nats://CONTROL:4222

With them it reads only its own host's work and speaks only for its own
host; it never reads or writes the event log, and keel serve checks each
report (is this server on this host?) before it becomes a command. The
admin passwords of its builds come sealed to its own key. The host name
defaults to the one in the credentials.

Simulated fleets (--driver fake) connect with keel serve's DATA_DIR/agent.nk
(mode 0600; pass it or a copy with --credentials): it speaks for simulated
hosts only, never for a host with credentials of its own. keel serve lets
them in when it runs simulated hosts itself (--fake-hosts, 3 by default) or
with --simulated-agents.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats", envOr("KEEL_NATS", "nats://127.0.0.1:4222"), "NATS URL of the control plane")
	fl.StringVar(&f.creds, "credentials", os.Getenv("KEEL_NATS_CREDENTIALS"), "credentials file: a compute node's own (keel host credentials NAME), or ./keel-data/agent.nk for simulated hosts (env KEEL_NATS_CREDENTIALS)")
	fl.StringVar(&f.driver, "driver", "fake", "hypervisor driver: libvirt (a real compute node) or fake (simulated hosts)")
	fl.StringVar(&f.libvirtURI, "libvirt-uri", "qemu:///system", "libvirt connection (--driver libvirt); ?socket=PATH names libvirtd's socket")
	fl.StringVar(&f.hostName, "host-name", "", "name the node registers as (--driver libvirt; default: the host of its credentials)")
	fl.StringVar(&f.dataDir, "data-dir", "/var/lib/keel-agent", "image cache and server disks (--driver libvirt)")
	fl.StringVar(&f.accel, "accel", "auto", "auto (KVM when a probe guest runs under it, else TCG), kvm or tcg (--driver libvirt)")
	fl.DurationVar(&f.syncEvery, "sync-every", agent.DefaultSyncEvery, "how often a libvirt node compares what it runs with what Keel recorded (also on every domain event); 0: never (--driver libvirt)")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long a graceful stop may take before the server is forced off; keep it below keel serve's --action-timeout (--driver libvirt)")
	fl.IntVar(&f.hosts, "hosts", 1, "number of simulated hosts")
	fl.StringVar(&f.prefix, "host-prefix", defaultPrefix(), "simulated hosts are named PREFIX-1..PREFIX-N")
	fl.StringVar(&f.name, "name", "", "agent name (a simulated fleet's work consumer); default: the host prefix")
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
	fl.IntVar(&f.parkAttempts, "park-attempts", eventlog.DefaultParkAttempts, "park a piece of work that failed this many times (and for --park-after) in keel serve; see keel parked")
	fl.DurationVar(&f.parkAfter, "park-after", eventlog.DefaultParkAfter, "park a piece of work only once it has been failing for this long")
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
	creds, err := agentCredentials(&f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := f.name
	if name == "" {
		name = f.prefix
		if f.driver == "libvirt" {
			name = f.hostName
		}
	}
	link, err := hostlink.Connect(f.natsURL, creds, name, log)
	if errors.Is(err, nats.ErrAuthorization) {
		return fmt.Errorf("connect to %s: %w (are these credentials current? keel host credentials issues new ones)", f.natsURL, err)
	}
	if err != nil {
		return fmt.Errorf("connect to %s (does keel serve run with --nats-listen?): %w", f.natsURL, err)
	}
	defer link.Close()
	link.ParkAttempts, link.ParkAfter = f.parkAttempts, f.parkAfter
	var hosts []agent.Host
	if f.driver == "libvirt" {
		h, closeConn, err := libvirtHost(ctx, f, link, log)
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
	ag := &agent.Agent{Name: name, Link: link, Hosts: hosts, Log: log, HeartbeatEvery: f.heartbeat}
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

// agentCredentials reads the credentials of f: a compute node's own
// (required with --driver libvirt, whose host name they give), or the
// simulated fleet's. A fleet without credentials connects without (an
// external NATS that does not ask).
func agentCredentials(f *agentFlags) (*hostlink.Credentials, error) {
	if f.creds == "" {
		if f.driver == "libvirt" {
			return nil, errors.New("a compute node connects with credentials of its own: run `keel host credentials NAME -o FILE` where keel serve runs, copy FILE here (mode 0600) and pass --credentials FILE")
		}
		seal, err := nkeys.CreateCurveKeys()
		if err != nil {
			return nil, err
		}
		return &hostlink.Credentials{Host: hostlink.Fleet, Seal: seal}, nil
	}
	creds, err := hostlink.ReadCredentials(f.creds)
	if err != nil {
		return nil, err
	}
	switch {
	case f.driver == "libvirt" && creds.Host == hostlink.Fleet:
		return nil, fmt.Errorf("%s holds the simulated fleet's credentials; a compute node needs its own: keel host credentials NAME", f.creds)
	case f.driver == "libvirt" && f.hostName == "":
		f.hostName = creds.Host
	case f.driver == "libvirt" && f.hostName != creds.Host:
		return nil, fmt.Errorf("%s holds the credentials of host %s, not %s", f.creds, creds.Host, f.hostName)
	case f.driver == "fake" && creds.Host != hostlink.Fleet:
		return nil, fmt.Errorf("%s holds the credentials of host %s; simulated hosts connect with keel serve's DATA_DIR/agent.nk", f.creds, creds.Host)
	}
	return creds, nil
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
