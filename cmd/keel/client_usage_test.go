package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const usageJSON = `{"project_id":"p1","from":"2025-03-01T00:00:00Z","to":"2025-03-02T00:00:00Z","currency":"EUR",
"totals":{"server_hours":16.75,"vcpu_hours":16.75,"ram_gib_hours":33.5,"cost":0.201},
"lines":[{"resource_type":"server","resource_id":"s1","name":"web","flavor":{"id":"f1","name":"m1.small","vcpus":1,"ram_mib":2048},
"seconds":60300,"hours":16.75,"vcpu_hours":16.75,"ram_gib_hours":33.5,"cost":0.201}]}`

// keel usage sends the project and window as the API reads them and
// shows each server's running time and cost, then the totals; a time it
// cannot read is refused before any request.
func TestUsageSendsTheWindowAndShowsTheBill(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/usage": answer(200, "", usageJSON),
	})
	out, _, err := runCLI(t, srv.URL, "usage", "--project", "acme", "--from", "2025-03-01", "--to", "2025-03-02T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(f.requests()[0].query)
	if q.Get("project") != "acme" || q.Get("from") != "2025-03-01T00:00:00Z" || q.Get("to") != "2025-03-02T00:00:00Z" {
		t.Errorf("query %v; want project acme from 2025-03-01T00:00:00Z to 2025-03-02T00:00:00Z", q)
	}
	for _, want := range []string{"EUR", "web", "s1", "m1.small", "16h45m0s", "16.75", "33.5", "0.201", "TOTAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runCLI(t, srv.URL, "usage", "--from", "last tuesday"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("--from 'last tuesday': %v; want an error naming the formats", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests; a bad --from still sent one", n)
	}
}
