package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
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
}

// start runs a node on a fresh database and data dir.
func start(t *testing.T, tweak func(*node.Config)) *env {
	t.Helper()
	cfg := node.Config{
		DataDir:     t.TempDir(),
		Listen:      "127.0.0.1:0",
		DatabaseURL: pgtest.NewDatabase(t),
		FakeHosts:   3,
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
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

func (r resp) seq() uint64 {
	s, _ := strconv.ParseUint(r.Header.Get("Keel-Sequence"), 10, 64)
	return s
}

// call sends a request; body may be nil, a []byte or a value to encode.
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
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.node.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

func (e *env) must(status int, r resp) resp {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("want status %d, got %d: %s", status, r.Status, r.Body)
	}
	return r
}

type flavorJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type serverJSON struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Status      string  `json:"status"`
	Reason      *string `json:"reason"`
	Power       string  `json:"power_state"`
	Task        *string `json:"task_state"`
	Host        *string `json:"host"`
	OperationID *string `json:"operation_id"`
}

type acceptedJSON struct {
	Server      serverJSON `json:"server"`
	OperationID string     `json:"operation_id"`
}

type opJSON struct {
	ID     string  `json:"id"`
	Kind   string  `json:"kind"`
	Status string  `json:"status"`
	Error  *string `json:"error"`
	Steps  []struct {
		Name   string  `json:"name"`
		Status string  `json:"status"`
		Error  *string `json:"error"`
	} `json:"steps"`
}

type problemJSON struct {
	Status   int    `json:"status"`
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// seed creates a flavor and an active image and returns their names.
func (e *env) seed() (string, string) {
	e.t.Helper()
	e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "small", "vcpus": 1, "ram_mib": 512, "disk_gib": 1}))
	r := e.must(201, e.call("POST", "/v1/images", map[string]any{"name": "tiny", "disk_format": "raw"}))
	r = e.must(200, e.call("PUT", "/v1/images/tiny/file", bytes.Repeat([]byte("keel"), 4096),
		"Content-Type", "application/octet-stream", "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	e.minSeq = r.seq()
	return "small", "tiny"
}

func (e *env) createServer(name string, headers ...string) (acceptedJSON, uint64) {
	e.t.Helper()
	headers = append([]string{"Keel-Min-Sequence", fmt.Sprint(e.minSeq)}, headers...)
	r := e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": name, "flavor": "small", "image": "tiny"}, headers...))
	var a acceptedJSON
	r.json(e.t, &a)
	return a, r.seq()
}

// waitOp polls an operation until it is terminal.
func (e *env) waitOp(id string, within time.Duration) opJSON {
	e.t.Helper()
	var op opJSON
	eventually(e.t, within, func() error {
		r := e.call("GET", "/v1/operations/"+id, nil)
		if r.Status != 200 {
			return fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		r.json(e.t, &op)
		if op.Status != "succeeded" && op.Status != "failed" {
			return fmt.Errorf("operation %s is %s", id, op.Status)
		}
		return nil
	})
	return op
}

func (e *env) server(id string) (serverJSON, int) {
	e.t.Helper()
	r := e.call("GET", "/v1/servers/"+id, nil)
	var s serverJSON
	if r.Status == 200 {
		r.json(e.t, &s)
	}
	return s, r.Status
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

type hostJSON struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	State   string `json:"state"`
	Servers int    `json:"servers"`
	Used    struct {
		VCPUs  int `json:"vcpus"`
		RAMMiB int `json:"ram_mib"`
	} `json:"used"`
	Total struct {
		VCPUs  int `json:"vcpus"`
		RAMMiB int `json:"ram_mib"`
	} `json:"total"`
}

func (e *env) hosts() []hostJSON {
	e.t.Helper()
	var out struct {
		Items []hostJSON `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/hosts", nil)).json(e.t, &out)
	return out.Items
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
