package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func TestParseKV(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mode kvMode
		want map[string]string
		err  string
	}{
		{args: nil, want: map[string]string{}},
		{args: []string{"ssd=true", "rack=r1"}, want: map[string]string{"ssd": "true", "rack": "r1"}},
		{args: []string{"aggregate:ssd=true", "trait:gpu=required"}, want: map[string]string{"aggregate:ssd": "true", "trait:gpu": "required"}},
		{args: []string{"url=http://x/?a=b"}, want: map[string]string{"url": "http://x/?a=b"}}, // split at the first =
		{args: []string{"gone=", "kept=1"}, mode: kvEmptyValue, want: map[string]string{"gone": "", "kept": "1"}},
		{args: []string{"gone="}, err: `--metadata "gone=": the value is empty`},
		{args: []string{"ssd"}, err: `--metadata "ssd": want KEY=VALUE`},
		{args: []string{"=x"}, mode: kvEmptyValue, err: `--metadata "=x": the key is empty`},
		{args: []string{"a=1", "a=2"}, err: `--metadata: key "a" is given twice`},
	} {
		got, err := parseKV("--metadata", tc.args, tc.mode)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err = %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !equalMaps(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFmtKV(t *testing.T) {
	m := map[string]string{"ssd": "true", "availability_zone": "az1", "gen": "3"}
	if got := fmtKV(m); got != "availability_zone=az1,gen=3,ssd=true" {
		t.Errorf("fmtKV = %q", got)
	}
	if got := fmtKV(m, "availability_zone"); got != "gen=3,ssd=true" {
		t.Errorf("fmtKV skipping = %q", got)
	}
	if got := fmtKV(nil); got != "" {
		t.Errorf("fmtKV(nil) = %q", got)
	}
}

func testHost() api.Host {
	reason := "bad DIMM"
	down := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return api.Host{ID: "h-1", Name: "sim-1", Driver: "fake", Traits: []string{"gpu", "ssd"}, UnknownGuests: []string{"legacy-db"},
		Status: "disabled", State: "down", Reason: &reason, DownSince: &down,
		Ratios:   api.Ratios{CPU: 4, RAM: 1.5, Disk: 1},
		Physical: api.Resources{VCPUs: 32, RAMMiB: 1000, DiskGiB: 100},
		Total:    api.Resources{VCPUs: 128, RAMMiB: 1500, DiskGiB: 100},
		Used:     api.Resources{VCPUs: 6, RAMMiB: 600, DiskGiB: 30},
		Free:     api.Resources{VCPUs: 122, RAMMiB: 900, DiskGiB: 70}, Servers: 3}
}

func TestWriteHostsTable(t *testing.T) {
	var b bytes.Buffer
	if err := writeHosts(&b, []api.Host{testHost()}); err != nil {
		t.Fatal(err)
	}
	want := `NAME   STATUS    STATE  DRIVER  SERVERS  VCPUS  RAM_MIB   DISK_GIB
sim-1  disabled  down   fake    3        6/128  600/1500  30/100
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteHost(t *testing.T) {
	var b bytes.Buffer
	if err := writeHost(&b, testHost()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"STATUS_REASON   bad DIMM\n", "STATE           down\n", "DOWN_SINCE      2026-01-02T03:04:05.000Z\n",
		"TRAITS          gpu, ssd\n", "OVERCOMMIT      cpu 4, ram 1.5, disk 1\n", "ADDRESS         -\n",
		"UNKNOWN_GUESTS  legacy-db\n",
		"RESOURCE  PHYSICAL  RATIO  TOTAL  USED  FREE\n",
		"VCPUS     32        4      128    6     122\n",
		"RAM_MIB   1000      1.5    1500   600   900\n",
		"DISK_GIB  100       1      100    30    70\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestWriteGroups(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	err := writeGroups(&b, []api.ServerGroup{
		{ID: "g1", Name: "web", Policy: "anti-affinity", CreatedAt: at},
		{ID: "g2", Name: "db", Policy: "soft-affinity", MaxPerHost: 2, CreatedAt: at},
		{ID: "g3", Name: "batch", Policy: "soft-anti-affinity", CreatedAt: at},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `ID  NAME   POLICY              MAX_PER_HOST  CREATED
g1  web    anti-affinity       1             2026-01-01T00:00:00.000Z
g2  db     soft-affinity       2             2026-01-01T00:00:00.000Z
g3  batch  soft-anti-affinity  no limit      2026-01-01T00:00:00.000Z
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteGroup(t *testing.T) {
	sg := api.ServerGroup{ID: "g1", Name: "web", Policy: "soft-anti-affinity", MaxPerHost: 2,
		Members: []api.GroupMember{{ServerID: "s1", Host: "sim-2"}, {ServerID: "s2", Host: "sim-1"}, {ServerID: "s3", Host: "sim-2"}}}
	var b bytes.Buffer
	if err := writeGroup(&b, sg, map[string]string{"s1": "web-1", "s3": "web-3"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"MEMBERS       3\n", "HOSTS         sim-1 (1), sim-2 (2)\n",
		"SERVER_ID  NAME   HOST\ns1         web-1  sim-2\ns2         -      sim-1\ns3         web-3  sim-2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	b.Reset()
	if err := writeGroup(&b, sg, nil); err != nil || !strings.Contains(b.String(), "SERVER_ID  HOST\ns1         sim-2\n") {
		t.Errorf("without names: %v\n%s", err, b.String())
	}
	b.Reset()
	sg.Members = nil
	if err := writeGroup(&b, sg, nil); err != nil || strings.Contains(b.String(), "SERVER_ID") || !strings.Contains(b.String(), "HOSTS         -\n") {
		t.Errorf("no members: %v\n%s", err, b.String())
	}
}

func TestWriteAggregates(t *testing.T) {
	az := "zone-a"
	items := []api.HostAggregate{
		{ID: "a1", Name: "fast", AvailabilityZone: &az, Hosts: []string{"sim-1", "sim-2"},
			Metadata: map[string]string{"availability_zone": "zone-a", "ssd": "true", "gen": "3"}},
		{ID: "a2", Name: "plain", Hosts: []string{}, Metadata: map[string]string{}},
	}
	var b bytes.Buffer
	if err := writeAggregates(&b, items); err != nil {
		t.Fatal(err)
	}
	want := `ID  NAME   AZ      HOSTS        METADATA
a1  fast   zone-a  sim-1,sim-2  gen=3,ssd=true
a2  plain  -       -            -
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeAggregate(&b, items[0]); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AVAILABILITY_ZONE  zone-a\n", "HOSTS              sim-1, sim-2\n",
		"METADATA_KEY       VALUE\navailability_zone  zone-a\ngen                3\nssd                true\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := writeAggregate(&b, items[1]); err != nil || strings.Contains(b.String(), "METADATA_KEY") {
		t.Errorf("no metadata: %v\n%s", err, b.String())
	}
}

func TestWriteZones(t *testing.T) {
	var b bytes.Buffer
	err := writeZones(&b, []api.AvailabilityZone{{Name: "default", Hosts: []string{"sim-3"}},
		{Name: "zone-a", Hosts: []string{"sim-1", "sim-2"}}, {Name: "zone-b", Hosts: []string{}}})
	want := "ZONE     HOSTS\ndefault  sim-3\nzone-a   sim-1,sim-2\nzone-b   -\n"
	if err != nil || b.String() != want {
		t.Fatalf("got %q, %v; want %q", b.String(), err, want)
	}
}

// fakeAPI records requests and answers them with a handler per "METHOD path".
type fakeAPI struct {
	t      *testing.T
	mu     sync.Mutex
	reqs   []recorded
	routes map[string]func(w http.ResponseWriter, r *http.Request)
}

type recorded struct {
	method, path, minSeq, idemKey, ifMatch string
	auth                                   string // the Authorization header
	query                                  string
	body                                   map[string]any
}

func newFakeAPI(t *testing.T, routes map[string]func(w http.ResponseWriter, r *http.Request)) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, routes: routes}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := recorded{method: r.Method, path: r.URL.EscapedPath(), minSeq: r.Header.Get("Keel-Min-Sequence"), idemKey: r.Header.Get("Idempotency-Key"), ifMatch: r.Header.Get("If-Match"),
		auth: r.Header.Get("Authorization"), query: r.URL.RawQuery}
	if raw := mustRead(f.t, r.Body); len(raw) > 0 {
		if err := json.Unmarshal(raw, &rec.body); err != nil {
			f.t.Errorf("%s %s: body %s: %v", r.Method, r.URL, raw, err)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	h, ok := f.routes[r.Method+" "+rec.path]
	if !ok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found","status":404,"detail":"no route ` + r.Method + " " + rec.path + `"}`))
		return
	}
	h(w, r)
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// answer writes a JSON answer with a status and, when seq is not "", a Keel-Sequence.
func answer(status int, seq, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if seq != "" {
			w.Header().Set("Keel-Sequence", seq)
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// runCLI runs the keel client commands against base.
func runCLI(t *testing.T, base string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "keel", SilenceUsage: true, SilenceErrors: true}
	addClientCommands(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--api", base}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

const groupJSON = `{"id":"g1","name":"web","policy":"anti-affinity","max_per_host":0,"members":[],"created_at":"2026-01-01T00:00:00Z"}`

func TestGroupCreateReadsItBack(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/server-groups": answer(201, "41", groupJSON),
		"GET /v1/server-groups/g1": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Keel-Min-Sequence") != "41" {
				answer(404, "", `{"title":"Not Found","status":404,"detail":"server group g1 not found"}`)(w, r)
				return
			}
			answer(200, "", groupJSON)(w, r)
		},
	})
	out, errOut, err := runCLI(t, srv.URL, "server-group", "create", "web", "--policy", "anti-affinity", "--idempotency-key", "k1")
	if err != nil || errOut != "" || !strings.Contains(out, "POLICY        anti-affinity\n") {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].idemKey != "k1" || reqs[1].minSeq != "41" {
		t.Fatalf("requests %+v", reqs)
	}
	if b := reqs[0].body; b["name"] != "web" || b["policy"] != "anti-affinity" || len(b) != 2 {
		t.Fatalf("body %v (max_per_host 0 is left out)", b)
	}
}

func TestGroupCreateReadBackFailsStillSucceeds(t *testing.T) {
	_, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/server-groups":   answer(201, "41", groupJSON),
		"GET /v1/server-groups/g1": answer(503, "", `{"title":"Service Unavailable","status":503,"detail":"the read model has not reached sequence 41"}`),
	})
	out, errOut, err := runCLI(t, srv.URL, "server-group", "create", "web", "--policy", "anti-affinity", "-o", "json")
	if err != nil || !strings.Contains(errOut, "note: done, but reading it back failed (503") || !json.Valid([]byte(out)) {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
}

func TestDeleteWaitsForTheReadModel(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"DELETE /v1/hosts/sim-3": answer(204, "77", ""),
	})
	out, errOut, err := runCLI(t, srv.URL, "host", "delete", "sim-3")
	if err != nil || out != "host sim-3 deleted\n" || errOut != "" {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].method != "GET" || reqs[1].path != "/v1/hosts/sim-3" || reqs[1].minSeq != "77" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestDeleteConflictIsTheError(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"DELETE /v1/hosts/sim-3": answer(409, "", `{"title":"Conflict","status":409,"detail":"host sim-3 still holds 2 server(s); delete or move them before removing the host"}`),
	})
	out, _, err := runCLI(t, srv.URL, "host", "delete", "sim-3")
	if err == nil || err.Error() != "409 Conflict: host sim-3 still holds 2 server(s); delete or move them before removing the host" || out != "" {
		t.Fatalf("out %q, err %v", out, err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests after a refused delete", n)
	}
}

const hostJSON = `{"id":"h1","name":"sim-1","status":"disabled","state":"up","status_reason":"bad DIMM","overcommit":{"cpu":4,"ram":1,"disk":1}}`

func TestHostActions(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/hosts/sim-1/disable":         answer(200, "5", hostJSON),
		"POST /v1/hosts/sim-1/maintenance/end": answer(200, "6", hostJSON),
	})
	out, _, err := runCLI(t, srv.URL, "host", "disable", "sim-1", "--reason", "bad DIMM")
	if err != nil || !regexp.MustCompile(`(?m)^STATUS_REASON +bad DIMM$`).MatchString(out) {
		t.Fatalf("disable: %q, %v", out, err)
	}
	if _, _, err := runCLI(t, srv.URL, "host", "maintenance-end", "sim-1"); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if reqs[0].body["reason"] != "bad DIMM" || reqs[1].body != nil || reqs[1].path != "/v1/hosts/sim-1/maintenance/end" {
		t.Fatalf("requests %+v", reqs)
	}
	if _, _, err := runCLI(t, srv.URL, "host", "enable", "sim-1", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "unknown flag: --reason") {
		t.Fatalf("enable --reason: %v (the API keeps no reason for enable)", err)
	}
}

// The CLI sends only the ratios given and lets the server merge them on the
// host's current ratios: no read first, so no stale value of another ratio
// is written back.
func TestHostSetOvercommitSendsOnlyTheRatiosGiven(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PATCH /v1/hosts/sim-1/overcommit": answer(200, "9", hostJSON),
	})
	if _, _, err := runCLI(t, srv.URL, "host", "set-overcommit", "sim-1", "--cpu", "8"); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].method != "PATCH" || reqs[0].ifMatch != "" {
		t.Fatalf("requests %+v", reqs)
	}
	if b := reqs[0].body; len(b) != 1 || b["cpu"] != 8.0 {
		t.Fatalf("body %v", b)
	}
	if _, _, err := runCLI(t, srv.URL, "host", "set-overcommit", "sim-1", "--ram", "1", "--disk", "1", "--if-version", "7"); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[1]; len(r.body) != 2 || r.body["ram"] != 1.0 || r.body["disk"] != 1.0 || r.ifMatch != `"7"` {
		t.Fatalf("request %+v", r)
	}
	if _, _, err := runCLI(t, srv.URL, "host", "set-overcommit", "sim-1"); err == nil || !strings.Contains(err.Error(), "at least one of") {
		t.Fatalf("no ratio: %v", err)
	}
}

const aggJSON = `{"id":"a1","name":"fast","availability_zone":"zone-a","metadata":{"availability_zone":"zone-a"},"hosts":["sim-1"]}`

func TestAggregateCommandsSendTheirBodies(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/aggregates":                                answer(201, "3", aggJSON),
		"GET /v1/aggregates/a1":                              answer(200, "3", aggJSON),
		"PUT /v1/aggregates/fast/metadata":                   answer(200, "4", aggJSON),
		"GET /v1/hosts/93a1c063-1f87-5d48-b981-c852ea47f268": answer(200, "", `{"name":"sim-1"}`),
		"POST /v1/aggregates/fast/hosts":                     answer(200, "5", aggJSON),
		"DELETE /v1/aggregates/fast/hosts/sim%202":           answer(200, "6", aggJSON),
	})
	for _, args := range [][]string{
		{"aggregate", "create", "fast", "--az", "zone-a", "--metadata", "ssd=true", "--metadata", "rack=r1"},
		{"aggregate", "set-metadata", "fast", "ssd=", "gen=3"},
		{"aggregate", "add-host", "fast", "93a1c063-1f87-5d48-b981-c852ea47f268"},
		{"aggregate", "remove-host", "fast", "sim 2"},
	} {
		if out, _, err := runCLI(t, srv.URL, args...); err != nil || !strings.Contains(out, "AVAILABILITY_ZONE  zone-a") {
			t.Fatalf("%q: %q, %v", args, out, err)
		}
	}
	reqs := f.requests()
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	want := []string{
		`POST /v1/aggregates {"availability_zone":"zone-a","metadata":{"rack":"r1","ssd":"true"},"name":"fast"}`,
		`GET /v1/aggregates/a1 null`, // read back once the read model has it
		`PUT /v1/aggregates/fast/metadata {"metadata":{"gen":"3","ssd":""}}`,
		`GET /v1/hosts/93a1c063-1f87-5d48-b981-c852ea47f268 null`,
		`POST /v1/aggregates/fast/hosts {"host":"sim-1"}`,
		`DELETE /v1/aggregates/fast/hosts/sim%202 null`,
	}
	if len(reqs) != len(want) {
		t.Fatalf("requests %+v", reqs)
	}
	for i, r := range reqs {
		if got := r.method + " " + r.path + " " + js(r.body); got != want[i] {
			t.Errorf("request %d: got %s\nwant %s", i, got, want[i])
		}
	}
	if _, _, err := runCLI(t, srv.URL, "aggregate", "create", "x", "--metadata", "ssd"); err == nil || err.Error() != `--metadata "ssd": want KEY=VALUE` {
		t.Fatalf("bad metadata: %v", err)
	}
	if n := len(f.requests()); n != len(want) {
		t.Fatalf("a bad argument still sent a request")
	}
}

func TestServerCreateHintsAndFlavorExtraSpecs(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/servers":   answer(202, "8", `{"server":{"id":"s1","name":"web-1","status":"BUILDING"},"operation_id":"op1"}`),
		"POST /v1/flavors":   answer(201, "9", `{"id":"f1","name":"gpu","vcpus":2,"ram_mib":512,"extra_specs":{"trait:gpu":"required"}}`),
		"GET /v1/flavors/f1": answer(200, "", `{"id":"f1","name":"gpu","vcpus":2,"ram_mib":512,"extra_specs":{"trait:gpu":"required"}}`),
	})
	if _, _, err := runCLI(t, srv.URL, "server", "create", "web-1", "--flavor", "m1", "--image", "cirros",
		"--group", "web", "--az", "zone-a", "--target-host", "sim-2"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, srv.URL, "flavor", "create", "gpu", "--vcpus", "2", "--ram-mib", "512", "--extra-spec", "trait:gpu=required")
	if err != nil || !strings.Contains(out, "trait:gpu=required") {
		t.Fatalf("flavor create: %q, %v", out, err)
	}
	reqs := f.requests()
	if b := reqs[0].body; b["server_group"] != "web" || b["availability_zone"] != "zone-a" || b["target_host"] != "sim-2" {
		t.Fatalf("server body %v", b)
	}
	if specs, _ := reqs[1].body["extra_specs"].(map[string]any); specs["trait:gpu"] != "required" || len(specs) != 1 {
		t.Fatalf("flavor body %v", reqs[1].body)
	}
	if reqs[2].method != "GET" || reqs[2].minSeq != "9" {
		t.Fatalf("flavor read back %+v", reqs[2])
	}
	// Without hints the body has none.
	if _, _, err := runCLI(t, srv.URL, "server", "create", "web-2", "--flavor", "m1", "--image", "cirros"); err != nil {
		t.Fatal(err)
	}
	if b := f.requests()[3].body; len(b) != 3 {
		t.Fatalf("server body without hints %v", b)
	}
	// --user-data sends the file's bytes in base64.
	ud := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(ud, []byte("#cloud-config\nhostname: \xff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, srv.URL, "server", "create", "web-3", "--flavor", "m1", "--image", "cirros", "--user-data", ud); err != nil {
		t.Fatal(err)
	}
	if b := f.requests()[4].body; b["user_data"] != base64.StdEncoding.EncodeToString([]byte("#cloud-config\nhostname: \xff\n")) {
		t.Fatalf("server body with user data %v", b)
	}
	if _, _, err := runCLI(t, srv.URL, "server", "create", "web-4", "--flavor", "m1", "--image", "cirros", "--user-data", ud+".missing"); err == nil {
		t.Fatal("a missing --user-data file was not an error")
	}
}

func TestGroupShowNamesMembers(t *testing.T) {
	_, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/server-groups/web": answer(200, "", `{"id":"g1","name":"web","policy":"anti-affinity",
			"members":[{"server_id":"s1","host":"sim-1"},{"server_id":"s2","host":"sim-2"}]}`),
		"GET /v1/servers/s1": answer(200, "", `{"id":"s1","name":"web-1"}`),
		// s2 is gone: shown without a name.
	})
	out, _, err := runCLI(t, srv.URL, "server-group", "show", "web")
	if err != nil || !strings.Contains(out, "s1         web-1  sim-1\ns2         -      sim-2\n") {
		t.Fatalf("%q, %v", out, err)
	}
	out, _, err = runCLI(t, srv.URL, "server-group", "show", "web", "-o", "json")
	if err != nil || !json.Valid([]byte(out)) || strings.Contains(out, "web-1") {
		t.Fatalf("json: %q, %v", out, err)
	}
}

// A project's resources are listed for the token's project; --all-projects
// asks for every project's, and only resources of projects offer it.
func TestListAllProjects(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/servers": answer(200, "", `{"items":[],"next_cursor":""}`),
	})
	for _, args := range [][]string{{"server", "list"}, {"server", "list", "--all-projects"}} {
		if _, stderr, err := runCLI(t, srv.URL, args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
	}
	reqs := f.requests()
	if len(reqs) != 2 || strings.Contains(reqs[0].query, "all_projects") || !strings.Contains(reqs[1].query, "all_projects=true") {
		t.Fatalf("queries sent: %+v", reqs)
	}
	if _, _, err := runCLI(t, srv.URL, "flavor", "list", "--all-projects"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Fatalf("flavor list --all-projects: %v, want an unknown flag", err)
	}
}

// keel quota set sends the limits named; show prints limit and use.
func TestQuotaSetAndShow(t *testing.T) {
	const q = `{"project_id":"p1","version":3,"items":[{"resource":"servers","limit":10,"in_use":2},{"resource":"vcpus","limit":null,"in_use":4}]}`
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /v1/projects/web/quotas": answer(200, "9", q),
		"GET /v1/projects/web/quotas": answer(200, "", q),
	})
	if _, stderr, err := runCLI(t, srv.URL, "quota", "set", "web", "servers=10", "vcpus=-1"); err != nil {
		t.Fatalf("quota set: %v %s", err, stderr)
	}
	reqs := f.requests()
	limits, _ := reqs[0].body["limits"].(map[string]any)
	if reqs[0].method != "PUT" || limits["servers"] != float64(10) || limits["vcpus"] != float64(-1) || len(limits) != 2 {
		t.Fatalf("sent %+v", reqs[0])
	}
	out, _, err := runCLI(t, srv.URL, "quota", "show", "web")
	if err != nil || !strings.Contains(out, "servers") || !strings.Contains(out, "10") || !strings.Contains(out, "vcpus     -") {
		t.Fatalf("quota show: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, srv.URL, "quota", "set", "web", "servers=ten"); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("a limit that is not a number: %v", err)
	}
}

// A member's create --wait shows the server once its task is over, read
// again while the servers projection is a moment behind the operation's
// end, without the projections list (a cloud admin's call: 403 here).
func TestCreateWaitShowsTheServerToAMember(t *testing.T) {
	var reads atomic.Int32
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/servers":       answer(202, "30", `{"server":{"id":"s1","name":"web","status":"BUILDING"},"operation_id":"op1"}`),
		"GET /v1/operations/op1": answer(200, "", `{"id":"op1","kind":"server.create","status":"succeeded","steps":[{"name":"schedule","status":"succeeded"}]}`),
		"GET /v1/projections":    answer(403, "", `{"title":"Forbidden","status":403,"detail":"list-projections needs the cloud admin role; you are member"}`),
		"GET /v1/servers/s1": func(w http.ResponseWriter, r *http.Request) {
			if reads.Add(1) == 1 { // the row before the spawn reached it
				answer(200, "", `{"id":"s1","name":"web","status":"BUILDING","task_state":"spawning"}`)(w, r)
				return
			}
			answer(200, "", `{"id":"s1","name":"web","status":"ACTIVE","task_state":null,"addresses":["10.0.0.2"]}`)(w, r)
		},
	})
	out, errOut, err := runCLI(t, srv.URL, "server", "create", "web", "--flavor", "f", "--image", "i", "--wait")
	if err != nil || !regexp.MustCompile(`(?m)^STATUS +ACTIVE$`).MatchString(out) || !strings.Contains(out, "10.0.0.2") {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
	for _, r := range f.requests() {
		if r.path == "/v1/projections" {
			t.Fatalf("the CLI asked for the projections list: %+v", f.requests())
		}
	}
}
