package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/keel-cloud/keel/domain/user"
)

// Every operation of the API is in the policy table, and the table names
// no operation the API does not have: an endpoint added without a rule is
// refused to everyone, and this test says which.
func TestEveryOperationHasAPolicy(t *testing.T) {
	h := (&API{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /openapi.json without a token: %d", rec.Code)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			seen[op.OperationID] = true
			if _, ok := Policy[op.OperationID]; !ok {
				t.Errorf("%s %s (%s) has no rule in Policy", method, path, op.OperationID)
			}
		}
	}
	for id := range Policy {
		if !seen[id] {
			t.Errorf("Policy names %s, which the API does not have", id)
		}
	}
}

func TestAllowed(t *testing.T) {
	cases := []struct {
		rule   Rule
		authed bool
		cloud  bool
		role   user.Role
		want   bool
	}{
		{Anyone, false, false, "", true},
		{Reader, false, false, "", false},
		{Reader, true, false, user.Reader, true},
		{Member, true, false, user.Reader, false},
		{Member, true, false, user.Member, true},
		{ProjectAdmin, true, false, user.Member, false},
		{ProjectAdmin, true, false, user.Admin, true},
		{CloudAdmin, true, false, user.Admin, false},
		{CloudAdmin, true, true, user.Admin, true},
		{Member, true, false, "", false},
	}
	for _, c := range cases {
		if got := Allowed(c.rule, c.authed, c.cloud, c.role); got != c.want {
			t.Errorf("Allowed(%s, authenticated %v, cloud admin %v, role %q) = %v, want %v", c.rule, c.authed, c.cloud, c.role, got, c.want)
		}
	}
}
