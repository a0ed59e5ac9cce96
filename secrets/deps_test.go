package secrets_test

import (
	"os/exec"
	"strings"
	"testing"
)

// secrets stays a small thing anyone can audit: the standard library only,
// and no logging, so a plaintext cannot leave it except through Open.
func TestSecretsImportsOnlyTheStandardLibraryAndDoesNotLog(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/keel-cloud/keel/secrets").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(strings.Split(imp, "/")[0], ".") || imp == "log" || imp == "log/slog" {
			t.Errorf("secrets imports %s", imp)
		}
	}
}
