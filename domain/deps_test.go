package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// domain/ stays pure: it imports only the standard library, uuid, and itself.
func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "github.com/keel-cloud/keel/domain/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			first := strings.Split(imp, "/")[0]
			switch {
			case !strings.Contains(first, "."): // standard library
			case imp == "github.com/google/uuid":
			case strings.HasPrefix(imp, "github.com/keel-cloud/keel/domain"):
			default:
				t.Errorf("%s imports %s; domain/ must not touch the world", pkg, imp)
			}
		}
	}
}

// Every package says what it is for.
func TestEveryPackageHasADocComment(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{.Doc}}`, "github.com/keel-cloud/keel/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "|")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no doc comment", pkg)
		}
	}
}
