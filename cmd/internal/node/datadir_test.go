package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// Two keel serve on one data dir would both write to one JetStream store: the
// second is refused, naming the first, which keeps serving writes.
func TestSecondNodeOnSameDataDirIsRefused(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	second := e.cfg
	second.Listen = "127.0.0.1:0"
	n, err := node.Start(context.Background(), second)
	if err == nil {
		n.Close()
		t.Fatal("a second node started on the data dir of a running one")
	}
	var inUse *node.DataDirInUseError
	want := fmt.Sprintf("another keel serve (pid %d) is using %s", os.Getpid(), e.cfg.DataDir)
	if !errors.As(err, &inUse) || err.Error() != want {
		t.Fatalf("second start: err = %v, want %q", err, want)
	}
	e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "after", "vcpus": 1, "ram_mib": 512, "disk_gib": 1}))

	e.restart() // the first closes: the lock is free again
	e.must(201, e.call("POST", "/v1/flavors", map[string]any{"name": "again", "vcpus": 1, "ram_mib": 512, "disk_gib": 1}))
}

// A Postgres this node found running belongs to whoever started it: Close
// leaves it running.
func TestReusedPostgresIsLeftRunning(t *testing.T) {
	dataDir := traversableDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dataDir, "postgres"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })

	e := start(t, func(c *node.Config) { c.DataDir, c.DatabaseURL, c.FakeHosts = dataDir, "", 0 })
	if e.node.Postgres == nil || e.node.Postgres.Started {
		t.Fatalf("node did not reuse the running postgres: %+v", e.node.Postgres)
	}
	e.node.Close()
	e.node = nil
	if err := pingPostgres(pg.URL); err != nil {
		t.Fatalf("closing the node stopped a postgres it had not started: %v", err)
	}
}

// The data dir, its credentials, the private Postgres and the exposed NATS
// are for Keel and its agents only.
func TestDataDirIsPrivate(t *testing.T) {
	dataDir := traversableDir(t) // mode 0755, as a data dir made before this rule
	// The fleet credentials of an earlier Keel: a bare NATS seed, readable
	// by all. They are completed with a seal key and made private.
	seed := filepath.Join(dataDir, "agent.nk")
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := kp.Seed()
	if err := os.WriteFile(seed, append([]byte("# NATS user nkey seed of Keel's agents\n"), append(old, '\n')...), 0o644); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *node.Config) {
		c.DataDir, c.DatabaseURL, c.FakeHosts, c.NATSListen, c.SimulatedAgents = dataDir, "", 0, "127.0.0.1:-1", true
	})
	if e.node.AgentCredentials() != seed {
		t.Errorf("AgentCredentials = %q, want %q", e.node.AgentCredentials(), seed)
	}
	if c, err := hostlink.ReadCredentials(seed); err != nil || c.Host != hostlink.Fleet || c.Seal == nil {
		t.Errorf("agent.nk after start: %+v, %v; want the fleet's, with a seal key", c, err)
	} else if s, _ := c.NATS.Seed(); string(s) != string(old) {
		t.Error("agent.nk lost its NATS seed: copies of it no longer connect")
	}
	checkDataDirModes(t, dataDir)
	checkNATSRefusesStrangers(t, e.node)
	checkPostgresRefusesStrangers(t, e.node.Postgres.URL)
	if os.Geteuid() == 0 {
		if out, err := exec.Command("runuser", "-u", "nobody", "--", "ls", dataDir).CombinedOutput(); err == nil {
			t.Errorf("user nobody lists the data dir: %s", out)
		}
	}
}

// checkDataDirModes checks that the data dir and what is in it are its
// owner's (and, as root, that the postgres group may only pass through).
func checkDataDirModes(t *testing.T, dataDir string) {
	t.Helper()
	want := map[string]os.FileMode{
		"":                       0o700,
		"jetstream":              0o700,
		"postgres":               0o700,
		"agent.nk":               0o600,
		"keel.lock":              0o600,
		"postgres/keel-password": 0o600,
	}
	if os.Geteuid() == 0 {
		want[""] = 0o710
		st := stat(t, dataDir).Sys().(*syscall.Stat_t)
		pgUser, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		if strconv.Itoa(int(st.Gid)) != pgUser.Gid {
			t.Errorf("data dir group %d, want postgres (%s)", st.Gid, pgUser.Gid)
		}
	}
	for name, mode := range want {
		if got := stat(t, filepath.Join(dataDir, name)).Mode().Perm(); got != mode {
			t.Errorf("%s: mode %04o, want %04o", filepath.Join(dataDir, name), got, mode)
		}
	}
}

func checkNATSRefusesStrangers(t *testing.T, n *node.Node) {
	t.Helper()
	if nc, err := nats.Connect(n.NATSURL()); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("connect to NATS without credentials: err = %v, want %v", err, nats.ErrAuthorization)
	}
	creds, err := hostlink.ReadCredentials(n.AgentCredentials())
	if err != nil {
		t.Fatal(err)
	}
	opt, err := creds.Option()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.NATSURL(), opt)
	if err != nil {
		t.Fatalf("connect to NATS with the fleet's credentials: %v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := keeljs.Attach(ctx, nc); err == nil {
		t.Errorf("the fleet's credentials reach the event store")
	}
}

func checkPostgresRefusesStrangers(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(u.User.Username())
	var pgErr *pgconn.PgError
	if err := pingPostgres(u.String()); !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Errorf("connect to postgres without the password: err = %v, want password authentication failed", err)
	}
	if _, err := exec.LookPath("psql"); os.Geteuid() != 0 || err != nil {
		t.Logf("not root or no psql: skipping the connection attempt as user nobody")
		return
	}
	out, err := exec.Command("runuser", "-u", "nobody", "--", "psql", "-w", u.String(), "-c", "SELECT 1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "password") {
		t.Errorf("psql as user nobody: err %v, output %q; want refused for want of a password", err, out)
	}
}

// traversableDir returns a fresh data dir path (mode 0755) whose parents the
// postgres user can pass through, for a private Postgres.
func traversableDir(t *testing.T) string {
	t.Helper()
	if err := pgcluster.Available(); err != nil {
		t.Skipf("postgres not available: %v", err)
	}
	tmp, err := os.MkdirTemp("", "keel-node-datadir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	dir := filepath.Join(tmp, "data")
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func pingPostgres(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
