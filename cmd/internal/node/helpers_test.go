package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

func TestMain(m *testing.M) {
	code := pgtest.RunMain(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// env is one test's node and its dependencies.
type env struct {
	t      *testing.T
	minSeq uint64 // sequence after seed(), for name lookups
	cfg    node.Config
	node   *node.Node
	api    *api.Client // the node's API, as the CLI and keelbench see it, logged in as admin
	token  string      // the admin's token, which call sends
}

// adminPassword is the bootstrap admin's password in these tests.
const adminPassword = "keel-test-admin-password"

// start runs a node on a fresh database and data dir.
func start(t *testing.T, tweak func(*node.Config)) *env {
	t.Helper()
	cfg := node.Config{
		DataDir:       t.TempDir(),
		Listen:        "127.0.0.1:0",
		DatabaseURL:   pgtest.NewDatabase(t),
		FakeHosts:     3,
		AdminPassword: adminPassword,
		// The tests race hundreds of requests through one token; the
		// limits have their own test.
		Limits: httpapi.Limits{Rate: -1, LoginRate: -1, ProjectOperations: -1},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e := &env{t: t, cfg: cfg}
	e.boot()
	t.Cleanup(func() {
		if e.node != nil {
			e.node.Close()
		}
	})
	t.Cleanup(func() {
		if t.Failed() && e.node != nil {
			e.dumpLog()
		}
	})
	return e
}

func (e *env) boot() {
	e.t.Helper()
	n, err := node.Start(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatalf("start node: %v", err)
	}
	e.node = n
	c, tok, err := api.Login(context.Background(), api.New(n.URL), "admin", adminPassword, "")
	if err != nil {
		e.t.Fatalf("log in as admin: %v", err)
	}
	e.api, e.token = c, tok.Secret
}

// restart stops the node and starts it again on the same data.
func (e *env) restart() {
	e.node.Close()
	e.node = nil
	e.boot()
}

// resp is an API answer.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// seq is the answer's Keel-Sequence, 0 when it has none (a refusal).
func (r resp) seq() uint64 {
	h := r.Header.Get("Keel-Sequence")
	if h == "" {
		return 0
	}
	s, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("bad Keel-Sequence %q: %v", h, err))
	}
	return s
}

// call sends a request as the admin; body may be nil, a []byte or a value
// to encode. Headers "Authorization", "" send no token.
func (e *env) call(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.node.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

func (e *env) must(status int, r resp) resp {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("want status %d, got %d: %s", status, r.Status, r.Body)
	}
	return r
}

// seed creates a flavor and an active image and returns their names.
func (e *env) seed() (string, string) {
	e.t.Helper()
	ctx := context.Background()
	if _, _, err := api.Create[api.Flavor](ctx, e.api, api.Flavors, api.FlavorBody{Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, api.Opts{}); err != nil {
		e.t.Fatal(err)
	}
	im, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "tiny", DiskFormat: "raw"}, api.Opts{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.minSeq = e.upload(im.ID, bytes.Repeat([]byte("keel"), 4096), res.Sequence)
	return "small", "tiny"
}

// upload sends an image's bytes, naming it after sequence minSeq; it
// returns the sequence of the upload.
func (e *env) upload(ref string, data []byte, minSeq uint64) uint64 {
	e.t.Helper()
	res, err := e.api.Do(context.Background(), api.Request{Method: http.MethodPut, Path: api.Path(api.Images, ref, "file"),
		Opts: api.Opts{MinSequence: minSeq}, Raw: bytes.NewReader(data), RawType: "application/octet-stream", RawLength: int64(len(data))}, nil)
	if err != nil {
		e.t.Fatalf("upload %s: %v", ref, err)
	}
	return res.Sequence
}

// createServer creates a server of the seeded flavor and image, after the
// seed; headers are name/value pairs (Idempotency-Key, Keel-Min-Sequence).
// It returns the answer and its sequence.
func (e *env) createServer(name string, headers ...string) (api.Accepted, uint64) {
	e.t.Helper()
	o := api.Opts{MinSequence: e.minSeq}
	for i := 0; i+1 < len(headers); i += 2 {
		switch k, v := headers[i], headers[i+1]; k {
		case "Idempotency-Key":
			o.IdempotencyKey = v
		case "Keel-Min-Sequence":
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				e.t.Fatal(err)
			}
			o.MinSequence = seq
		default:
			e.t.Fatalf("createServer sends no %s header", k)
		}
	}
	a, res, err := api.Create[api.Accepted](context.Background(), e.api, api.Servers,
		api.ServerBody{Name: name, Flavor: "small", Image: "tiny"}, o)
	if err != nil || res.Status != http.StatusAccepted {
		e.t.Fatalf("create server %s: %v (status %d)", name, err, statusOf(res))
	}
	return a, res.Sequence
}

func statusOf(res *api.Response) int {
	if res == nil {
		return 0
	}
	return res.Status
}

// waitOp polls an operation until it is terminal.
func (e *env) waitOp(id string, within time.Duration) api.Operation {
	e.t.Helper()
	var op api.Operation
	eventually(e.t, within, func() error {
		var err error
		if op, _, err = api.Get[api.Operation](context.Background(), e.api, api.Path(api.Operations, id), api.Opts{}); err != nil {
			return err
		}
		if op.Status != "succeeded" && op.Status != "failed" {
			return fmt.Errorf("operation %s is %s", id, op.Status)
		}
		return nil
	})
	return op
}

// act starts an action on a server (start, stop, reboot or delete) and
// returns the answer: the server and the operation that carries it out.
func (e *env) act(ref, action string) api.Accepted {
	e.t.Helper()
	req := api.Request{Method: http.MethodPost, Path: api.Path(api.Servers, ref, action)}
	if action == "delete" {
		req = api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, ref)}
	}
	var a api.Accepted
	res, err := e.api.Do(context.Background(), req, &a)
	if err != nil || res.Status != http.StatusAccepted {
		e.t.Fatalf("%s server %s: %v (status %d)", action, ref, err, statusOf(res))
	}
	return a
}

// server reads a server and the status of the answer (404 when gone).
func (e *env) server(id string) (api.Server, int) {
	e.t.Helper()
	s, res, err := api.Get[api.Server](context.Background(), e.api, api.Path(api.Servers, id), api.Opts{})
	var p *api.Problem
	switch {
	case errors.As(err, &p):
		return s, p.Status
	case err != nil:
		e.t.Fatalf("read server %s: %v", id, err)
	}
	return s, res.Status
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpLog prints the event log of a failed test, commit by commit.
func (e *env) dumpLog() {
	ctx := context.Background()
	head, err := e.node.Store.LastSequence(ctx)
	if err != nil {
		return
	}
	for seq := uint64(1); seq <= head; seq++ {
		env, err := e.node.Store.Get(ctx, seq)
		if err != nil {
			continue
		}
		for _, ev := range env.Events {
			e.t.Logf("%4d %-9s %.8s %-26s %s", seq, env.AggregateType, env.AggregateID, ev.Type, ev.Data)
		}
	}
}

func (e *env) hosts() []api.Host {
	e.t.Helper()
	hs, _, err := api.Get[api.HostList](context.Background(), e.api, api.Hosts, api.Opts{})
	if err != nil {
		e.t.Fatal(err)
	}
	return hs.Items
}

// expectNoClaims waits until no host holds a claim.
func (e *env) expectNoClaims() {
	e.t.Helper()
	eventually(e.t, 10*time.Second, func() error {
		for _, h := range e.hosts() {
			if h.Servers != 0 || h.Used.RAMMiB != 0 {
				return fmt.Errorf("host %s still holds %d claims (%d MiB)", h.Name, h.Servers, h.Used.RAMMiB)
			}
		}
		return nil
	})
}
