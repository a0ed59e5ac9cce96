package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/projections"
)

// syncBuffer is a log sink the node's goroutines may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func startLogged(t *testing.T) (*env, *syncBuffer) {
	logs := &syncBuffer{}
	e := start(t, func(c *node.Config) {
		c.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return e, logs
}

// TestMetricsAfterAWorkload reads /metrics after a flavor, an image, a
// server that reaches ACTIVE and a refused request: every family has
// non-zero samples.
func TestMetricsAfterAWorkload(t *testing.T) {
	e := start(t, nil)
	e.seed()
	acc, _ := e.createServer("web-1")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	e.must(409, e.call("POST", "/v1/servers/web-1/start", nil))

	want := []string{
		`keel_http_requests_total{method="POST",route="POST /v1/servers",status="202"}`,
		`keel_http_requests_total{method="POST",route="POST /v1/servers/{id}/start",status="409"}`,
		`keel_http_request_duration_seconds_count{method="GET",route="GET /v1/operations/{id}",status="200"}`,
		`keel_commands_appended_total{aggregate="flavor",command="Create"}`,
		`keel_commands_appended_total{aggregate="image",command="RecordUpload"}`,
		`keel_commands_appended_total{aggregate="server",command="Create"}`,
		`keel_commands_refused_total{aggregate="server",command="Start",reason="conflict"}`,
		`keel_saga_operations_total{kind="server.create",outcome="succeeded"}`,
		`keel_saga_operation_duration_seconds_sum{kind="server.create",outcome="succeeded"}`,
		`keel_scheduler_hosts{state="up"}`,
		`keel_scheduler_claims`,
		`go_goroutines`,
	}
	var m map[string]float64
	eventually(t, 10*time.Second, func() error {
		m = e.scrape()
		for _, s := range want {
			if m[s] <= 0 {
				return fmt.Errorf("%s is %v, want > 0", s, m[s])
			}
		}
		return nil
	})
	if v, ok := m[`keel_scheduler_hosts{state="down"}`]; !ok || v != 0 {
		t.Errorf("hosts down: %v (present %v), want 0", v, ok)
	}
	// Lag is 0 once the projections caught up: each projection has a sample.
	for _, p := range projections.All() {
		if _, ok := m[`keel_projection_lag_commits{projection="`+p.Name+`"}`]; !ok {
			t.Errorf("no lag sample for projection %s", p.Name)
		}
	}
	for key := range m {
		if strings.Contains(key, "web-1") || regexp.MustCompile(`/v1/servers/[0-9a-f-]{36}`).MatchString(key) {
			t.Errorf("a raw path or name became a label: %s", key)
		}
	}
}

// scrape reads /metrics into series -> value (the Prometheus text format).
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	r := e.must(200, e.call("GET", "/metrics", nil))
	out := map[string]float64{}
	for _, line := range strings.Split(string(r.Body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestAccessLogHasOneLineEachAndNoErrorForClientFaults sends requests with
// known ids, some refused (404, 409, 422, a truncated upload): each gets
// exactly one access line at info with its fields, and none of the
// client's faults is logged at ERROR.
func TestAccessLogHasOneLineEachAndNoErrorForClientFaults(t *testing.T) {
	e, logs := startLogged(t)
	e.seed()
	e.must(201, e.call("POST", "/v1/images", map[string]any{"name": "half", "disk_format": "raw"}, "X-Request-Id", "req-image"))
	calls := []struct {
		id, method, path string
		body             any
		status           int
		route            string
	}{
		{"req-list", "GET", "/v1/flavors", nil, 200, "GET /v1/flavors"},
		{"req-404", "GET", "/v1/servers/nope", nil, 404, "GET /v1/servers/{id}"},
		{"req-422", "POST", "/v1/flavors", map[string]any{"name": "x"}, 422, "POST /v1/flavors"},
		{"req-409", "POST", "/v1/flavors", map[string]any{"name": "small", "vcpus": 1, "ram_mib": 1}, 409, "POST /v1/flavors"},
		{"req-unmatched", "GET", "/no/such/path", nil, 404, "unmatched"},
	}
	for _, c := range calls {
		e.must(c.status, e.call(c.method, c.path, c.body, "X-Request-Id", c.id, "Keel-Min-Sequence", fmt.Sprint(e.minSeq)))
	}
	if status := e.truncatedUpload("half", "req-truncated"); status != 400 {
		t.Errorf("truncated upload answered %d, want 400", status)
	}
	calls = append(calls, struct {
		id, method, path string
		body             any
		status           int
		route            string
	}{"req-truncated", "PUT", "", nil, 400, "PUT /v1/images/{id}/file"})

	var lines []map[string]any
	eventually(t, 5*time.Second, func() error { // the line is written after the answer
		lines = logs.lines(t)
		for _, c := range calls {
			if n := len(accessLines(lines, c.id)); n != 1 {
				return fmt.Errorf("request %s has %d access lines, want 1", c.id, n)
			}
		}
		return nil
	})
	for _, c := range calls {
		l := accessLines(lines, c.id)[0]
		if l["level"] != "INFO" || l["route"] != c.route || l["status"] != float64(c.status) || l["method"] != c.method {
			t.Errorf("access line of %s: %v", c.id, l)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("access line of %s has no duration: %v", c.id, l)
		}
	}
	for _, l := range lines {
		if l["level"] == "ERROR" {
			t.Errorf("ERROR line after client faults only: %v", l)
		}
	}
}

func accessLines(lines []map[string]any, id string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == "request" && l["request_id"] == id {
			out = append(out, l)
		}
	}
	return out
}

// truncatedUpload announces more bytes than it sends, then stops sending:
// the client's fault. It returns the status of the answer.
func (e *env) truncatedUpload(image, requestID string) int {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.node.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/images/%s/file HTTP/1.1\r\nHost: keel\r\nContent-Type: application/octet-stream\r\nAuthorization: Bearer %s\r\n"+
		"Keel-Min-Sequence: %d\r\nX-Request-Id: %s\r\nContent-Length: 100000\r\n\r\nonly a few bytes", image, e.token, e.minSeq, requestID)
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		e.t.Fatalf("read the answer to a truncated upload: %v", err)
	}
	fields := strings.Fields(status)
	if len(fields) < 2 {
		e.t.Fatalf("status line %q", status)
	}
	code, _ := strconv.Atoi(fields[1])
	return code
}

// interrupt stops a process the test started with SIGINT, as Ctrl-C does,
// and waits for it. One that has not stopped after 30 s is a failure: it
// is sent SIGQUIT, so that its goroutines land in out (its stdout and
// stderr), and they are logged, instead of the test hanging until its
// deadline.
func interrupt(t *testing.T, what string, cmd *exec.Cmd, out fmt.Stringer) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(30 * time.Second):
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	t.Errorf("%s did not stop within 30 s of SIGINT; its output, with its goroutines:\n%s", what, out)
}
