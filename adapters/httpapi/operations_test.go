package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/adapters/postgres"
)

// An operation's detail is documented for administrators and optional, on
// the operation and on each step.
func TestOpenAPIDocumentsTheDetailForAdmins(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string `json:"required"`
				Properties map[string]struct {
					Type        any    `json:"type"`
					Description string `json:"description"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(document(t, "/openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Operation", "Step"} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("no schema %s", name)
		}
		d, ok := s.Properties["detail"]
		if !ok || d.Type != "string" || !strings.Contains(d.Description, "For administrators") {
			t.Errorf("%s.detail: %+v", name, d)
		}
		if slices.Contains(s.Required, "detail") {
			t.Errorf("%s.detail is required; it is omitted when there is none", name)
		}
	}
}

// The detail is sent when there is one and left out when there is none.
func TestOperationDetailIsOmittedWhenEmpty(t *testing.T) {
	reason := "build failed on 3 hosts; last on h3: the hypervisor could not start the server"
	o := postgres.Operation{ID: "op-1", Status: "failed", Error: &reason, Detail: "virDomainCreate: /var/lib/keel/srv-1/domain.xml: denied",
		Steps: []postgres.Step{{Name: "schedule", Status: "compensated"}, {Name: "spawn", Status: "failed", Error: &reason, Detail: "virDomainCreate: /var/lib/keel/srv-1/domain.xml: denied"}}}
	raw, err := json.Marshal(operationOut(o))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Error  string                       `json:"error"`
		Detail *string                      `json:"detail"`
		Steps  []map[string]json.RawMessage `json:"steps"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Error != reason || got.Detail == nil || *got.Detail != o.Detail {
		t.Fatalf("operation: %s", raw)
	}
	if _, has := got.Steps[0]["detail"]; has {
		t.Errorf("a step without a detail sends one: %s", raw)
	}
	if d := string(got.Steps[1]["detail"]); d != `"virDomainCreate: /var/lib/keel/srv-1/domain.xml: denied"` {
		t.Errorf("failed step's detail %s: %s", d, raw)
	}
	o.Detail, o.Steps = "", nil
	if raw, _ := json.Marshal(operationOut(o)); strings.Contains(string(raw), `"detail"`) {
		t.Errorf("an operation without a detail sends one: %s", raw)
	}
}
