package eventlog_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/keel-cloud/keel"

// goList runs go list with args and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// The reactive side and the command side reach the log through the ports
// only: nothing they build on, however indirectly, is NATS.
func TestReactiveSideDoesNotDependOnNATS(t *testing.T) {
	pkgs := []string{module + "/sagas/...", module + "/projections/...", module + "/commands/...",
		module + "/domain/...", module + "/eventlog/...", module + "/lease/..."}
	for _, dep := range goList(t, append([]string{"-deps"}, pkgs...)...) {
		if strings.Contains(dep, "nats-io") || dep == module+"/adapters/jetstream" {
			t.Errorf("%s is among the dependencies of sagas, projections, commands, domain, eventlog or lease", dep)
		}
	}
}

// Only adapters and the composition root (cmd/) import the JetStream
// adapter or a NATS package.
func TestOnlyAdaptersAndCmdImportJetStream(t *testing.T) {
	for _, line := range goList(t, "-f", `{{.ImportPath}}: {{join .Imports " "}}`, module+"/...") {
		pkg, imports, _ := strings.Cut(line, ": ")
		if strings.HasPrefix(pkg, module+"/adapters/") || strings.HasPrefix(pkg, module+"/cmd/") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.Contains(imp, "nats-io") || imp == module+"/adapters/jetstream" {
				t.Errorf("%s imports %s; only adapters/ and cmd/ may", pkg, imp)
			}
		}
	}
}
