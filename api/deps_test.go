package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Any Go program can use the client without pulling in the control plane:
// package api imports only the standard library.
func TestAPIImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/keel-cloud/keel/api").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(strings.Split(imp, "/")[0], ".") {
			t.Errorf("package api imports %s; it must import only the standard library", imp)
		}
	}
}
