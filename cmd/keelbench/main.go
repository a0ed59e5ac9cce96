// Command keelbench measures Keel against baselines measured in the same run,
// on the same machine, disk and servers: the HTTP command path against raw
// JetStream appends of the same size and durability, the projection runner
// against raw batched pgx inserts, the projection lag at a steady commit
// rate, the time to rebuild the whole read model from the event log,
// the cold load of a long-lived host from its snapshot against a full replay,
// and the create-to-running of a real guest through Keel against the same
// domain defined and started directly in libvirt.
//
// It starts everything it needs itself (a private Postgres under a
// temporary directory, embedded NATS servers with SyncAlways, a whole node
// for the command path; a private libvirtd, run as root, for the libvirt
// figure) and stops it all at the end, also on error or Ctrl-C. It ends
// with one summary line per figure:
//
//	BENCH <name> <value> <unit> ratio=<value against its baseline, or ->
//
// Usage:
//
//	go run ./cmd/keelbench          # full run, about 6 minutes on 2 cores (root: libvirt)
//	go run ./cmd/keelbench -quick   # smoke run, about a minute
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the flags.
type config struct {
	Figures       string
	Clients       int
	Rounds        int
	CmdDuration   time.Duration
	Warmup        time.Duration
	FakeHosts     int
	ProjCommits   int
	LagRate       int
	LagDuration   time.Duration
	LagAll        bool
	RebuildCommit int
	Writers       int
	Verbose       bool
	CPUProfile    string

	PlaceHosts      []int // host counts of the placement figure
	PlaceCreates    int   // creates per placement run
	PlaceCreatesPer []int // creates per host count, overrides PlaceCreates
	ScaleHosts      int
	ScaleServers    int
	ColdCommits     int // commits of the host loaded cold by the coldload figure
	AuditRecords    int // chained records the audit figure verifies
	NetworkPorts    int // ports created through Keel (and raw) by the network figure
}

func parseFlags() config {
	c := config{}
	quick := flag.Bool("quick", false, "smoke run: small counts and short durations (about a minute)")
	flag.StringVar(&c.Figures, "figures", "command,projection,rebuild,scheduler,placement,scale,coldload,audit,libvirt,network", "comma-separated figures to run")
	flag.IntVar(&c.Clients, "clients", 32, "concurrent HTTP clients, and concurrent raw publishers")
	flag.IntVar(&c.Rounds, "rounds", 3, "rounds of the command figure; each runs the baselines and the API in turn")
	flag.DurationVar(&c.CmdDuration, "cmd-duration", 10*time.Second, "measured duration of each command-path run, per round")
	flag.DurationVar(&c.Warmup, "warmup", time.Second, "unmeasured warm-up before each command-path run")
	flag.IntVar(&c.FakeHosts, "fake-hosts", 20, "simulated hosts of the node (huge capacity, no latency)")
	flag.IntVar(&c.ProjCommits, "proj-commits", 20000, "server commits appended before the projection catch-up")
	flag.IntVar(&c.LagRate, "lag-rate", 1000, "commits per second appended while measuring projection lag")
	flag.DurationVar(&c.LagDuration, "lag-duration", 10*time.Second, "duration of the paced lag run")
	flag.BoolVar(&c.LagAll, "lag-all", true, "measure lag with all projections (false: only servers)")
	flag.IntVar(&c.RebuildCommit, "rebuild-commits", 100000, "commits in the log rebuilt by the rebuild figure")
	flag.IntVar(&c.Writers, "writers", 64, "concurrent writers when filling the log")
	flag.BoolVar(&c.Verbose, "v", false, "log the warnings of the code under test too (errors are always logged)")
	flag.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run (everything runs in this process) to this file")
	placeHosts := flag.String("placement-hosts", "1000,10000", "simulated host counts of the placement figure")
	placeCreates := flag.String("placement-creates", "2000,1000", "creates per placement run, one per host count (the last one repeats)")
	flag.IntVar(&c.ScaleHosts, "scale-hosts", 10000, "hosts registered in the log of the scale figure")
	flag.IntVar(&c.ScaleServers, "scale-servers", 25000, "servers built in the log of the scale figure (4 commits each; 100000 takes far longer than the run budget, see docs/benchmarks.md)")
	flag.IntVar(&c.ColdCommits, "coldload-commits", 10000, "commits of the long-lived host the coldload figure loads after a restart")
	flag.IntVar(&c.NetworkPorts, "network-ports", 1000, "ports the network figure creates through Keel, and raw")
	flag.IntVar(&c.AuditRecords, "audit-records", 1_000_000, "chained records in audit_records verified by the audit figure")
	flag.Parse()
	if *quick { // scale down what was not set explicitly
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quickly := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quickly("rounds", func() { c.Rounds = 1 })
		quickly("cmd-duration", func() { c.CmdDuration = 5 * time.Second })
		quickly("proj-commits", func() { c.ProjCommits = 3000 })
		quickly("lag-duration", func() { c.LagDuration = 3 * time.Second })
		quickly("rebuild-commits", func() { c.RebuildCommit = 10000 })
		quickly("placement-hosts", func() { *placeHosts = "100,1000" })
		quickly("placement-creates", func() { *placeCreates = "300" })
		quickly("scale-hosts", func() { c.ScaleHosts = 1000 })
		quickly("scale-servers", func() { c.ScaleServers = 10000 })
		quickly("audit-records", func() { c.AuditRecords = 100_000 })
		quickly("network-ports", func() { c.NetworkPorts = 200 })
	}
	c.PlaceHosts = ints(*placeHosts)
	c.PlaceCreatesPer = ints(*placeCreates)
	c.PlaceCreates = 1000
	if len(c.PlaceCreatesPer) > 0 {
		c.PlaceCreates = c.PlaceCreatesPer[len(c.PlaceCreatesPer)-1]
	}
	return c
}

// ints parses a comma-separated list of positive integers (bad items are skipped).
func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func (c config) wants(figure string) bool {
	for _, f := range strings.Split(c.Figures, ",") {
		if strings.TrimSpace(f) == figure {
			return true
		}
	}
	return false
}

func main() {
	cfg := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keelbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (err error) {
	start := time.Now()
	if cfg.CPUProfile != "" {
		stop, err := profile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	env, err := setup(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.close()) }()
	var res results
	for _, f := range []struct {
		name string
		run  func(context.Context, *benchEnv, *results) error
	}{{"command", runCommand}, {"projection", runProjection}, {"rebuild", runRebuild},
		{"scheduler", runScheduler}, {"placement", runPlacement}, {"scale", runScale}, {"coldload", runColdLoad}, {"audit", runAudit},
		{"libvirt", runLibvirt}, {"libvirt-sync", runLibvirtSync}, {"network", runNetwork}} {
		if !cfg.wants(f.name) {
			continue
		}
		logf("=== %s", f.name)
		if err := f.run(ctx, env, &res); err != nil {
			res.print(os.Stdout)
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	logf("done in %s (%s)", time.Since(start).Round(time.Second), otherLoad())
	res.print(os.Stdout)
	return nil
}

// logf prints progress to stderr, so stdout holds the summary only.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// nodeLogger is the logger given to the code under test.
func nodeLogger(verbose bool) *slog.Logger {
	level := slog.LevelError
	if verbose {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func profile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
