package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

func TestIdempotentCreate(t *testing.T) {
	e := start(t, func(c *node.Config) { c.DupWindow = time.Second })
	e.seed()
	first, _ := e.createServer("once", "Idempotency-Key", "create-once-1")
	again, _ := e.createServer("once", "Idempotency-Key", "create-once-1")
	if again.Server.ID != first.Server.ID || again.OperationID != first.OperationID {
		t.Fatalf("same key gave another server: %s vs %s", again.Server.ID, first.Server.ID)
	}
	// The same key with another body is refused.
	r := e.must(422, e.call("POST", "/v1/servers", map[string]any{"name": "twice", "flavor": "small", "image": "tiny"},
		"Idempotency-Key", "create-once-1"))
	if !strings.Contains(string(r.Body), "different request body") {
		t.Fatalf("422 says %s", r.Body)
	}
	// After a restart, and after JetStream's duplicate window has passed,
	// the first answer still holds.
	time.Sleep(1500 * time.Millisecond)
	e.restart()
	after, _ := e.createServer("once", "Idempotency-Key", "create-once-1")
	if after.Server.ID != first.Server.ID {
		t.Fatalf("after restart the key made server %s, want %s", after.Server.ID, first.Server.ID)
	}
	e.waitOp(first.OperationID, 20*time.Second)
	var list struct {
		Items []api.Server `json:"items"`
	}
	e.must(200, e.call("GET", "/v1/servers?name=once", nil)).json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("want one server named once, got %d", len(list.Items))
	}
}

// A retry that arrives after a crash which lost the recorded answer still
// finds the commit: the command id derives from the key, and the aggregate
// knows the command ids it has committed.
func TestRetriedCommandAfterLostAnswerMakesNoSecondCommit(t *testing.T) {
	e := start(t, nil)
	e.seed()
	r := e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "lost", "flavor": "small", "image": "tiny"},
		"Idempotency-Key", "lost-answer", "Keel-Min-Sequence", fmt.Sprint(e.minSeq)))
	var first api.Accepted
	r.json(t, &first)
	// Forget the recorded answer, as if the process died before storing it.
	e.restartForgettingIdempotency()
	r = e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "lost", "flavor": "small", "image": "tiny"},
		"Idempotency-Key", "lost-answer", "Keel-Min-Sequence", fmt.Sprint(e.minSeq)))
	var again api.Accepted
	r.json(t, &again)
	if again.Server.ID != first.Server.ID {
		t.Fatalf("retry made server %s, want %s", again.Server.ID, first.Server.ID)
	}
	evs := e.must(200, e.call("GET", "/v1/events?type=server.created&aggregate_id="+first.Server.ID, nil, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	evs.json(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("want one server.created commit, got %d", len(page.Items))
	}
}

func (e *env) restartForgettingIdempotency() {
	e.t.Helper()
	kv, err := e.node.Store.JS.KeyValue(context.Background(), "KEEL_IDEMPOTENCY")
	if err != nil {
		e.t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		if err := kv.Purge(context.Background(), k); err != nil {
			e.t.Fatal(err)
		}
	}
	e.restart()
}

func TestBadInputIsA4xxProblemAndWritesNothing(t *testing.T) {
	e := start(t, nil)
	e.seed()
	e.must(201, e.call("POST", "/v1/keypairs", map[string]any{"name": "alice", "public_key": ed25519Key}))
	head := func() uint64 {
		s, err := e.node.Store.LastSequence(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := head()
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `","vcpus":1,"ram_mib":1,"disk_gib":1}`
	cases := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"malformed json", "POST", "/v1/flavors", `{"name":`, 400},
		{"unknown field", "POST", "/v1/flavors", `{"name":"a","vcpus":1,"ram_mib":1,"disk_gib":1,"gpu":true}`, 422},
		{"wrong type", "POST", "/v1/flavors", `{"name":"a","vcpus":"one","ram_mib":1,"disk_gib":1}`, 422},
		{"missing field", "POST", "/v1/flavors", `{"name":"a"}`, 422},
		{"negative size", "POST", "/v1/flavors", `{"name":"a","vcpus":-1,"ram_mib":1,"disk_gib":1}`, 422},
		{"body over 1 MiB", "POST", "/v1/flavors", big, 413},
		{"control character in name", "POST", "/v1/flavors", `{"name":"bad\u0007name","vcpus":1,"ram_mib":1,"disk_gib":1}`, 422},
		{"control character in server name", "POST", "/v1/servers", `{"name":"a\nb","flavor":"small","image":"tiny"}`, 422},
		{"unknown flavor", "POST", "/v1/servers", `{"name":"a","flavor":"nope","image":"tiny"}`, 422},
		{"unknown image id", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"00000000-0000-0000-0000-000000000001"}`, 422},
		{"duplicate flavor name", "POST", "/v1/flavors", `{"name":"small","vcpus":1,"ram_mib":1,"disk_gib":1}`, 409},
		{"id with control characters", "GET", "/v1/servers/a%07b", nil, 422},
		{"unknown server name", "GET", "/v1/servers/nobody", nil, 404},
		{"unknown server id", "DELETE", "/v1/servers/00000000-0000-0000-0000-000000000002", nil, 404},
		{"operation id not a uuid", "GET", "/v1/operations/xyz", nil, 422},
		{"bad cursor", "GET", "/v1/servers?cursor=garbage", nil, 422},
		{"cursor with a bad id", "GET", "/v1/servers?cursor=eyJ0IjogIjIwMjAtMDEtMDFUMDA6MDA6MDBaIiwgImkiOiAibm90LWEtdXVpZCJ9", nil, 422},
		{"image minimum beyond any flavor", "POST", "/v1/images", `{"name":"huge","disk_format":"raw","min_ram_mib":3000000000}`, 422},
		{"group size beyond bounds", "POST", "/v1/server-groups", `{"name":"g","policy":"soft-affinity","max_per_host":3000000000}`, 422},
		{"limit too large", "GET", "/v1/servers?limit=100000", nil, 422},
		{"action on missing server", "POST", "/v1/servers/ghost/reboot", nil, 404},
		{"idempotency key with control char", "POST", "/v1/flavors", `{"name":"k","vcpus":1,"ram_mib":1,"disk_gib":1}`, 400},
		{"invalid utf-8 in a name", "POST", "/v1/flavors", "{\"name\":\"bad\xffname\",\"vcpus\":1,\"ram_mib\":1,\"disk_gib\":1}", 400},
		{"lone surrogate in a name", "POST", "/v1/flavors", `{"name":"bad\udc00","vcpus":1,"ram_mib":1,"disk_gib":1}`, 422},
		{"uuid-shaped flavor name", "POST", "/v1/flavors", `{"name":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","vcpus":1,"ram_mib":1,"disk_gib":1}`, 422},
		{"uuid-shaped image name", "POST", "/v1/images", `{"name":"3F2504E04F8911D39A0C0305E82C3301","disk_format":"raw"}`, 422},
		{"bidi override in a server name", "POST", "/v1/servers", `{"name":"web\u202e1","flavor":"small","image":"tiny"}`, 422},
		{"escape in a disable reason", "POST", "/v1/hosts/sim-1/disable", `{"reason":"fan\u001b[2J"}`, 422},
		{"bidi isolate in a maintenance reason", "POST", "/v1/hosts/sim-1/maintenance", `{"reason":"bios\u2066"}`, 422},
		{"escape in aggregate metadata", "POST", "/v1/aggregates", `{"name":"rack","metadata":{"ssd":"\u001b[31mtrue"}}`, 422},
		{"escape in an aggregate metadata key", "POST", "/v1/aggregates", `{"name":"rack-2","metadata":{"ssd\u009b":"true"}}`, 422},
		{"escape in an extra spec", "POST", "/v1/flavors", `{"name":"x","vcpus":1,"ram_mib":1,"disk_gib":1,"extra_specs":{"aggregate:ssd":"\u001b]0;x\u0007"}}`, 422},
		{"history since beyond the largest sequence", "GET", "/v1/events?since=9223372036854775808", nil, 422},
		{"history since far beyond", "GET", "/v1/events?since=18446744073709551615", nil, 422},
		{"stream since beyond the largest sequence", "GET", "/v1/events/stream?since=9223372036854775808", nil, 422},
		{"history since negative", "GET", "/v1/events?since=-1", nil, 422},
		{"user data not base64", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","user_data":"not base64!"}`, 422},
		{"user data over 64 KiB", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","user_data":"` + base64.StdEncoding.EncodeToString(make([]byte, 65536)) + `"}`, 422},
		{"public key that is not a key", "POST", "/v1/keypairs", `{"name":"k","public_key":"hello world"}`, 422},
		{"DSA public key", "POST", "/v1/keypairs", keypairBody("k", dsaKey), 422},
		{"RSA public key of 1024 bits", "POST", "/v1/keypairs", keypairBody("k", rsa1024Key), 422},
		{"public key over 16 KiB", "POST", "/v1/keypairs", keypairBody("k", ed25519Key+" "+strings.Repeat("x", 16<<10)), 422},
		{"escape in a public key", "POST", "/v1/keypairs", keypairBody("k", ed25519Key+"\u001b[2J"), 422},
		{"two public keys", "POST", "/v1/keypairs", keypairBody("k", ed25519Key+"\n"+ed25519Key), 422},
		{"public key with options", "POST", "/v1/keypairs", keypairBody("k", `command="/bin/sh" `+ed25519Key), 422},
		{"control character in a keypair name", "POST", "/v1/keypairs", keypairBody("k\u0007", ed25519Key), 422},
		{"uuid-shaped keypair name", "POST", "/v1/keypairs", keypairBody("3f2504e0-4f89-11d3-9a0c-0305e82c3301", ed25519Key), 422},
		{"duplicate keypair name", "POST", "/v1/keypairs", keypairBody("alice", ed25519Key), 409},
		{"unknown key_name", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","key_name":"nobody"}`, 422},
		{"unknown key_name id", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","key_name":"00000000-0000-0000-0000-000000000003"}`, 422},
		{"unknown keypair", "GET", "/v1/keypairs/nobody", nil, 404},
		{"delete unknown keypair", "DELETE", "/v1/keypairs/nobody", nil, 404},
		{"login info of an unknown server", "GET", "/v1/servers/00000000-0000-0000-0000-000000000004/login-info", nil, 404},
		{"login info of an unknown server name", "GET", "/v1/servers/nobody/login-info", nil, 404},
		{"a data disk of 0 GiB", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","data_disks_gib":[10,0]}`, 422},
		{"nine data disks", "POST", "/v1/servers", `{"name":"a","flavor":"small","image":"tiny","data_disks_gib":[1,1,1,1,1,1,1,1,1]}`, 422},
		{"unknown path", "GET", "/v1/nothing", nil, 404},
		{"method not allowed", "PATCH", "/v1/flavors", nil, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if strings.Contains(c.name, "idempotency key") {
				headers = []string{"Idempotency-Key", "a\tb"}
			}
			r := e.call(c.method, c.path, c.body, headers...)
			if r.Status != c.want {
				t.Fatalf("want %d, got %d: %s", c.want, r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p api.Problem
			r.json(t, &p)
			if p.Status != c.want || p.Detail == "" || r.Header.Get("X-Request-Id") == "" {
				t.Fatalf("problem %+v", p)
			}
		})
	}
	if after := head(); after != before {
		t.Fatalf("bad requests wrote %d commits", after-before)
	}
	// The history takes the largest sequence there can be.
	var page struct{ Items []json.RawMessage }
	e.must(200, e.call("GET", "/v1/events?since=9223372036854775807", nil)).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("since the largest sequence: %d commits", len(page.Items))
	}
	// An image upload may exceed 1 MiB.
	r := e.must(201, e.call("POST", "/v1/images", map[string]any{"name": "big", "disk_format": "raw"}))
	var im struct{ ID string }
	r.json(t, &im)
	e.must(200, e.call("PUT", "/v1/images/"+im.ID+"/file", bytes.Repeat([]byte{7}, 3<<20), "Content-Type", "application/octet-stream"))
	r = e.must(409, e.call("PUT", "/v1/images/"+im.ID+"/file", []byte("again"), "Content-Type", "application/octet-stream"))
}

func TestFlavorNamesStayUniqueUnderConcurrency(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	codes := make(chan int, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			r := e.call("POST", "/v1/flavors", map[string]any{"name": "dup", "vcpus": i + 1, "ram_mib": 64, "disk_gib": 1})
			codes <- r.Status
		}(i)
	}
	created := 0
	for i := 0; i < 8; i++ {
		switch c := <-codes; c {
		case 201:
			created++
		case 409:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d flavors named dup were created, want 1", created)
	}
	// Once deleted, the name is free again.
	eventually(t, 5*time.Second, func() error {
		if r := e.call("GET", "/v1/flavors/dup", nil); r.Status != 200 {
			return fmt.Errorf("flavor dup: %d", r.Status)
		}
		return nil
	})
	r := e.must(204, e.call("DELETE", "/v1/flavors/dup", nil))
	r = e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "dup", "vcpus": 1, "ram_mib": 64}, "Keel-Min-Sequence", fmt.Sprint(r.seq())))
	var f api.Flavor
	r.json(t, &f)
	if f.Name != "dup" {
		t.Fatalf("recreated flavor %+v", f)
	}
}

func TestSinceBeyondTheLargestSequenceIsRefusedAlike(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	for _, path := range []string{"/v1/events?since=9223372036854775808", "/v1/events/stream?since=9223372036854775808"} {
		r := e.must(422, e.call("GET", path, nil))
		if !strings.Contains(string(r.Body), "since must be a stream sequence from 0 to 9223372036854775807") {
			t.Fatalf("%s: %s", path, r.Body)
		}
	}
}

// rawCall sends raw bytes to the node's API on a new connection and reads
// the answer; the server may answer before it has read everything.
func (e *env) rawCall(request string, halfClose bool) resp {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.node.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		_, _ = io.WriteString(conn, request)
		if halfClose {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("read answer to %.40q: %v", request, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// mustProblem checks that r is a problem with status, naming its request id.
func (e *env) mustProblem(status int, r resp, detail string) {
	e.t.Helper()
	e.must(status, r)
	var p api.Problem
	r.json(e.t, &p)
	id := r.Header.Get("X-Request-Id")
	if r.Header.Get("Content-Type") != "application/problem+json" || p.Status != status || id == "" ||
		p.Instance != "urn:keel:request:"+id || !strings.Contains(p.Detail, detail) {
		e.t.Fatalf("want a problem %d mentioning %q with a request id; got %v %s", status, detail, r.Header, r.Body)
	}
}

func TestErrorsBeforeTheHandlersAreProblems(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	e.mustProblem(400, e.rawCall("GET /v1/flavors/%zz HTTP/1.1\r\nHost: keel\r\n\r\n", false), "could not be parsed")
	e.mustProblem(400, e.rawCall("GET /v1/flavors HTTP/1.1\r\n\r\n", false), "missing required Host header")
	big := "GET /v1/flavors HTTP/1.1\r\nHost: keel\r\nX-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes+8192) + "\r\n\r\n"
	e.mustProblem(431, e.rawCall(big, false), "header fields are larger")
	e.mustProblem(404, e.call("GET", "/nothing/here", nil), "no such path: /nothing/here")
	e.mustProblem(405, e.call("PUT", "/v1/flavors", nil), "method PUT is not allowed on /v1/flavors")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTruncatedUploadIsA400AndLeavesNothing(t *testing.T) {
	var logs syncBuffer
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 0
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	r := e.must(201, e.call("POST", "/v1/images", map[string]any{"name": "cut", "disk_format": "raw"}))
	var im struct{ ID string }
	r.json(t, &im)
	stored := func() uint64 {
		s, err := e.node.Store.JS.Stream(context.Background(), "OBJ_KEEL_IMAGES")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := stored()
	// 1 MiB of the 3 MiB announced, then the client stops sending.
	req := fmt.Sprintf("PUT /v1/images/%s/file HTTP/1.1\r\nHost: keel\r\nContent-Type: application/octet-stream\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		im.ID, e.token, 3<<20, bytes.Repeat([]byte{7}, 1<<20))
	e.mustProblem(400, e.rawCall(req, true), "request body ended early")
	if after := stored(); after != before {
		t.Fatalf("the cut upload left %d messages in the object store", after-before)
	}
	if strings.Contains(logs.String(), "internal error") || !strings.Contains(logs.String(), "level=INFO msg=\"request body ended early\"") {
		t.Fatalf("want an info line and no internal error; logs:\n%s", logs.String())
	}
	// The image takes a whole upload afterwards.
	r = e.must(200, e.call("PUT", "/v1/images/"+im.ID+"/file", bytes.Repeat([]byte{7}, 3<<20), "Content-Type", "application/octet-stream"))
	var done struct {
		Status    string `json:"status"`
		SizeBytes int64  `json:"size_bytes"`
	}
	r.json(t, &done)
	if done.Status != "active" || done.SizeBytes != 3<<20 {
		t.Fatalf("after the whole upload: %+v", done)
	}
}
