package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
		Items []serverJSON `json:"items"`
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
	var first acceptedJSON
	r.json(t, &first)
	// Forget the recorded answer, as if the process died before storing it.
	e.restartForgettingIdempotency()
	r = e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "lost", "flavor": "small", "image": "tiny"},
		"Idempotency-Key", "lost-answer", "Keel-Min-Sequence", fmt.Sprint(e.minSeq)))
	var again acceptedJSON
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
			var p problemJSON
			r.json(t, &p)
			if p.Status != c.want || p.Detail == "" || r.Header.Get("X-Request-Id") == "" {
				t.Fatalf("problem %+v", p)
			}
		})
	}
	if after := head(); after != before {
		t.Fatalf("bad requests wrote %d commits", after-before)
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
	var f flavorJSON
	r.json(t, &f)
	if f.Name != "dup" {
		t.Fatalf("recreated flavor %+v", f)
	}
}
