package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// document fetches an OpenAPI document from a handler built without
// dependencies: registering routes needs none.
func document(t *testing.T, path string) []byte {
	t.Helper()
	h := (&API{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

type oasOp struct {
	OperationID string   `json:"operationId"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Parameters  []struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]struct {
		Headers map[string]any `json:"headers"`
	} `json:"responses"`
}

func (o oasOp) hasHeaderParam(name string) bool {
	return slices.ContainsFunc(o.Parameters, func(p struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	}) bool {
		return p.Ref == "#/components/parameters/"+name || (p.In == "header" && p.Name == name)
	})
}

type oasDoc struct {
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]oasOp `json:"paths"`
	Components struct {
		Schemas    map[string]any `json:"schemas"`
		Parameters map[string]any `json:"parameters"`
		Headers    map[string]any `json:"headers"`
	} `json:"components"`
}

func TestOpenAPIDeclaresHeadersTagsAndDescriptions(t *testing.T) {
	var doc oasDoc
	if err := json.Unmarshal(document(t, "/openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, tg := range doc.Tags {
		if tg.Description == "" {
			t.Errorf("tag %s has no description", tg.Name)
		}
		tags[tg.Name] = true
	}
	// Reads that wait for the read model; the projection list, the live
	// stream and the parking lot do not read it.
	noMinSeq := map[string]bool{"list-projections": true, "stream-events": true, "list-parked": true, "get-whoami": true, "list-audit": true}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			id := op.OperationID
			if op.Description == "" {
				t.Errorf("%s has no description", id)
			}
			for _, tg := range op.Tags {
				if !tags[tg] {
					t.Errorf("%s: tag %s is not defined at the top level", id, tg)
				}
			}
			want := []string{"X-Request-Id"}
			if method == "get" && !noMinSeq[id] || method != "get" {
				want = append(want, "Keel-Min-Sequence")
			}
			idempotent := method != "get" && !strings.HasSuffix(path, "/file")
			if idempotent {
				want = append(want, "Idempotency-Key")
			}
			for _, h := range want {
				if !op.hasHeaderParam(h) {
					t.Errorf("%s does not declare the request header %s", id, h)
				}
			}
			for status, res := range op.Responses {
				if res.Headers["X-Request-Id"] == nil {
					t.Errorf("%s %s does not declare the response header X-Request-Id", id, status)
				}
				if idempotent && res.Headers["Idempotent-Replayed"] == nil {
					t.Errorf("%s %s does not declare the response header Idempotent-Replayed", id, status)
				}
			}
		}
	}
	for _, id := range []string{"create-flavor", "create-server", "delete-server", "upload-image", "disable-host"} {
		if op := find(doc, id); op.Responses[firstSuccess(op)].Headers["Keel-Sequence"] == nil {
			t.Errorf("%s does not declare the response header Keel-Sequence", id)
		}
	}
}

func find(doc oasDoc, id string) oasOp {
	for _, ops := range doc.Paths {
		for _, op := range ops {
			if op.OperationID == id {
				return op
			}
		}
	}
	return oasOp{}
}

func firstSuccess(op oasOp) string {
	for s := range op.Responses {
		if strings.HasPrefix(s, "2") {
			return s
		}
	}
	return ""
}

func TestOpenAPISchemasHaveCleanNamesAndNoNullArrays(t *testing.T) {
	var doc oasDoc
	raw := document(t, "/openapi.json")
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for name := range doc.Components.Schemas {
		for _, bad := range []string{"ListBody", "OutputBody", "Request", "-"} {
			if strings.Contains(name, bad) {
				t.Errorf("schema %s: generated name (contains %q)", name, bad)
			}
		}
	}
	var all any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	walk(all, "", func(where string, m map[string]any) {
		if types, ok := m["type"].([]any); ok && slices.Contains(types, "array") && slices.Contains(types, "null") {
			t.Errorf("%s: array may be null", where)
		}
	})
}

func walk(v any, where string, f func(string, map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(where, v)
		for k, sub := range v {
			walk(sub, where+"/"+k, f)
		}
	case []any:
		for _, sub := range v {
			walk(sub, where, f)
		}
	}
}

// TestOpenAPIPassesSpectral lints both forms of the document with the
// spectral:oas ruleset (.spectral.yaml) and fails on any error or warning.
func TestOpenAPIPassesSpectral(t *testing.T) {
	root := repoRoot(t)
	spectral := spectralPath(root)
	if spectral == "" {
		t.Skip("spectral is not installed: make deps (scripts/install-deps.sh) installs it into .tools, or set KEEL_SPECTRAL")
	}
	dir := t.TempDir()
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json"} {
		file := filepath.Join(dir, strings.TrimPrefix(path, "/"))
		if err := os.WriteFile(file, document(t, path), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(spectral, "lint", "--ruleset", filepath.Join(root, ".spectral.yaml"), "--fail-severity=warn", file)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("spectral lint %s: %v\n%s", path, err, out)
		}
	}
}

// spectralPath finds the spectral CLI: $KEEL_SPECTRAL, the tools folder
// where install-deps.sh puts it ($KEEL_TOOLS_DIR, default .tools), or PATH.
func spectralPath(root string) string {
	if p := os.Getenv("KEEL_SPECTRAL"); p != "" {
		return p
	}
	tools := os.Getenv("KEEL_TOOLS_DIR")
	if tools == "" {
		tools = filepath.Join(root, ".tools")
	}
	if p := filepath.Join(tools, "node_modules", ".bin", "spectral"); fileExists(p) {
		return p
	}
	p, _ := exec.LookPath("spectral")
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	return dir
}
