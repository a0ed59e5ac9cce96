package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
)

// TestMain keeps every test of the package away from the developer's own
// saved login and KEEL_* settings: the client commands read them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keel-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	for _, k := range []string{"KEEL_API", "KEEL_TOKEN", "KEEL_USER", "KEEL_PASSWORD", "KEEL_NEW_PASSWORD", "KEEL_CURRENT_PASSWORD"} {
		os.Unsetenv(k)
	}
	code := pgtest.RunMain(m) // stops the Postgres the node tests started
	os.RemoveAll(dir)
	os.Exit(code)
}
