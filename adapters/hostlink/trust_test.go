package hostlink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// lockedBuffer is a log sink tests read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cloud is keel serve's side on an embedded NATS that polices who connects
// (hostlink.Access), as keel serve runs it.
type cloud struct {
	e     *keeljs.Embedded
	app   *commands.App
	local *hostlink.Local
	logs  *lockedBuffer
}

func startCloud(t *testing.T, ctx context.Context) *cloud {
	t.Helper()
	access := hostlink.NewAccess()
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: t.TempDir(), SyncAlways: true, Auth: access, Listen: "127.0.0.1:-1"})
	must(t, err)
	t.Cleanup(e.Close)
	access.Kick = hostlink.KickUser(e.Server)
	if _, err := keeljs.Open(ctx, e.Conn, 1, 0); err != nil { // the event log: no host may touch it
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := memlog.New()
	app := commands.NewApp(log)
	local, err := hostlink.StartLocal(ctx, e.Conn, access, app, log, nil, nil, slog.New(slog.NewTextHandler(logs, nil)))
	must(t, err)
	return &cloud{e: e, app: app, local: local, logs: logs}
}

// connect connects as creds, recording the permission errors the server
// sends back.
func (c *cloud) connect(t *testing.T, creds *hostlink.Credentials, denied *[]string, mu *sync.Mutex) *hostlink.Client {
	t.Helper()
	link, err := hostlink.Connect("", creds, "t", slog.New(slog.DiscardHandler), nats.InProcessServer(c.e.Server),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			*denied = append(*denied, err.Error())
			mu.Unlock()
		}))
	must(t, err)
	t.Cleanup(link.Close)
	return link
}

// schedule records a server scheduled on host, its image object
// "obj-<name>".
func (c *cloud) schedule(t *testing.T, ctx context.Context, hostName, name string) string {
	t.Helper()
	return schedule(t, ctx, c.app, hostName, name, imageBytes{object: "obj-" + name, size: 1, sha256: "ab"})
}

func info(name string) agent.HostInfo {
	return agent.HostInfo{Name: name, Driver: "libvirt", VCPUs: 8, RAMMiB: 8192, DiskGiB: 100}
}

// A compute node is not trusted with the cloud: with host A's credentials
// an agent reads A's work and no other, can publish neither to host B's
// subjects nor to the event stream, and a report it forges about a server
// of host B is refused and logged, changing nothing.
func TestHostCredentialsHoldToTheirHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx)
	credsA, err := c.local.Keys.Issue(ctx, "host-a")
	must(t, err)
	credsB, err := c.local.Keys.Issue(ctx, "host-b")
	must(t, err)
	var mu sync.Mutex
	var deniedA, deniedB []string
	a := c.connect(t, credsA, &deniedA, &mu)
	b := c.connect(t, credsB, &deniedB, &mu)
	must(t, a.Register(ctx, info("host-a")))
	must(t, b.Register(ctx, info("host-b")))

	// A's library refuses to speak for B; on the wire, B's subjects are
	// closed to A's connection.
	if err := a.Register(ctx, info("host-b")); !errors.Is(err, hostlink.ErrNotMine) {
		t.Fatal("host A's link registered host B")
	}
	nc := a.Conn()
	idB := commands.HostID("host-b")
	for _, subj := range []string{
		hostlink.HostSubject(idB, hostlink.VerbReport, false),
		hostlink.HostSubject(idB, hostlink.VerbHeartbeat, false),
		hostlink.HostSubject(idB, hostlink.VerbReport, true), // the fleet's space too
		keeljs.Subject(server.AggregateType, "x"),            // the event stream
		"$JS.API.STREAM.INFO." + keeljs.StreamName,
		"$JS.API.CONSUMER.MSG.NEXT." + hostlink.WorkStream + "." + hostlink.ForwarderConsumer, // no JetStream API at all
		"$JS.API.CONSUMER.CREATE." + keeljs.StreamName,
	} {
		must(t, nc.Publish(subj, []byte("{}")))
	}
	if _, err := nc.Subscribe(keeljs.SubjectPrefix+">", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(hostlink.WorkSubject(idB, false), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	must(t, nc.Flush())
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(deniedA)
		mu.Unlock()
		if n >= 9 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	got := strings.Join(deniedA, "\n")
	mu.Unlock()
	for _, want := range []string{
		`Publish to "keel.host.` + idB + `.report"`, `Publish to "keel.host.` + idB + `.heartbeat"`, `Publish to "keel.sim.` + idB + `.report"`,
		`Publish to "keel.events.server.x"`, `Publish to "$JS.API.STREAM.INFO.KEEL_EVENTS"`,
		`Publish to "$JS.API.CONSUMER.MSG.NEXT.KEEL_WORK.forwarder"`, `Publish to "$JS.API.CONSUMER.CREATE.KEEL_EVENTS"`,
		`Subscription to "keel.events.>"`, `Subscription to "keel.work.` + idB + `"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("host A's connection was not refused %s; refusals:\n%s", want, got)
		}
	}
	js, err := jetstream.New(nc)
	must(t, err)
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := js.Consumer(sctx, hostlink.WorkStream, hostlink.ForwarderConsumer); err == nil {
		t.Error("host A opened the work stream's consumer")
	}
	scancel()

	// Work: each host gets its own server's, and only that.
	sidA := c.schedule(t, ctx, "host-a", "on-a")
	sidB := c.schedule(t, ctx, "host-b", "on-b")
	gotA := make(chan agent.Work, 4)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go func() {
		_ = a.Work(wctx, []string{"host-a"}, func(_ context.Context, w agent.Work) error { gotA <- w; return nil })
	}()
	select {
	case w := <-gotA:
		if w.Server != sidA || w.Host != "host-a" || w.Kind != agent.WorkSpawn || w.Spec == nil || w.Spec.Image.Object != "obj-on-a" {
			t.Fatalf("host A got work %+v; want the spawn of its server %s", w, sidA)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("host A got no work")
	}
	select {
	case w := <-gotA:
		t.Fatalf("host A got more work: %+v", w)
	case <-time.After(500 * time.Millisecond):
	}

	// A forged report about B's server: refused, logged, nothing changes.
	before, vBefore, err := c.app.Servers.LoadLatest(ctx, sidB)
	must(t, err)
	err = a.Report(ctx, "host-a", agent.WorkReport{Seq: 1, Server: sidB, Kind: server.ReportSpawned})
	if !errors.Is(err, hostlink.ErrRefused) || !strings.Contains(err.Error(), "is not on host host-a") {
		t.Fatalf("forged report answered %v", err)
	}
	after, vAfter, err := c.app.Servers.LoadLatest(ctx, sidB)
	must(t, err)
	if vAfter != vBefore || after.Status != before.Status || after.Task != server.Spawning {
		t.Fatalf("the forged report changed server %s: %s/%s v%d → %s/%s v%d", sidB, before.Status, before.Task, vBefore, after.Status, after.Task, vAfter)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "refused: a host spoke of a server that is not on it") || !strings.Contains(logs, sidB) {
		t.Fatalf("the forged report was not logged; log:\n%s", logs)
	}
	// Nor may A read B's image.
	r, err := a.Image(ctx, "host-a", "obj-on-b")
	must(t, err)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, hostlink.ErrRefused) {
		t.Fatalf("host A read host B's image: %v", err)
	}
	// A's own report goes through: its server is running.
	must(t, a.Report(ctx, "host-a", agent.WorkReport{Seq: 99, Server: sidA, Kind: server.ReportSpawned}))
	st, _, err := c.app.Servers.LoadLatest(ctx, sidA)
	must(t, err)
	if st.Status != server.StatusActive {
		t.Fatalf("host A's own report left its server %s", st.Status)
	}

	// The simulated fleet may not speak for a host with credentials of
	// its own.
	var deniedF []string
	f := c.connect(t, c.local.Fleet, &deniedF, &mu)
	err = f.Report(ctx, "host-a", agent.WorkReport{Seq: 2, Server: sidA, Kind: server.ReportStopped})
	if !errors.Is(err, hostlink.ErrRefused) || !strings.Contains(err.Error(), "credentials of its own") {
		t.Fatalf("the fleet spoke for host A: %v", err)
	}
	// Earlier credentials no longer connect once new ones are issued, and
	// a connection made with them is closed.
	if _, err := c.local.Keys.Issue(ctx, "host-a"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); a.Conn().IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("host A's connection with replaced credentials is still open")
		}
	}
	if !b.Conn().IsConnected() {
		t.Fatal("host B's connection was closed with A's")
	}
	if _, err := hostlink.Connect(c.e.ClientURL(), credsA, "t", slog.New(slog.DiscardHandler), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("replaced credentials connected: %v", err)
	}
	// Strangers do not connect at all.
	if _, err := nats.Connect(c.e.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a connection without credentials: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A host can make nothing publish into the event stream for it: not
// JetStream (a request's reply subject names where JetStream answers; a
// host has no JetStream API), not keel serve (it answers into the asker's
// inbox only). Nor can it answer for another host's work.
func TestHostsCannotRedirectIntoTheLogNorFinishOthersWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx)
	credsA, err := c.local.Keys.Issue(ctx, "host-a")
	must(t, err)
	_, err = c.local.Keys.Issue(ctx, "host-b")
	must(t, err)
	var mu sync.Mutex
	var denied []string
	a := c.connect(t, credsA, &denied, &mu)
	must(t, a.Register(ctx, info("host-a")))
	store, err := keeljs.Open(ctx, c.e.Conn, 1, 0)
	must(t, err)
	// host-b registers through keel serve's own side (its agent is away).
	registerHost(t, ctx, c.app, "host-b")
	sidB := c.schedule(t, ctx, "host-b", "on-b")
	head, err := store.LastSequence(ctx)
	must(t, err)

	nc := a.Conn()
	evil := keeljs.Subject(server.AggregateType, "evil")
	for _, subj := range []string{
		"$JS.API.CONSUMER.MSG.NEXT." + hostlink.WorkStream + "." + hostlink.ForwarderConsumer,
		hostlink.HostSubject(commands.HostID("host-a"), hostlink.VerbServers, false),
	} {
		m := nats.NewMsg(subj)
		m.Reply, m.Data = evil, []byte(`{"batch":1}`)
		must(t, nc.PublishMsg(m))
	}
	must(t, nc.Flush())
	time.Sleep(500 * time.Millisecond)
	if now, err := store.LastSequence(ctx); err != nil || now != head {
		t.Fatalf("the event log went from %d to %d commits (%v)", head, now, err)
	}

	// B's spawn waits in the work stream (B's agent is away); A names it.
	js, err := jetstream.New(c.e.Conn)
	must(t, err)
	st, err := js.Stream(ctx, hostlink.WorkStream)
	must(t, err)
	var seq uint64
	for deadline := time.Now().Add(5 * time.Second); seq == 0; time.Sleep(20 * time.Millisecond) {
		si, err := st.Info(ctx)
		must(t, err)
		seq = si.State.LastSeq
		if time.Now().After(deadline) {
			t.Fatal("host B's work never reached the work stream")
		}
	}
	forged := fmt.Sprintf("$JS.ACK.%s.%s.1.%d.1.0.0", hostlink.WorkStream, hostlink.ForwarderConsumer, seq)
	req, _ := json.Marshal(map[string]string{"ack": forged, "outcome": "ack"})
	rep, err := nc.Request(hostlink.HostSubject(commands.HostID("host-a"), hostlink.VerbDone, false), req, 5*time.Second)
	must(t, err)
	if !strings.Contains(string(rep.Data), "not this host's") {
		t.Fatalf("host A finishing host B's work was answered %s", rep.Data)
	}
	if _, err := st.GetMsg(ctx, seq); err != nil {
		t.Fatalf("host B's work is gone after host A said it was done: %v (server %s)", err, sidB)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "refused: a host answered for another host's work") {
		t.Fatalf("not logged:\n%s", logs)
	}
}

// Revoked credentials are taken away for good: the agent's connection is
// closed at once and does not come back, other hosts are untouched, a
// second revoke (or one of a host never given credentials) says there are
// none, and credentials issued afterwards connect again.
func TestRevokedHostCredentialsNoLongerConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx)
	credsA, err := c.local.Keys.Issue(ctx, "host-a")
	must(t, err)
	credsB, err := c.local.Keys.Issue(ctx, "host-b")
	must(t, err)
	var mu sync.Mutex
	var denied []string
	a := c.connect(t, credsA, &denied, &mu)
	b := c.connect(t, credsB, &denied, &mu)
	must(t, a.Register(ctx, info("host-a")))

	must(t, c.local.Keys.Revoke(ctx, "host-a"))
	for deadline := time.Now().Add(5 * time.Second); a.Conn().IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("host A's connection is still open after its credentials were revoked")
		}
	}
	if _, err := hostlink.Connect(c.e.ClientURL(), credsA, "t", slog.New(slog.DiscardHandler), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("revoked credentials connected: %v", err)
	}
	if !b.Conn().IsConnected() {
		t.Fatal("host B's connection was closed with A's")
	}
	must(t, b.Register(ctx, info("host-b")))
	if err := c.local.Keys.Revoke(ctx, "host-a"); !errors.Is(err, hostlink.ErrNoCredentials) || !strings.Contains(err.Error(), "revoked at") {
		t.Fatalf("second revoke: %v; want no credentials, revoked at a time", err)
	}
	if err := c.local.Keys.Revoke(ctx, "host-never"); !errors.Is(err, hostlink.ErrNoCredentials) {
		t.Fatalf("revoke of a host never given credentials: %v", err)
	}
	if !c.local.Keys.Own(commands.HostID("host-a")) {
		t.Fatal("a revoked host counts as simulated: the fleet could speak for it")
	}
	again, err := c.local.Keys.Issue(ctx, "host-a")
	must(t, err)
	a2 := c.connect(t, again, &denied, &mu)
	must(t, a2.Register(ctx, info("host-a")))
}
