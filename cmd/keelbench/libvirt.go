package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keel-cloud/keel/domain/server"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// The libvirt figure's server: the smallest flavor the test guest runs in.
const (
	lvVCPUs   = 1
	lvRAMMiB  = 256
	lvDiskGiB = 1
	lvHost    = "node-bench"
	lvPoll    = 20 * time.Millisecond // both paths poll their "running" at this period
)

// lvBench is a whole compute node: a private libvirtd, a node with an
// in-process agent driving it through the libvirt driver, and the test
// guest uploaded as an image.
type lvBench struct {
	e       *benchEnv
	l       *golibvirt.Libvirt // the bench's own connection, for the baseline
	drv     *libvirt.Driver
	dir     string // the driver's directory (bases/, servers/)
	domType string
	cpuMode string
	n       *node.Node
	c       *client
}

// runLibvirt times create-to-running of a real guest through Keel (POST
// /v1/servers until the server reads ACTIVE) against the same domain made
// directly (qcow2 overlay on the same cached base, NoCloud seed, define and
// start with the driver's domain XML, until libvirt says running), in
// alternating rounds in the same run. A warm-up create through Keel first
// fetches the image into the node's cache, so neither path downloads it;
// its server stays (idle) through the rounds, so that the node does not
// evict the cached base when the rounds' servers are deleted.
func runLibvirt(ctx context.Context, e *benchEnv, res *results) error {
	b, err := startLibvirtBench(ctx, e)
	if err != nil {
		return err
	}
	if _, err := b.keelRound(ctx, "warmup", true); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	base, err := b.base()
	if err != nil {
		return err
	}
	var direct, keel []time.Duration
	for round := range max(e.cfg.Rounds, 1) {
		d, err := b.directRound(ctx, base, round)
		if err != nil {
			return fmt.Errorf("direct round %d: %w", round+1, err)
		}
		k, err := b.keelRound(ctx, fmt.Sprintf("vm-%d", round+1), false)
		if err != nil {
			return fmt.Errorf("keel round %d: %w", round+1, err)
		}
		logf("round %d: direct libvirt %s, keel %s", round+1, d.Round(time.Millisecond), k.Round(time.Millisecond))
		direct, keel = append(direct, d), append(keel, k)
	}
	dm, km := median(direct), median(keel)
	logf("domain type %s; direct %v, keel %v", b.domType, rounded(direct), rounded(keel))
	res.add("libvirt_create_to_running_ms", ms(km), "ms", 0, float64(km)/float64(dm))
	res.add("libvirt_direct_create_to_running_ms", ms(dm), "ms", 0, none)
	return nil
}

// startLibvirtBench starts the daemon, the node, the agent, and seeds the
// flavor and the image.
func startLibvirtBench(ctx context.Context, e *benchEnv) (*lvBench, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the libvirt figure runs a private libvirtd and QEMU as root: run keelbench as root, or leave libvirt out of -figures")
	}
	d, stop, err := lvtest.StartDaemon("")
	if err != nil {
		return nil, fmt.Errorf("start a private libvirtd: %w", err)
	}
	e.defer_(stop)
	guest, err := lvtest.BuildGuestImage()
	if err != nil {
		return nil, err
	}
	b := &lvBench{e: e, dir: filepath.Join(d.Dir, "agent")}
	if b.l, err = d.Connect(); err != nil {
		return nil, err
	}
	e.defer_(b.l.Disconnect)
	accel := libvirt.DetectAccel(ctx, "qemu-system-x86_64")
	b.domType, b.cpuMode = accel.DomainType, accel.CPUMode
	logf("private libvirtd at %s; domain type %s, cpu mode %q (%s)", d.Socket, b.domType, b.cpuMode, accel.Why)
	if err := b.startNode(ctx); err != nil {
		return nil, err
	}
	if err := b.startAgent(ctx); err != nil {
		return nil, err
	}
	return b, b.seed(ctx, guest)
}

// startNode starts keel serve in-process without simulated hosts.
func (b *lvBench) startNode(ctx context.Context) error {
	url, _, err := b.e.database(ctx, "bench_libvirt")
	if err != nil {
		return err
	}
	b.n, err = node.Start(ctx, node.Config{AdminPassword: adminPassword, Limits: httpapi.Limits{Rate: -1, ProjectOperations: -1}, DataDir: filepath.Join(b.e.dir, "node-libvirt"), Listen: "127.0.0.1:0",
		DatabaseURL: url, Log: b.e.log})
	if err != nil {
		return err
	}
	b.e.defer_(func() error { b.n.Close(); return nil })
	b.c, err = newClient(ctx, b.n.URL, 1)
	return err
}

// startAgent runs the host agent with the libvirt driver in this process,
// as keel agent --driver libvirt does.
func (b *lvBench) startAgent(ctx context.Context) error {
	creds, err := b.n.Keys.Issue(ctx, lvHost)
	if err != nil {
		return err
	}
	link, err := hostlink.Connect("", creds, lvHost, b.e.log, nats.InProcessServer(b.n.Embedded.Server))
	if err != nil {
		return err
	}
	b.e.defer_(func() error { link.Close(); return nil })
	b.drv, err = libvirt.New(libvirt.Config{Conn: b.l, Dir: b.dir, DomainType: b.domType, CPUMode: b.cpuMode, Log: b.e.log,
		StopTimeout: 5 * time.Second,
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
			return link.Image(ctx, lvHost, object)
		}})
	if err != nil {
		return err
	}
	info, err := b.drv.HostInfo(lvHost)
	if err != nil {
		return err
	}
	ag := &agent.Agent{Name: lvHost, Link: link, Hosts: []agent.Host{{Info: info, Driver: b.drv}}, Log: b.e.log, HeartbeatEvery: time.Second}
	if err := ag.Register(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(runCtx) }()
	b.e.defer_(func() error { cancel(); <-done; return nil })
	return b.waitHostUp(ctx)
}

func (b *lvBench) waitHostUp(ctx context.Context) error {
	return pollUntil(ctx, 30*time.Second, func() (bool, error) {
		h, _, err := api.Get[api.Host](ctx, b.c.api, api.Path(api.Hosts, lvHost), api.Opts{})
		return err == nil && h.State == "up", nil
	})
}

// seed creates the flavor and uploads the test guest as a qcow2 image.
func (b *lvBench) seed(ctx context.Context, guest string) error {
	c := b.c.api
	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "m1.tiny", VCPUs: lvVCPUs, RAMMiB: lvRAMMiB, DiskGiB: lvDiskGiB}, api.Opts{}); err != nil {
		return fmt.Errorf("create flavor: %w", err)
	}
	im, _, err := api.Create[api.Image](ctx, c, api.Images, api.ImageBody{Name: "keel-test-guest", DiskFormat: "qcow2"}, api.Opts{})
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	f, err := os.Open(guest)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Images, im.ID, "file"), Raw: f,
		RawType: "application/octet-stream", RawLength: st.Size()}, nil)
	if err != nil {
		return fmt.Errorf("upload the test guest: %w", err)
	}
	return nil
}

// keelRound creates a server through the API, times it until the event
// stream tells the build's outcome and the server, read at that commit,
// is ACTIVE with no task; then deletes it (not timed) unless keep.
func (b *lvBench) keelRound(ctx context.Context, name string, keep bool) (time.Duration, error) {
	c := b.c.api
	start := time.Now()
	acc, res, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: name, Flavor: "m1.tiny", Image: "keel-test-guest"}, api.Opts{})
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	id := acc.Server.ID
	// Told, not polled: the server's commits after the create's, from the
	// live event stream, until the build's outcome; then the server read
	// at that commit.
	outcome, err := b.awaitEvent(ctx, id, res.Sequence, server.TypeSpawned, server.TypeFailed)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{MinSequence: outcome.Sequence})
	if err == nil && (s.Status != "ACTIVE" || s.Task != nil) {
		err = fmt.Errorf("server %s is %s (task %v) after its %s: %v", name, s.Status, deref(s.Task), outcome.Events[0].Type, deref(s.Reason))
	}
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	b.logSteps(ctx, name, acc.OperationID, took)
	if keep {
		return took, nil
	}
	if _, err := api.Delete(ctx, c, api.Path(api.Servers, id), api.Opts{}, nil); err != nil {
		return 0, fmt.Errorf("delete %s: %w", name, err)
	}
	return took, pollUntil(ctx, time.Minute, func() (bool, error) {
		_, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, id), api.Opts{})
		return api.IsStatus(err, 404), nil
	})
}

// logSteps logs where a create's time went: the steps of its operation as
// Keel recorded them, against the time the client saw.
func (b *lvBench) logSteps(ctx context.Context, name, opID string, took time.Duration) {
	var op api.Operation
	// The operation's row may trail the server's by a commit.
	err := pollUntil(ctx, 5*time.Second, func() (bool, error) {
		var err error
		op, _, err = api.Get[api.Operation](ctx, b.c.api, api.Path(api.Operations, opID), api.Opts{})
		return err == nil && op.Status == "succeeded", err
	})
	if err != nil {
		logf("%s: operation %s: %v", name, opID, err)
		return
	}
	line := fmt.Sprintf("%s: %s to ACTIVE;", name, took.Round(time.Millisecond))
	for _, st := range op.Steps {
		if st.StartedAt != nil && st.FinishedAt != nil {
			line += fmt.Sprintf(" %s %s (from %s)", st.Name, st.FinishedAt.Sub(*st.StartedAt).Round(time.Millisecond),
				st.StartedAt.Sub(op.CreatedAt).Round(time.Millisecond))
		}
	}
	logf("%s", line)
}

// base is the node's cached base of the test guest, which the warm-up
// fetched.
func (b *lvBench) base() (string, error) {
	bases, err := filepath.Glob(filepath.Join(b.dir, "bases", "*"))
	if err != nil {
		return "", err
	}
	if len(bases) != 1 {
		return "", fmt.Errorf("want one cached base in %s, found %v", b.dir, bases)
	}
	return bases[0], nil
}

// directRound does by hand what the driver's spawn does: a qcow2 overlay
// on the cached base, a NoCloud seed, the same domain XML, define, start,
// and times it until libvirt says running; then destroys and undefines it
// (not timed).
func (b *lvBench) directRound(ctx context.Context, base string, round int) (time.Duration, error) {
	id := uuid.NewString()
	dir := filepath.Join(b.dir, "direct", id)
	start := time.Now()
	dom, err := b.defineAndStart(ctx, base, dir, id, fmt.Sprintf("direct-%d", round+1))
	if err != nil {
		return 0, err
	}
	err = pollUntil(ctx, time.Minute, func() (bool, error) {
		state, _, err := b.l.DomainGetState(dom, 0)
		return golibvirt.DomainState(state) == golibvirt.DomainRunning, err
	})
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if err := b.l.DomainDestroyFlags(dom, 0); err != nil {
		return 0, fmt.Errorf("destroy %s: %w", dom.Name, err)
	}
	if err := b.l.DomainUndefineFlags(dom, 0); err != nil {
		return 0, fmt.Errorf("undefine %s: %w", dom.Name, err)
	}
	return took, os.RemoveAll(dir)
}

func (b *lvBench) defineAndStart(ctx context.Context, base, dir, id, name string) (golibvirt.Domain, error) {
	var dom golibvirt.Domain
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return dom, err
	}
	root, seed := filepath.Join(dir, "root.qcow2"), filepath.Join(dir, "seed.iso")
	if err := libvirt.CreateOverlay(ctx, base, libvirt.Image{Format: "qcow2"}.BaseFormat(), root, lvDiskGiB<<30); err != nil {
		return dom, err
	}
	if err := writeSeed(ctx, dir, seed, id, name); err != nil {
		return dom, err
	}
	x, err := libvirt.DomainXML(libvirt.DomainSpec{ID: id, Name: name, Type: b.domType, CPUMode: b.cpuMode, VCPUs: lvVCPUs, RAMMiB: lvRAMMiB,
		Disks:      []libvirt.Disk{{Path: root, Format: "qcow2", Bootable: true}, {Path: seed, Format: "raw", CDROM: true}},
		ConsoleLog: filepath.Join(dir, "console.log")})
	if err != nil {
		return dom, err
	}
	if dom, err = b.l.DomainDefineXMLFlags(x, 0); err != nil {
		return dom, fmt.Errorf("define %s: %w", name, err)
	}
	if err := b.l.DomainCreate(dom); err != nil {
		return dom, fmt.Errorf("start %s: %w", name, err)
	}
	return dom, nil
}

// writeSeed makes the NoCloud seed ISO the way the driver does
// (genisoimage, volume label cidata) with the driver's default user-data.
func writeSeed(ctx context.Context, dir, path, id, name string) error {
	files := map[string]string{"meta-data": fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", id, name),
		"user-data": "#cloud-config\n{}\n"}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o600); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "genisoimage", "-quiet", "-output", path, "-volid", "cidata", "-joliet", "-rock",
		filepath.Join(dir, "meta-data"), filepath.Join(dir, "user-data")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("genisoimage: %w: %s", err, out)
	}
	return nil
}

// pollUntil calls done every lvPoll until it says true or fails, or timeout.
func pollUntil(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lvPoll):
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, 50)
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// awaitEvent follows the live event stream (GET /v1/events/stream) of
// server id from the commit after seq until a commit with one of the event
// types; it returns that commit.
func (b *lvBench) awaitEvent(ctx context.Context, id string, seq uint64, types ...string) (api.Commit, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	q := url.Values{"aggregate_type": {"server"}, "aggregate_id": {id}, "since": {strconv.FormatUint(seq, 10)}}
	resp, err := b.c.api.Stream(ctx, api.Events+"/stream", api.Opts{Query: q})
	if err != nil {
		return api.Commit{}, err
	}
	defer resp.Body.Close()
	var found api.Commit
	errFound := errors.New("found")
	err = api.ReadSSE(resp.Body, func(event string, data []byte) error {
		var c api.Commit
		if event != "commit" || json.Unmarshal(data, &c) != nil {
			return nil
		}
		for _, e := range c.Events {
			if slices.Contains(types, e.Type) {
				found = c
				return errFound
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return found, nil
	}
	if err != nil {
		return api.Commit{}, fmt.Errorf("event stream: %w", err)
	}
	return api.Commit{}, fmt.Errorf("event stream of server %s ended before any of %v", id, types)
}
