package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/user"
)

func TestProblemError(t *testing.T) {
	raw := `{"title":"Unprocessable Entity","status":422,"detail":"validation failed",
		"instance":"urn:keel:request:1","errors":[{"message":"expected number >= 1","location":"body.vcpus","value":0},
		{"message":"no location"}]}`
	got := decodeProblem(422, []byte(raw)).Error()
	want := "422 Unprocessable Entity: validation failed\n  - body.vcpus: expected number >= 1\n  - no location"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestProblemFromNonProblemBody(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{404, "404 page not found\n", "404 Not Found: 404 page not found"},
		{502, "<html>\n<body>bad gateway</body>", "502 Bad Gateway: <html>"},
		{503, "", "503 Service Unavailable"},
		{409, `{"detail":"no title"}`, "409 Conflict: no title"},
	} {
		if got := decodeProblem(tc.status, []byte(tc.body)).Error(); got != tc.want {
			t.Errorf("%d %q: got %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}

func TestNormalizeAPI(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":     "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":    "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/v1":  "http://127.0.0.1:8080",
		"127.0.0.1:8080":            "http://127.0.0.1:8080",
		"https://keel.example/api/": "https://keel.example/api",
	} {
		got, err := normalizeAPI(in)
		if err != nil || got != want {
			t.Errorf("normalizeAPI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalizeAPI("ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestDoJSONSendsHeadersAndReadsSequence(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, mustRead(t, r.Body)
		w.Header().Set("Keel-Sequence", "42")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"f1","name":"m1"}`))
	}))
	defer srv.Close()
	c := newAPIClient(srv.URL)
	var f api.Flavor
	rep, err := c.doJSON(context.Background(), call{method: http.MethodPost, path: "/v1/flavors",
		body: map[string]int{"vcpus": 1}, idemKey: "k1", minSeq: 7}, &f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.seq != 42 || rep.status != 201 || f.Name != "m1" {
		t.Fatalf("reply %+v flavor %+v", rep, f)
	}
	h := got.Header
	if h.Get("Content-Type") != "application/json" || h.Get("Idempotency-Key") != "k1" || h.Get("Keel-Min-Sequence") != "7" {
		t.Fatalf("headers %v", h)
	}
	if string(body) != `{"vcpus":1}` {
		t.Fatalf("body %s", body)
	}
}

func TestDoJSONProblem(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found","status":404,"detail":"flavor x not found"}`))
	}))
	defer srv.Close()
	_, err := newAPIClient(srv.URL).get(context.Background(), "/v1/flavors/x", nil, 0, nil)
	if err == nil || err.Error() != "404 Not Found: flavor x not found" || !isStatus(err, 404) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionRefusedNamesTheAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close()
	_, err = newAPIClient(base).get(context.Background(), "/v1/hosts", nil, 0, nil)
	if err == nil || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "make run") {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteServersTable(t *testing.T) {
	task, host := "spawning", "sim-1"
	items := []api.Server{
		{ID: "id-1", Name: "web", Status: "BUILDING", Power: "NOSTATE", Task: &task, Host: &host, Flavor: api.ServerFlavor{Name: "m1.small"}},
		{ID: "id-22", Name: "db\tmain", Status: "ACTIVE", Power: "RUNNING", Flavor: api.ServerFlavor{Name: "m1"}},
	}
	var b bytes.Buffer
	if err := writeServers(&b, items); err != nil {
		t.Fatal(err)
	}
	want := `ID     NAME     STATUS    POWER    TASK      HOST   FLAVOR
id-1   web      BUILDING  NOSTATE  spawning  sim-1  m1.small
id-22  db main  ACTIVE    RUNNING  -         -      m1
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteFields(t *testing.T) {
	var b bytes.Buffer
	if err := writeFields(&b, []field{{"ID", "x"}, {"REASON", "line1\nline2"}, {"HOST", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "ID      x\nREASON  line1 line2\nHOST    -\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5000000: "4.8 MiB", 3 << 30: "3.0 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := fmtDuration(12345678 * time.Nanosecond); got != "12ms" {
		t.Errorf("fmtDuration = %q", got)
	}
}

// commit builds a canned server commit from typed events.
func commit(t *testing.T, seq, version uint64, events ...domain.Event) api.Commit {
	t.Helper()
	raw, err := domain.Encode(events)
	if err != nil {
		t.Fatal(err)
	}
	c := api.Commit{Sequence: seq, Version: version, AggregateType: server.AggregateType, AggregateID: "s1"}
	for _, e := range raw {
		c.Events = append(c.Events, api.RawEvent(e))
	}
	return c
}

func TestFoldServer(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	commits := []api.Commit{
		commit(t, 10, 1, &server.Created{ID: "s1", Name: "web", Operation: "op1", CreatedAt: at}),
		commit(t, 12, 2, &server.Scheduled{Host: "sim-1", Operation: "op1", At: at}),
		commit(t, 14, 3, &server.Spawned{Host: "sim-1", At: at}),
		commit(t, 20, 4, &server.StopRequested{Host: "sim-1", Operation: "op2", At: at}),
		commit(t, 22, 5, &server.ActionFailed{Task: server.PoweringOff, Reason: "host unreachable", At: at}),
		commit(t, 30, 6, &server.DeleteRequested{Host: "sim-1", Operation: "op3", At: at},
			&server.Deleted{Host: "sim-1", At: at}),
	}
	steps, err := foldServer(commits)
	if err != nil {
		t.Fatal(err)
	}
	want := []replayState{
		{Status: "BUILDING", Task: "scheduling", Power: "NOSTATE", Desired: "running", Operation: "op1"},
		{Status: "BUILDING", Task: "spawning", Power: "NOSTATE", Desired: "running", Host: "sim-1", Operation: "op1"},
		{Status: "ACTIVE", Power: "RUNNING", Desired: "running", Host: "sim-1", Operation: "op1"},
		{Status: "ACTIVE", Task: "powering_off", Power: "RUNNING", Desired: "stopped", Host: "sim-1", Operation: "op2"},
		{Status: "ACTIVE", Power: "RUNNING", Desired: "stopped", Host: "sim-1", Reason: "host unreachable", Operation: "op2"},
		{Status: "DELETED", Power: "NOSTATE", Desired: "deleted", Reason: "host unreachable", Operation: "op3"},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(steps), len(want))
	}
	for i, s := range steps {
		if s.State != want[i] || s.Sequence != commits[i].Sequence {
			t.Errorf("step %d (seq %d): got %+v, want %+v", i, s.Sequence, s.State, want[i])
		}
	}
	var b bytes.Buffer
	if err := writeReplay(&b, "s1", steps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "server.delete_requested,server.deleted  DELETED") {
		t.Errorf("replay table:\n%s", b.String())
	}
	js, _ := json.Marshal(steps[0])
	if !strings.Contains(string(js), `"sequence":10`) || !strings.Contains(string(js), `"state":{"status":"BUILDING"`) {
		t.Errorf("json: %s", js)
	}
}

func TestFoldServerUnknownEvent(t *testing.T) {
	c := api.Commit{Sequence: 5, Events: []api.RawEvent{{Type: "server.teleported", Data: json.RawMessage(`{}`)}}}
	_, err := foldServer([]api.Commit{c})
	if !errors.Is(err, domain.ErrUnknownEvent) || !strings.Contains(err.Error(), "commit 5") {
		t.Fatalf("err = %v", err)
	}
}

func TestStepTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(12*time.Millisecond), t0.Add(300*time.Millisecond)
	fail := "injected failure"
	op := func(status string, steps ...api.Step) api.Operation {
		return api.Operation{Status: status, Steps: steps, Error: &fail}
	}
	tr := &stepTracker{}
	check := func(o api.Operation, want ...string) {
		t.Helper()
		if got := tr.changes(o); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	}
	check(op("pending"))
	check(op("running", api.Step{Name: "schedule", Status: "running", StartedAt: &t0}, api.Step{Name: "spawn", Status: "pending"}),
		"  schedule  running")
	check(op("running", api.Step{Name: "schedule", Status: "running", StartedAt: &t0}, api.Step{Name: "spawn", Status: "pending"}))
	check(op("failed",
		api.Step{Name: "schedule", Status: "compensated", StartedAt: &t0, FinishedAt: &t1},
		api.Step{Name: "spawn", Status: "failed", StartedAt: &t1, FinishedAt: &t2, Error: &fail}),
		"  spawn     failed       288ms  injected failure",
		"  schedule  compensated  12ms")
}

func TestReadSSE(t *testing.T) {
	stream := ": comment\n\nid: 3\nevent: commit\ndata: {\"sequence\":3}\n\n" +
		"data: line1\ndata: line2\n\nevent: commit\ndata:{\"sequence\":4}\n\n"
	var got []string
	err := api.ReadSSE(strings.NewReader(stream), func(event string, data []byte) error {
		got = append(got, event+"="+string(data))
		return nil
	})
	want := []string{`commit={"sequence":3}`, "message=line1\nline2", `commit={"sequence":4}`}
	if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestPrintCommit(t *testing.T) {
	c := api.Commit{Sequence: 7, AggregateType: "server", AggregateID: "s1",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		Events:     []api.RawEvent{{Type: "server.delete_requested"}, {Type: "server.deleted"}}}
	var b bytes.Buffer
	if err := printCommit(&b, c, false, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "7 ") || !strings.Contains(lines[0], "2026-01-02T03:04:05.006Z") ||
		!strings.Contains(lines[0], "server/s1") || !strings.HasSuffix(lines[1], "server.deleted") {
		t.Fatalf("lines %q", lines)
	}
	b.Reset()
	if err := printCommit(&b, c, false, "server.deleted"); err != nil || strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("filtered by type: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := printCommit(&b, c, true, "server.deleted"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 || !json.Valid(b.Bytes()) {
		t.Fatalf("json line %q", b.String())
	}
}

func mustRead(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestListAllFollowsCursors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("name") != "web" {
			t.Errorf("query %s", r.URL.RawQuery)
		}
		switch r.URL.Query().Get("cursor") {
		case "":
			_, _ = w.Write([]byte(`{"items":[{"id":"a"},{"id":"b"}],"next_cursor":"c1"}`))
		case "c1":
			_, _ = w.Write([]byte(`{"items":[{"id":"c"}],"next_cursor":""}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	g := &globals{client: newAPIClient(srv.URL)}
	raws, raw, err := g.listAll(context.Background(), "/v1/servers", query("name", "web", "status", ""))
	if err != nil {
		t.Fatal(err)
	}
	items, err := decodeItems[api.Server](raws)
	if err != nil || len(items) != 3 || items[2].ID != "c" {
		t.Fatalf("items %+v, %v", items, err)
	}
	if string(raw) != `{"items":[{"id":"a"},{"id":"b"},{"id":"c"}],"next_cursor":""}` {
		t.Fatalf("raw %s", raw)
	}
}

func TestEscapeText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain été 日本", "plain été 日本"},
		{"clear\x1b[2J", `clear\u001b[2J`},
		{"bell\a", `bell\u0007`},
		{"csi\u009b2J", `csi\u009b2J`},
		{"del\x7f", `del\u007f`},
		{"invoice\u202egpj.exe", `invoice\u202egpj.exe`},
		{"\u2066iso\u2069 \u200e\u200f\u061c", `\u2066iso\u2069 \u200e\u200f\u061c`},
		{"line\u2028sep", `line\u2028sep`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"tab\tnew\nline", `tab\u0009new\u000aline`},
	} {
		if got := escapeText(c.in, false); got != c.want {
			t.Errorf("escapeText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := escapeText("a\tb\nc\rd", true); got != "a\tb\nc\\u000dd" {
		t.Errorf("keeping layout: %q", got)
	}
}

func TestTerminalWriterEscapesAcrossWrites(t *testing.T) {
	var b bytes.Buffer
	w := newTerminalWriter(&b)
	override := []byte("\u202e")
	for _, part := range [][]byte{[]byte("NAME\tx"), override[:1], override[1:2], append(override[2:], "y\x1b[31m\n"...)} {
		if n, err := w.Write(part); n != len(part) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", part, n, err)
		}
	}
	if got, want := b.String(), "NAME\tx\\u202ey\\u001b[31m\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestJSONOutputEscapesBidiAndStaysJSON(t *testing.T) {
	name := "evil\u202eexe.txt\x7f"
	raw, _ := json.Marshal(map[string]string{"name": name})
	var b bytes.Buffer
	g := &globals{output: "json", out: newTerminalWriter(&b)}
	if err := g.emit(raw, nil); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(b.String(), '\u202e') || strings.ContainsRune(b.String(), 0x7f) {
		t.Fatalf("raw override or DEL printed: %q", b.String())
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["name"] != name {
		t.Fatalf("output %q is not the same JSON: %v, %q", b.String(), err, back["name"])
	}
}

func TestHostShowEscapesWhatTheAPISent(t *testing.T) {
	reason, addr := "fan\x1b[2J\x1b[H", "10.0.0.1\u202e"
	var b bytes.Buffer
	h := api.Host{ID: "h1", Name: "node\u2067-1", Status: "disabled", Reason: &reason, Address: &addr, Traits: []string{"gpu\x1b]0;x\a"}}
	if err := writeHost(&b, h); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range []rune{0x1b, 0x07, 0x202e, 0x2067} {
		if strings.ContainsRune(out, r) {
			t.Fatalf("host show printed %U raw:\n%s", r, out)
		}
	}
	for _, want := range []string{`fan\u001b[2J\u001b[H`, `10.0.0.1\u202e`, `node\u2067-1`, `gpu\u001b]0;x\u0007`} {
		if !strings.Contains(out, want) {
			t.Fatalf("host show lacks %q:\n%s", want, out)
		}
	}
}

func TestProblemErrorEscapesWhatTheAPISent(t *testing.T) {
	raw := `{"title":"Not Found","status":404,"detail":"server \u001b[2Jweb\u202e not found","errors":[{"message":"bad\nline","location":"body.na\u2066me"}]}`
	got := decodeProblem(404, []byte(raw)).Error()
	want := `404 Not Found: server \u001b[2Jweb\u202e not found` + "\n  - " + `body.na\u2066me: bad\u000aline`
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// Any aggregate replays: each commit with the fields it changed, secrets'
// hashes redacted, up to a sequence or a time.
func TestReplayAnyAggregate(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
	mk := func(seq, version uint64, when time.Time, events ...domain.Event) api.Commit {
		c := commit(t, seq, version, events...)
		c.AggregateType, c.AggregateID, c.OccurredAt = user.AggregateType, "u1", when
		return c
	}
	commits := []api.Commit{
		mk(3, 1, at, &user.Created{ID: "u1", Name: "alice", PasswordHash: hash, CreatedAt: at}),
		mk(7, 2, at.Add(time.Minute), &user.RoleGranted{ID: "u1", Project: "p1", Role: user.Member, At: at}),
		mk(9, 3, at.Add(2*time.Minute), &user.PasswordChanged{ID: "u1", PasswordHash: hash + "2", ChangedAt: at}),
	}
	steps, err := folders[user.AggregateType]("u1", commits)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[0].State["Name"] != "alice" || steps[0].State["PasswordHash"] != "<redacted>" {
		t.Fatalf("first step: %+v", steps)
	}
	if _, ok := steps[1].Changed["Roles"]; !ok || len(steps[1].Changed) != 1 {
		t.Fatalf("the grant changed %v, want Roles only", steps[1].Changed)
	}
	if len(steps[2].Changed) != 1 || steps[2].Changed["PasswordHash"] != "<redacted>" {
		t.Fatalf("the password change changed %v, want PasswordHash, redacted", steps[2].Changed)
	}
	js, _ := json.Marshal(steps)
	if strings.Contains(string(js), "aGFzaA") {
		t.Fatalf("a password hash is shown: %s", js)
	}
	for until, want := range map[string]int{"": 3, "7": 2, "2": 0, at.Add(90 * time.Second).Format(time.RFC3339): 2} {
		got, err := upTo(commits, until)
		if err != nil || len(got) != want {
			t.Errorf("--until %q kept %d commits (%v), want %d", until, len(got), err, want)
		}
	}
	if _, err := upTo(commits, "yesterday"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("--until yesterday: %v", err)
	}
}
