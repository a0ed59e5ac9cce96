// Package pgtest gives tests a fresh PostgreSQL database each.
//
// The first NewDatabase call in a test process starts one private cluster
// (see package pgcluster) in a fresh temporary directory, shared by every
// test of the process; each call then creates its own uniquely named
// database on it and drops it when the test ends. When the environment
// variable KEEL_TEST_DATABASE_URL is set, no cluster is started: databases
// are created on the server that URL points at, connecting as its user.
//
// A test package that uses NewDatabase must stop the shared cluster after its
// tests with:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
//
// Without it the server outlives the test process.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
)

// EnvURL names the environment variable holding the URL of an existing
// server to create test databases on instead of starting a cluster.
const EnvURL = "KEEL_TEST_DATABASE_URL"

// timeout bounds starting the cluster and each database operation.
const timeout = 2 * time.Minute

// shared is the server of the test process, set up once.
var shared struct {
	once    sync.Once
	admin   string // URL of a database to run CREATE/DROP DATABASE from
	cluster *pgcluster.Cluster
	tmp     string // temporary directory holding the cluster
	skip    string // reason to skip when the server binaries are missing
	err     error
}

// NewDatabase creates a fresh, empty database for t, drops it (closing any
// connections left open) when t ends, and returns its URL. It skips t when
// no server is configured and the PostgreSQL binaries are missing. The URL
// of a database on the private cluster carries the cluster's password.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := server(t)
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// RunMain runs the tests of m, then stops the shared cluster, if one was
// started, and removes its directory. It returns the exit code, for use as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
func RunMain(m *testing.M) int {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// server returns the admin URL of the shared server, starting it on first
// use, or skips or fails t.
func server(t testing.TB) string {
	t.Helper()
	shared.once.Do(setup)
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.admin
}

func setup() {
	if u := os.Getenv(EnvURL); u != "" {
		shared.admin, shared.err = u, checkURL(u)
		return
	}
	if err := pgcluster.Available(); err != nil {
		shared.skip = fmt.Sprintf("pgtest: postgres not available (set %s or run scripts/install-deps.sh): %v", EnvURL, err)
		return
	}
	shared.err = startCluster()
}

// startCluster starts the shared cluster in a fresh temporary directory that
// the postgres user can traverse.
func startCluster() error {
	tmp, err := os.MkdirTemp("", "keel-pgtest-")
	if err != nil {
		return fmt.Errorf("start test cluster: %w", err)
	}
	shared.tmp = tmp
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("start test cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "data"), Database: "postgres"})
	if err != nil {
		return fmt.Errorf("start test cluster: %w", err)
	}
	shared.cluster, shared.admin = c, c.URL
	return nil
}

// shutdown stops the shared cluster and removes its directory.
func shutdown() error {
	var err error
	if shared.cluster != nil {
		err = shared.cluster.Stop()
	}
	if shared.tmp != "" {
		if rmErr := os.RemoveAll(shared.tmp); err == nil && rmErr != nil {
			err = fmt.Errorf("remove test cluster: %w", rmErr)
		}
	}
	return err
}

func dropDatabase(t testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
	}
}

func execAdmin(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName derives a unique database name from a test name: a readable
// prefix and a random suffix, within PostgreSQL's 63-byte limit.
func databaseName(testName string) string {
	prefix := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	prefix = strings.TrimRight(prefix[:min(len(prefix), 40)], "_")
	suffix := make([]byte, 6)
	rand.Read(suffix)
	return "test_" + prefix + "_" + hex.EncodeToString(suffix)
}

// checkURL reports whether u is a postgres:// URL, the only form
// withDatabase can rewrite.
func checkURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		return fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	return nil
}

// withDatabase returns the URL serverURL with its database replaced by name.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse server URL: %w", err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}
