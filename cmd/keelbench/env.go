package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/migrations"
)

// benchEnv is what every figure shares: the flags, a temporary directory,
// one private Postgres cluster (a fresh database per figure) and whatever
// must be stopped at the end.
type benchEnv struct {
	cfg     config
	dir     string
	log     *slog.Logger
	pg      *pgcluster.Cluster
	closers []func() error
}

func setup(ctx context.Context, cfg config) (e *benchEnv, err error) {
	dir, err := os.MkdirTemp("", "keelbench-")
	if err != nil {
		return nil, err
	}
	e = &benchEnv{cfg: cfg, dir: dir, log: nodeLogger(cfg.Verbose)}
	e.defer_(func() error { return os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	// The postgres user must be able to traverse the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	logf("starting a private postgres under %s (%s)", dir, otherLoad())
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "postgres"), Database: "keelbench"})
	if err != nil {
		return nil, err
	}
	e.pg = pg
	postmaster = findPostmaster(pg.Dir)
	e.defer_(pg.Stop)
	return e, nil
}

// defer_ registers f to run at close, in reverse order of registration.
func (e *benchEnv) defer_(f func() error) { e.closers = append(e.closers, f) }

// close runs every registered cleanup, last first, and joins their errors.
func (e *benchEnv) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// database creates a fresh database with the read model's schema and
// returns its URL and a pool on it (closed at the end).
func (e *benchEnv) database(ctx context.Context, name string) (string, *pgxpool.Pool, error) {
	admin, err := pgx.Connect(ctx, e.pg.URL)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := neturl.Parse(e.pg.URL) // keeps the cluster's user and password
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	url := u.String()
	pool, err := postgres.Connect(ctx, url, 40)
	if err != nil {
		return "", nil, err
	}
	e.defer_(func() error { pool.Close(); return nil })
	if err := migrations.Up(ctx, pool); err != nil {
		return "", nil, err
	}
	return url, pool, nil
}

// eventStore starts an embedded NATS server with the settings of `keel
// serve` (SyncAlways, file storage) and opens the KEEL_EVENTS stream on it.
func (e *benchEnv) eventStore(ctx context.Context, name string) (*keeljs.Store, error) {
	emb, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: filepath.Join(e.dir, name), SyncAlways: true})
	if err != nil {
		return nil, err
	}
	e.defer_(func() error { emb.Close(); return nil })
	return keeljs.Open(ctx, emb.Conn, 1, 0)
}

// newApp returns the real command handlers on a store.
func newApp(store *keeljs.Store) *commands.App {
	return commands.NewApp(store)
}
