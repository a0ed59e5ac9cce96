package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keel-cloud/keel/audit"
)

// fakeAuditor keeps records in memory, or fails every publish.
type fakeAuditor struct {
	mu   sync.Mutex
	recs []audit.Record
	fail bool
}

func (f *fakeAuditor) Publish(_ context.Context, _ string, data []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, errors.New("audit stream down")
	}
	var r audit.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, err
	}
	f.recs = append(f.recs, r)
	return uint64(len(f.recs)), nil
}

func (f *fakeAuditor) LastSequence(context.Context) (uint64, error) { return uint64(len(f.recs)), nil }

func auditedAPI(f *fakeAuditor) *API {
	return &API{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Audit: f}
}

// A refused login is recorded with the problem's title and detail as its
// reason and the name it gave, never the password; a read is not
// recorded; a refused token is, on any method.
func TestAuditRecordsRefusalsWithTheirReason(t *testing.T) {
	f := &fakeAuditor{}
	h := auditedAPI(f).Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"user": "eve", "password": ""}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "r1")
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("login without a password: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/servers/abc", nil))
	if rec.Code != 401 {
		t.Fatalf("read without a token: %d", rec.Code)
	}
	if len(f.recs) != 2 {
		t.Fatalf("%d records, want the login and the refused read: %+v", len(f.recs), f.recs)
	}
	login, read := f.recs[0], f.recs[1]
	if login.Operation != "create-token" || login.Actor.UserName != "eve" || login.Outcome != audit.Failure || login.Status != 401 ||
		login.RequestID != "r1" || login.Target.Type != "tokens" || login.Reason != "Unauthorized: a login needs user and password" || login.Source != "192.0.2.1" {
		t.Fatalf("login record: %+v", login)
	}
	if read.Operation != "get-server" || read.Target != (audit.Target{Type: "servers", ID: "abc"}) || read.Status != 401 {
		t.Fatalf("refused read record: %+v", read)
	}
}

// A command whose record cannot be stored is answered 503, not with its
// own answer; a refused read is refused all the same.
func TestAuditOutageFailsCommandsNotRefusals(t *testing.T) {
	h := auditedAPI(&fakeAuditor{fail: true}).Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"user": "eve", "password": ""}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "audit trail") {
		t.Fatalf("command during an audit outage: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/servers", nil))
	if rec.Code != 401 {
		t.Fatalf("refused read during an audit outage: %d", rec.Code)
	}
}

func TestAuditTarget(t *testing.T) {
	cases := []struct {
		pattern, path, location string
		want                    audit.Target
	}{
		{"POST /v1/servers", "/v1/servers", "/v1/servers/s1", audit.Target{Type: "servers", ID: "s1"}},
		{"POST /v1/servers/{id}/start", "/v1/servers/s1/start", "/v1/operations/o1", audit.Target{Type: "servers", ID: "s1"}},
		{"PUT /v1/projects/{id}/members/{user}", "/v1/projects/p1/members/u1", "", audit.Target{Type: "projects", ID: "p1"}},
		{"POST /v1/admin/parked/{subscription}/{seq}/retry", "/v1/admin/parked/saga/7/retry", "", audit.Target{Type: "parked", ID: "saga"}},
		{"POST /v1/audit/verify", "/v1/audit/verify", "", audit.Target{Type: "verify"}},
		{"", "/v1/nowhere/x", "", audit.Target{Type: "nowhere"}},
	}
	for _, c := range cases {
		if got := target(c.pattern, c.path, c.location); got != c.want {
			t.Errorf("target(%q, %q, %q) = %+v, want %+v", c.pattern, c.path, c.location, got, c.want)
		}
	}
}
