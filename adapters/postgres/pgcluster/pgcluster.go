// Package pgcluster starts and stops a private PostgreSQL cluster from the
// local server binaries.
//
// The cluster lives entirely in one directory chosen by the caller. It
// listens on 127.0.0.1 only (and on a Unix socket inside that directory),
// admits only the postgres superuser with a generated password kept in the
// directory (keel-password, mode 0600), and keeps fsync on. A cluster created
// before passwords (trusting every local user) gets one on its next start.
// When the calling process runs as root, the server runs as the postgres user
// through runuser, because PostgreSQL refuses to run as root.
//
// Stop stops only a server that Start launched: a server Start found running
// belongs to whoever started it.
//
// It never touches a system cluster: it does not use pg_ctlcluster,
// /etc/postgresql, /var/lib/postgresql or /var/run/postgresql, and it refuses
// to operate on a data directory it did not create itself (one without the
// keel-port file it writes next to PG_VERSION).
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// DefaultDatabase is the database Start creates when Options.Database is empty.
const DefaultDatabase = "keel"

// Options configures Start.
type Options struct {
	// Dir is the data directory of the cluster. It is created and
	// initialised with initdb when it holds no cluster yet.
	Dir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free loopback port;
	// when Dir already holds a cluster, the port recorded in Dir/keel-port
	// is reused if it is free.
	Port int
	// Database is created if missing; empty means DefaultDatabase.
	Database string
	// Logf, when set, receives progress messages.
	Logf func(format string, args ...any)
}

// Cluster is a running private PostgreSQL cluster.
type Cluster struct {
	// Dir is the absolute data directory.
	Dir string
	// Port is the TCP port the server listens on at 127.0.0.1.
	Port int
	// URL connects to Options.Database as the postgres superuser, with the
	// password: postgres://postgres:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable.
	URL string
	// Started reports whether Start launched the server, rather than finding
	// it running. Only then does Stop stop it.
	Started bool

	bin *binaries
}

// Start makes sure the cluster in o.Dir is initialised and running, creates
// o.Database if it is missing, and returns once a connection succeeds. A
// cluster that is already running in o.Dir is reused (and left running by
// Stop); a postmaster.pid left behind by a killed server is removed; a
// cluster that trusted local users is given a password and made to require it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	bin, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	password, err := bin.ensurePassword(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", o.Dir, err)
	}
	port, started, err := launch(ctx, bin, o)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir, Port: port, URL: databaseURL(port, o.Database, password), Started: started, bin: bin}
	if err := c.finish(ctx, o, password); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			o.Logf("pgcluster: %v", stopErr)
		}
		return nil, err
	}
	return c, nil
}

// Stop shuts the server down with pg_ctl stop -m fast and waits for it, when
// Start launched it. It returns nil when the server is not running, and
// leaves a server Start found running to the process that started it.
func (c *Cluster) Stop() error {
	if !c.Started {
		return nil
	}
	if err := removeStaleLocks(c.Dir, func(string, ...any) {}); err != nil {
		return fmt.Errorf("stop postgres in %s: %w", c.Dir, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, pidFile)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	bin := c.bin
	if bin == nil {
		var err error
		if bin, err = findBinaries(""); err != nil {
			return fmt.Errorf("stop postgres in %s: %w", c.Dir, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bin.run(ctx, c.Dir, "pg_ctl", "stop", "-D", c.Dir, "-m", "fast", "-w"); err != nil {
		return fmt.Errorf("stop postgres in %s: %w", c.Dir, err)
	}
	return nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("start postgres: Options.Dir is empty")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("start postgres in %s: %w", o.Dir, err)
	}
	o.Dir = dir
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

// prepare finds binaries matching the cluster in o.Dir, running initdb first
// when o.Dir holds no cluster yet.
func prepare(ctx context.Context, o Options) (*binaries, error) {
	major, err := clusterMajor(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, portFile)); major != "" && err != nil {
		return nil, fmt.Errorf("start postgres in %s: the cluster there was not created by pgcluster (no %s); refusing to touch it", o.Dir, portFile)
	}
	bin, err := findBinaries(major)
	if err != nil {
		return nil, err
	}
	if major == "" {
		return bin, initCluster(ctx, bin, o)
	}
	return bin, nil
}

// clusterMajor returns the major version in dir/PG_VERSION, or "" when dir
// holds no cluster.
func clusterMajor(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cluster version in %s: %w", dir, err)
	}
	return firstLine(data), nil
}

// initCluster runs initdb in o.Dir with a new password, keeps the password,
// and records the port the cluster will use. The port file comes last: it
// marks the cluster as complete and ours.
func initCluster(ctx context.Context, bin *binaries, o Options) error {
	if err := bin.makeDataDir(ctx, o.Dir); err != nil {
		return err
	}
	o.Logf("pgcluster: initdb %s", o.Dir)
	password := newPassword()
	pwfile, remove, err := bin.initPasswordFile(password)
	if err != nil {
		return err
	}
	defer remove()
	err = bin.run(ctx, o.Dir, "initdb", "-D", o.Dir, "--encoding=UTF8", "--locale=C",
		"--auth=scram-sha-256", "--pwfile="+pwfile, "--username=postgres")
	if err != nil {
		return fmt.Errorf("initialise postgres in %s: %w", o.Dir, err)
	}
	if err := bin.writePrivate(filepath.Join(o.Dir, passwordFile), password+"\n"); err != nil {
		return fmt.Errorf("initialise postgres in %s: %w", o.Dir, err)
	}
	if err := bin.writePrivate(filepath.Join(o.Dir, hbaFile), hbaConfig); err != nil {
		return fmt.Errorf("initialise postgres in %s: %w", o.Dir, err)
	}
	port, err := pickPort(o)
	if err != nil {
		return err
	}
	return bin.writePortFile(o.Dir, port)
}

// launch reuses the server already running in o.Dir or starts one, and
// returns its port and whether it started it.
func launch(ctx context.Context, bin *binaries, o Options) (int, bool, error) {
	if err := removeStaleLocks(o.Dir, o.Logf); err != nil {
		return 0, false, fmt.Errorf("start postgres in %s: %w", o.Dir, err)
	}
	port, running, err := bin.runningPort(ctx, o.Dir)
	switch {
	case err != nil:
		return 0, false, err
	case !running:
		port, err := bin.startServer(ctx, o)
		return port, err == nil, err
	case o.Port != 0 && o.Port != port:
		return 0, false, fmt.Errorf("start postgres in %s: already running on port %d, not %d", o.Dir, port, o.Port)
	}
	o.Logf("pgcluster: reusing postgres running in %s on port %d (left running on Stop)", o.Dir, port)
	return port, false, nil
}

// finish waits for the server to accept connections, makes it require the
// password, creates the database and records the port.
func (c *Cluster) finish(ctx context.Context, o Options, password string) error {
	admin := databaseURL(c.Port, "postgres", password)
	if err := waitReady(ctx, admin); err != nil {
		return fmt.Errorf("start postgres in %s: %w", c.Dir, err)
	}
	if err := c.bin.requirePassword(ctx, c.Dir, admin, password, o.Logf); err != nil {
		return fmt.Errorf("start postgres in %s: %w", c.Dir, err)
	}
	if err := ensureDatabase(ctx, admin, o.Database); err != nil {
		return fmt.Errorf("start postgres in %s: %w", c.Dir, err)
	}
	return c.bin.writePortFile(c.Dir, c.Port)
}

// databaseURL returns the URL of database on the loopback server at port.
func databaseURL(port int, database, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     "127.0.0.1:" + strconv.Itoa(port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}
