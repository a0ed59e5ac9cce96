package pgcluster

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestOnlyKeelConnects: the private cluster takes only clients that know the
// password kept in its directory; another local user knows neither.
func TestOnlyKeelConnects(t *testing.T) {
	t.Parallel()
	dir := privateDataDir(t)
	c := startCluster(t, Options{Dir: dir, Logf: t.Logf})
	if err := connectOnce(c.URL); err != nil {
		t.Fatalf("connect with the password: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, passwordFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v (err %v), want 0600", passwordFile, fi.Mode().Perm(), err)
	}
	for name, password := range map[string]string{"no password": "", "a wrong password": "guess"} {
		if err := connectOnce(withPassword(c.URL, password)); !isAuthError(err) {
			t.Errorf("connect with %s: err = %v, want password authentication failed (28P01)", name, err)
		}
	}
	if _, err := exec.LookPath("psql"); os.Geteuid() != 0 || err != nil {
		t.Logf("not root or no psql: skipping the connection attempt as user nobody")
		return
	}
	// As root, a local user other than postgres and root: user nobody.
	psql := exec.Command("runuser", "-u", "nobody", "--", "psql", "-w", withPassword(c.URL, ""), "-c", "SELECT 1")
	if out, err := psql.CombinedOutput(); err == nil || !strings.Contains(string(out), "password") {
		t.Errorf("psql as nobody: err %v, output %q; want refused for want of a password", err, out)
	}
	read := exec.Command("runuser", "-u", "nobody", "--", "cat", filepath.Join(dir, passwordFile))
	if out, err := read.CombinedOutput(); err == nil {
		t.Errorf("nobody read the password file: %q", out)
	}
}

// TestStartMigratesTrustCluster: a cluster initialised the way pgcluster did
// before passwords (initdb --auth=trust) starts, gets a password and then
// refuses clients without it, and keeps it across a restart.
func TestStartMigratesTrustCluster(t *testing.T) {
	t.Parallel()
	dir := privateDataDir(t)
	initTrustCluster(t, dir)

	c := startCluster(t, Options{Dir: dir, Logf: t.Logf})
	if err := connectOnce(c.URL); err != nil {
		t.Fatalf("connect with the password after migration: %v", err)
	}
	waitAuthError(t, withPassword(c.URL, ""))
	if !hbaCurrent(dir) {
		t.Errorf("%s was not rewritten", hbaFile)
	}
	if fi, err := os.Stat(filepath.Join(dir, passwordFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s after migration: %v %v, want mode 0600", passwordFile, fi, err)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	again := startCluster(t, Options{Dir: dir})
	if again.URL != c.URL {
		t.Errorf("restart after migration: URL %q, want %q", again.URL, c.URL)
	}
	if err := connectOnce(again.URL); err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	waitAuthError(t, withPassword(again.URL, ""))
}

// initTrustCluster creates a cluster in dir exactly as pgcluster did before
// passwords: initdb trusting every local connection, and the port file.
func initTrustCluster(t *testing.T, dir string) {
	t.Helper()
	bin, err := findBinaries("")
	if err != nil {
		t.Skipf("postgres not available: %v", err)
	}
	if err := bin.makeDataDir(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	err = bin.run(t.Context(), dir, "initdb", "-D", dir, "--encoding=UTF8", "--locale=C", "--auth=trust", "--username=postgres")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := bin.writePortFile(dir, port); err != nil {
		t.Fatal(err)
	}
	if password, _ := readPassword(dir); password != "" {
		t.Fatal("an old cluster has no password file")
	}
}

// privateDataDir returns a cluster directory inside a fresh temporary
// directory that the postgres user can traverse.
func privateDataDir(t *testing.T) string {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("postgres not available: %v", err)
	}
	tmp, err := os.MkdirTemp("", "pgcluster-auth-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tmp, "data")
}

func startCluster(t *testing.T, o Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func connectOnce(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// withPassword returns u with its password replaced ("" removes it).
func withPassword(u, password string) string {
	parsed, _ := url.Parse(u)
	if password == "" {
		parsed.User = url.User(parsed.User.Username())
	} else {
		parsed.User = url.UserPassword(parsed.User.Username(), password)
	}
	return parsed.String()
}

func isAuthError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}

// waitAuthError waits until connecting to u fails for want of the password:
// a reloaded pg_hba.conf takes effect shortly after pg_reload_conf returns.
func waitAuthError(t *testing.T, u string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = connectOnce(u); isAuthError(err) {
			return
		}
	}
	t.Fatalf("connect without the password: err = %v, want password authentication failed", err)
}
