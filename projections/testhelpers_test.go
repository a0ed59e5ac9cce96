package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/migrations"
	"github.com/keel-cloud/keel/projections"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }

// world is an event store with a catalog, and the App that writes to it.
type world struct {
	t        *testing.T
	store    *keeljs.Store
	app      *commands.App
	flavorID string
	imageID  string
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newWorld starts embedded NATS and seeds flavors, images and a host.
func newWorld(t *testing.T) *world {
	t.Helper()
	_, s := jstest.Store(t, 0)
	ctx := ctxT(t)
	w := &world{t: t, store: s, app: commands.NewApp(s)}
	m := func(id string) commands.Meta {
		return commands.Meta{CommandID: "seed-" + id, Actor: domain.Actor{User: "test"}}
	}
	fl, err := w.app.CreateFlavor(ctx, flavor.Spec{Name: "small", VCPUs: 2, RAMMiB: 2048, DiskGiB: 20}, m("flavor"))
	must(t, err)
	w.flavorID = string(fl.State.ID)
	tmp, err := w.app.CreateFlavor(ctx, flavor.Spec{Name: "tmp", VCPUs: 1, RAMMiB: 512}, m("flavor-tmp"))
	must(t, err)
	_, err = w.app.DeleteFlavor(ctx, string(tmp.State.ID), m("flavor-tmp-delete"))
	must(t, err)
	im, err := w.app.CreateImage(ctx, image.Spec{Name: "debian", DiskFormat: "qcow2", MinDiskGiB: 5, MinRAMMiB: 256}, m("image"))
	must(t, err)
	w.imageID = string(im.State.ID)
	_, err = w.app.Images.Handle(ctx, w.imageID, image.RecordUpload{Object: "obj-debian", Size: 12345, SHA256: "ab12", At: time.Now()}, m("upload"))
	must(t, err)
	_, err = w.app.CreateImage(ctx, image.Spec{Name: "queued", DiskFormat: "raw"}, m("image-queued"))
	must(t, err)
	gone, err := w.app.CreateImage(ctx, image.Spec{Name: "gone", DiskFormat: "iso"}, m("image-gone"))
	must(t, err)
	_, err = w.app.DeleteImage(ctx, string(gone.State.ID), m("image-gone-delete"))
	must(t, err)
	hostID := commands.DeriveID("host", "h1") // as the agent derives it
	_, err = w.app.Hosts.Handle(ctx, hostID, host.Register{ID: hostID, Spec: host.Spec{Name: "h1", Driver: "fake", VCPUs: 64, RAMMiB: 262144, DiskGiB: 4000}, At: time.Now()}, m("host"))
	must(t, err)
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// serverLifecycle records one server's story, as the saga and a host agent
// would. k%5 picks the ending: 0 rebooting, 1 stopped, 2 deleted, 3 build
// failed on every host it was tried on (ERROR), 4 spawn failed once and the
// build went back to scheduling.
func (w *world) serverLifecycle(ctx context.Context, prefix string, k int) (string, error) {
	a := w.app
	m := func(what string) commands.Meta {
		return commands.Meta{CommandID: fmt.Sprintf("%s-%d-%s", prefix, k, what), Actor: domain.Actor{User: "test"}}
	}
	now := time.Now().UTC()
	res, opID, err := a.CreateServer(ctx, commands.CreateServerRequest{Name: fmt.Sprintf("%s-%d", prefix, k), FlavorID: w.flavorID, ImageID: w.imageID}, m("create"))
	if err != nil {
		return "", err
	}
	sid := string(res.State.ID)
	var steps []error
	do := func(err error) { steps = append(steps, err) }
	_, err = a.Operations.Handle(ctx, opID, operation.Begin{ID: operation.ID(opID), Kind: "server.create", ResourceType: server.AggregateType,
		ResourceID: sid, Steps: []operation.StepSpec{{Name: "schedule", Timeout: time.Minute}, {Name: "spawn", Timeout: 5 * time.Minute}}, At: now}, m("begin"))
	do(err)
	schedule := func(h string) {
		_, err := a.Servers.Handle(ctx, sid, server.Schedule{Host: h, Operation: opID, At: now}, m("schedule-"+h))
		do(err)
		_, err = a.Operations.Handle(ctx, opID, operation.CompleteStep{Step: "schedule", At: now}, m("step-schedule-"+h))
		do(err)
	}
	schedule("h1")
	if k%5 == 3 || k%5 == 4 {
		for attempt := 1; ; attempt++ {
			h := fmt.Sprintf("h%d", attempt)
			detail := hostAccount(h)
			r, err := a.Servers.Handle(ctx, sid, server.Report{Host: h, Kind: server.ReportSpawnFailed, Reason: "no disk", Detail: detail, At: now}, m("spawn-failed-"+h))
			if err != nil {
				return sid, errors.Join(append(steps, err)...)
			}
			if r.State.Status == server.StatusError {
				_, err = a.Operations.Handle(ctx, opID, operation.FailStep{Step: "spawn", Reason: r.State.Reason, Detail: detail, At: now}, m("step-spawn-failed"))
				do(err)
				_, err = a.Operations.Handle(ctx, opID, operation.Finish{Reason: r.State.Reason, Compensated: []string{"schedule"}, At: now}, m("finish"))
				do(err)
				break
			}
			_, err = a.Operations.Handle(ctx, opID, operation.Rewind{From: "spawn", To: "schedule", Reason: "spawn failed on " + h, Detail: detail, At: now}, m("rewind-"+h))
			do(err)
			if k%5 == 4 {
				break // waiting for another host
			}
			schedule(fmt.Sprintf("h%d", attempt+1))
		}
		return sid, errors.Join(steps...)
	}
	_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportSpawned, At: now}, m("spawned"))
	do(err)
	_, err = a.Operations.Handle(ctx, opID, operation.CompleteStep{Step: "spawn", At: now}, m("step-spawn"))
	do(err)
	switch k % 5 {
	case 0:
		_, _, err = a.ActOnServer(ctx, sid, commands.ActionReboot, m("reboot"))
		do(err)
	case 1:
		_, _, err = a.ActOnServer(ctx, sid, commands.ActionStop, m("stop"))
		do(err)
		_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportStopped, At: now}, m("stopped"))
		do(err)
	case 2:
		_, _, err = a.ActOnServer(ctx, sid, commands.ActionDelete, m("delete"))
		do(err)
		_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportDestroyed, At: now}, m("destroyed"))
		do(err)
	}
	return sid, errors.Join(steps...)
}

// hostAccount is what host h says of a spawn that failed there, for admins.
func hostAccount(h string) string {
	return "write /pool/" + h + "/root.qcow2: no space left on device"
}

// servers records n server lifecycles, several at a time.
func (w *world) servers(prefix string, n int) {
	w.t.Helper()
	ctx := ctxT(w.t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for k := 0; k < n; k++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := w.serverLifecycle(ctx, prefix, k); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		w.t.Fatal(err)
	}
}

func (w *world) head() uint64 {
	w.t.Helper()
	seq, err := w.store.LastSequence(context.Background())
	must(w.t, err)
	return seq
}

// newDB returns a pool on a fresh, migrated database.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := ctxT(t)
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	must(t, err)
	t.Cleanup(pool.Close)
	must(t, migrations.Up(ctx, pool))
	return pool
}

func (w *world) runner(pool *pgxpool.Pool) *projections.Runner {
	return &projections.Runner{Pool: pool, Events: w.store, Projections: projections.All(), Log: quietLog()}
}

// start runs r until the returned stop is called (or the test ends); stop
// returns Run's error.
func start(t *testing.T, r *projections.Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("runner did not stop within 20s")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	return stop
}

// caughtUp waits until every projection has applied the stream head.
func (w *world) caughtUp(r *projections.Runner) uint64 {
	w.t.Helper()
	h := w.head()
	ok, err := r.WaitFor(ctxT(w.t), h, 20*time.Second)
	must(w.t, err)
	if !ok {
		st, _ := r.Statuses(context.Background())
		w.t.Fatalf("projections did not reach head %d: %+v", h, st)
	}
	return h
}

// tables lists every read-model table (those the projections own).
func tables() []string {
	var out []string
	for _, p := range projections.All() {
		out = append(out, p.Tables...)
	}
	return out
}

// dump returns each table's rows as one JSON document, in a stable order.
func dump(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range tables() {
		var js string
		err := pool.QueryRow(ctxT(t), fmt.Sprintf(`SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text FROM %s x`, tb)).Scan(&js)
		must(t, err)
		out[tb] = js
	}
	return out
}

// checkpoints returns name -> seq, and fails on a wrong version.
func checkpoints(t *testing.T, pool *pgxpool.Pool) map[string]uint64 {
	t.Helper()
	rows, err := pool.Query(ctxT(t), `SELECT name, version, seq FROM projection_checkpoints`)
	must(t, err)
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var version int
		var seq int64
		must(t, rows.Scan(&name, &version, &seq))
		p, ok := projections.ByName(name)
		if !ok || p.Version != version {
			t.Fatalf("checkpoint %s has version %d; code has %d (known %v)", name, version, p.Version, ok)
		}
		out[name] = uint64(seq)
	}
	must(t, rows.Err())
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	must(t, pool.QueryRow(ctxT(t), sql, args...).Scan(&n))
	return n
}

// fromScratch builds a fresh database from the whole stream with a new
// runner and returns its tables.
func (w *world) fromScratch() map[string]string {
	w.t.Helper()
	pool := newDB(w.t)
	r := w.runner(pool)
	stop := start(w.t, r)
	w.caughtUp(r)
	must(w.t, stop())
	return dump(w.t, pool)
}

// sameTables fails when two dumps differ, naming the tables.
func sameTables(t *testing.T, got, want map[string]string) {
	t.Helper()
	for _, tb := range tables() {
		if got[tb] != want[tb] {
			t.Errorf("table %s differs:\n got  %.800s\n want %.800s", tb, got[tb], want[tb])
		}
	}
}
