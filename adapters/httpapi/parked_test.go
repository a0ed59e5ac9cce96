package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/user"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

func parkedAPI(t *testing.T) (http.Handler, *memlog.Lot) {
	t.Helper()
	lot := &memlog.Lot{}
	for _, pc := range []eventlog.ParkedCommit{eventlogtest.Parked("saga-servers-v1", 7),
		eventlogtest.Parked("saga-servers-v1", 9), eventlogtest.Parked("host-work", 8)} {
		if err := lot.Park(context.Background(), pc); err != nil {
			t.Fatal(err)
		}
	}
	return (&API{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Parked: lot, Auth: cloudAdmin{}}).Handler(), lot
}

// cloudAdmin takes the token "admin" for a cloud admin's.
type cloudAdmin struct{}

func (cloudAdmin) Authenticate(_ context.Context, tok string) (commands.Principal, error) {
	if tok != "admin" {
		return commands.Principal{}, &commands.AuthError{Msg: "invalid token"}
	}
	return commands.Principal{UserID: "u-admin", Project: "p-admin", Role: user.Admin, CloudAdmin: true}, nil
}

func call(t *testing.T, h http.Handler, method, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer admin")
	h.ServeHTTP(rec, req)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if rec.Code >= 400 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
		t.Fatalf("%s %s: %d is not a problem: %s", method, path, rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Code, body
}

func TestParkedListPagesAndFilters(t *testing.T) {
	h, _ := parkedAPI(t)
	code, body := call(t, h, "GET", "/v1/admin/parked?limit=2")
	items, _ := body["items"].([]any)
	if code != 200 || len(items) != 2 || body["next_cursor"] == "" {
		t.Fatalf("first page: %d %v", code, body)
	}
	if first := items[0].(map[string]any); first["subscription"] != "host-work" || first["state"] != "parked" {
		t.Fatalf("first item %v", first)
	}
	_, body = call(t, h, "GET", "/v1/admin/parked?limit=2&cursor="+body["next_cursor"].(string))
	if items, _ := body["items"].([]any); len(items) != 1 || body["next_cursor"] != "" {
		t.Fatalf("second page: %v", body)
	}
	_, body = call(t, h, "GET", "/v1/admin/parked?subscription=saga-servers-v1")
	if items, _ := body["items"].([]any); len(items) != 2 {
		t.Fatalf("saga-servers-v1: %v", body)
	}
	if code, _ := call(t, h, "GET", "/v1/admin/parked?cursor=nonsense"); code != 422 {
		t.Fatalf("a made-up cursor: %d", code)
	}
}

func TestParkedRetryMarksAndSkipRemoves(t *testing.T) {
	h, lot := parkedAPI(t)
	ctx := context.Background()
	if code, body := call(t, h, "POST", "/v1/admin/parked/saga-servers-v1/7/retry"); code != 202 || body["state"] != "retry" {
		t.Fatalf("retry: %d %v", code, body)
	}
	if pc, err := lot.Get(ctx, "saga-servers-v1", 7); err != nil || pc.State != eventlog.StateRetry {
		t.Fatalf("after retry: %+v %v", pc, err)
	}
	if code, body := call(t, h, "POST", "/v1/admin/parked/saga-servers-v1/9/skip"); code != 200 || body["sequence"] != 9.0 {
		t.Fatalf("skip: %d %v", code, body)
	}
	if _, err := lot.Get(ctx, "saga-servers-v1", 9); err == nil {
		t.Fatal("skipped commit still parked")
	}
	for _, path := range []string{"/v1/admin/parked/saga-servers-v1/9/skip", "/v1/admin/parked/saga-servers-v1/8/retry",
		"/v1/admin/parked/nope/7/skip"} {
		if code, body := call(t, h, "POST", path); code != 404 || !strings.Contains(body["detail"].(string), "GET /v1/admin/parked") {
			t.Fatalf("POST %s: %d %v", path, code, body)
		}
	}
}
