package pgcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
)

func TestStartStopRestartKeepsDataAndPort(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	c := start(t, pgcluster.Options{Dir: dir, Logf: t.Logf})

	password := readFile(t, filepath.Join(dir, "keel-password"))
	want := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/keel?sslmode=disable", password, c.Port)
	if c.URL != want || len(password) < 32 {
		t.Errorf("URL = %q, want %q with a long password", c.URL, want)
	}
	execSQL(t, c.URL, "CREATE TABLE note (body text NOT NULL)")
	execSQL(t, c.URL, "INSERT INTO note VALUES ('kept')")
	if got := readFile(t, filepath.Join(dir, "keel-port")); got != strconv.Itoa(c.Port) {
		t.Errorf("keel-port = %q, want %d", got, c.Port)
	}

	again := start(t, pgcluster.Options{Dir: dir})
	if again.Port != c.Port || again.Started || !c.Started {
		t.Errorf("second Start on a running cluster: port %d started %v, want port %d not started (first: started %v)",
			again.Port, again.Started, c.Port, c.Started)
	}
	stop(t, again)
	if err := ping(c.URL); err != nil {
		t.Fatalf("Stop of a reused cluster stopped the server it did not start: %v", err)
	}

	stop(t, c)
	if err := ping(c.URL); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
	stop(t, c) // stopping a stopped cluster is a no-op

	restarted := start(t, pgcluster.Options{Dir: dir})
	if restarted.Port != c.Port {
		t.Errorf("restart: port %d, want recorded port %d", restarted.Port, c.Port)
	}
	if got := queryNote(t, restarted.URL); got != "kept" {
		t.Errorf("after restart: note = %q, want %q", got, "kept")
	}

	stop(t, restarted)
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	moved := start(t, pgcluster.Options{Dir: dir})
	if moved.Port == c.Port {
		t.Fatalf("restart with recorded port %d taken: got the same port", c.Port)
	}
	if got := readFile(t, filepath.Join(dir, "keel-port")); got != strconv.Itoa(moved.Port) {
		t.Errorf("keel-port = %q after moving, want %d", got, moved.Port)
	}
}

func TestStartRecoversFromKilledPostmaster(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	port := freePort(t)
	c := start(t, pgcluster.Options{Dir: dir, Port: port, Database: "app", Logf: t.Logf})
	if c.Port != port || !strings.HasSuffix(c.URL, "/app?sslmode=disable") {
		t.Fatalf("Start = port %d URL %s, want port %d database app", c.Port, c.URL, port)
	}
	execSQL(t, c.URL, "CREATE TABLE note (body text NOT NULL)")
	execSQL(t, c.URL, "INSERT INTO note VALUES ('durable')")

	pid := postmasterPID(t, dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill postmaster: %v", err)
	}
	waitDead(t, pid)
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("postmaster.pid should be left over after kill -9: %v", err)
	}

	recovered := start(t, pgcluster.Options{Dir: dir, Database: "app", Logf: t.Logf})
	if recovered.Port != port {
		t.Errorf("after crash: port %d, want %d", recovered.Port, port)
	}
	if got := queryNote(t, recovered.URL); got != "durable" {
		t.Errorf("after crash: note = %q, want %q", got, "durable")
	}
}

func TestStartRefusesForeignCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not created by pgcluster") {
		t.Fatalf("Start on a foreign cluster: err = %v, want refusal", err)
	}
}

func TestStartNeedsDir(t *testing.T) {
	t.Parallel()
	if _, err := pgcluster.Start(t.Context(), pgcluster.Options{}); err == nil {
		t.Fatal("Start without Dir succeeded")
	}
}

// dataDir returns a data directory path inside a fresh temporary directory
// that the postgres user can traverse.
func dataDir(t *testing.T) string {
	t.Helper()
	if err := pgcluster.Available(); err != nil {
		t.Skipf("postgres not available: %v", err)
	}
	tmp, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tmp, "data")
}

// start starts a cluster and registers its Stop as cleanup.
func start(t *testing.T, o pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(t, c) })
	return c
}

func stop(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn := connect(t, url)
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryNote(t *testing.T, url string) string {
	t.Helper()
	var body string
	if err := connect(t, url).QueryRow(t.Context(), "SELECT body FROM note").Scan(&body); err != nil {
		t.Fatalf("select note: %v", err)
	}
	return body
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	line, _, _ := strings.Cut(readFile(t, filepath.Join(dir, "postmaster.pid")), "\n")
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// waitDead waits until pid has exited (a zombie counts: nobody may reap it).
func waitDead(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
	}
	t.Fatalf("postmaster %d still running after SIGKILL", pid)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
