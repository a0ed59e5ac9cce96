package projections_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/projections"
)

func TestRunnerBuildsTheReadModel(t *testing.T) {
	w := newWorld(t)
	w.servers("srv", 4) // rebooting, stopped, deleted, failed on every host
	pool := newDB(t)
	r := w.runner(pool)
	start(t, r)
	h := w.caughtUp(r)
	ctx := ctxT(t)

	for name, seq := range checkpoints(t, pool) {
		if seq != h {
			t.Errorf("checkpoint %s = %d, want head %d", name, seq, h)
		}
	}
	st, err := r.Statuses(ctx)
	must(t, err)
	if len(st) != len(projections.All()) {
		t.Fatalf("Statuses lists %d projections, want %d", len(st), len(projections.All()))
	}
	for _, s := range st {
		if s.Lag != 0 || s.Sequence != h {
			t.Errorf("status %+v: want sequence %d, lag 0", s, h)
		}
	}

	if n := count(t, pool, `SELECT count(*) FROM events`); n != int(h) {
		t.Errorf("events has %d rows, want %d", n, h)
	}
	if n := count(t, pool, `SELECT count(*) FROM events WHERE seq BETWEEN 1 AND $1`, int64(h)); n != int(h) {
		t.Errorf("events rows do not cover 1..%d", h)
	}
	if n := count(t, pool, `SELECT count(*) FROM flavors WHERE name='small' AND vcpus=2 AND ram_mib=2048 AND disk_gib=20`); n != 1 {
		t.Errorf("flavor small: %d rows", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM flavors`); n != 1 {
		t.Errorf("flavors has %d rows; the deleted flavor must be gone", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM images WHERE id=$1 AND status='active' AND size_bytes=12345 AND sha256='ab12' AND object='obj-debian'`, w.imageID); n != 1 {
		t.Errorf("active image row: %d", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM images WHERE name='queued' AND status='queued' AND size_bytes IS NULL`); n != 1 {
		t.Errorf("queued image row: %d", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM images`); n != 2 {
		t.Errorf("images has %d rows, want 2 (deleted image gone)", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM hosts WHERE name='h1' AND driver='fake' AND vcpus=64`); n != 1 {
		t.Errorf("host row: %d", n)
	}

	type srv struct {
		Status, Power, Desired string
		Task, Host             *string
		HasReason              bool
	}
	str := func(s string) *string { return &s }
	want := map[string]srv{
		"srv-0": {Status: "REBOOTING", Power: "RUNNING", Desired: "running", Task: str("rebooting"), Host: str("h1")},
		"srv-1": {Status: "STOPPED", Power: "SHUTOFF", Desired: "stopped", Host: str("h1")},
		"srv-3": {Status: "ERROR", Power: "NOSTATE", Desired: "running", HasReason: true},
	}
	rows, err := pool.Query(ctx, `SELECT name, id::text, status, power, desired, task, host, reason IS NOT NULL, version, seq FROM servers ORDER BY name`)
	must(t, err)
	got := map[string]srv{}
	for rows.Next() {
		var s srv
		var name, id string
		var version, seq int64
		must(t, rows.Scan(&name, &id, &s.Status, &s.Power, &s.Desired, &s.Task, &s.Host, &s.HasReason, &version, &seq))
		got[name] = s
		// The row is at the server's last commit.
		envs, err := w.store.Load(ctx, "server", id, 0)
		must(t, err)
		last := envs[len(envs)-1]
		if uint64(version) != last.Version || uint64(seq) != last.Sequence {
			t.Errorf("%s: row at version %d seq %d; the log is at version %d seq %d (%s)", name, version, seq, last.Version, last.Sequence, last.Events[0].Type)
		}
	}
	must(t, rows.Err())
	if g, wj := mustMarshal(got), mustMarshal(want); g != wj {
		t.Errorf("servers:\n got  %s\n want %s", g, wj)
	}

	// Operations: the four builds, and the actions as pending.
	opRows, err := pool.Query(ctx, `SELECT kind, status, error IS NOT NULL, coalesce(current_step, '') FROM operations ORDER BY kind, status`)
	must(t, err)
	var ops []string
	for opRows.Next() {
		var kind, status, step string
		var hasErr bool
		must(t, opRows.Scan(&kind, &status, &hasErr, &step))
		ops = append(ops, mustMarshal([]any{kind, status, hasErr, step}))
	}
	must(t, opRows.Err())
	wantOps := []string{
		`["server.create","failed",true,""]`,
		`["server.create","succeeded",false,""]`, `["server.create","succeeded",false,""]`, `["server.create","succeeded",false,""]`,
		`["server.delete","pending",false,""]`, `["server.reboot","pending",false,""]`, `["server.stop","pending",false,""]`,
	}
	if g, wj := mustMarshal(ops), mustMarshal(wantOps); g != wj {
		t.Errorf("operations:\n got  %s\n want %s", g, wj)
	}
	steps := func(server string) string {
		var js string
		must(t, pool.QueryRow(ctx, `SELECT jsonb_agg(jsonb_build_array(st.name, st.status) ORDER BY st.idx)::text
			FROM operation_steps st JOIN servers s ON s.name=$1 JOIN operations o ON o.resource_id = s.id AND o.kind='server.create'
			WHERE st.operation_id = o.id`, server).Scan(&js))
		return js
	}
	for name, want := range map[string]string{
		"srv-1": `[["schedule", "succeeded"], ["spawn", "succeeded"]]`,
		"srv-3": `[["schedule", "compensated"], ["spawn", "failed"]]`,
	} {
		if got := steps(name); got != want {
			t.Errorf("steps of the build of %s = %s, want %s", name, got, want)
		}
	}
	// The failed build keeps the last host's account beside the user's
	// reason, on the operation and on its spawn step; a build that
	// succeeded has none.
	details := func(server string) string {
		var js string
		must(t, pool.QueryRow(ctx, `SELECT jsonb_build_array(o.error, o.detail,
				(SELECT jsonb_agg(jsonb_build_array(st.name, st.detail) ORDER BY st.idx) FROM operation_steps st WHERE st.operation_id = o.id))::text
			FROM operations o JOIN servers s ON s.name=$1 AND o.resource_id = s.id AND o.kind='server.create'`, server).Scan(&js))
		return js
	}
	for name, want := range map[string]string{
		"srv-1": `[null, null, [["schedule", null], ["spawn", null]]]`,
		"srv-3": `["build failed on 3 hosts; last on h3: no disk", "` + hostAccount("h3") + `", [["schedule", null], ["spawn", "` + hostAccount("h3") + `"]]]`,
	} {
		if got := details(name); got != want {
			t.Errorf("error and details of the build of %s = %s, want %s", name, got, want)
		}
	}
}

// A spawn that failed on one host sends the build back to scheduling
// (server.spawn_failed, operation.rewound). The read model must show that:
// the server waiting for a host, on no host, and the spawn step pending.
func TestReadModelFollowsABuildSentBackToScheduling(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	sid, err := w.serverLifecycle(ctx, "retry", 4)
	must(t, err)
	pool := newDB(t)
	r := w.runner(pool)
	start(t, r)
	w.caughtUp(r)

	envs, err := w.store.Load(ctx, "server", sid, 0)
	must(t, err)
	last := envs[len(envs)-1]
	var status, power string
	var task, host *string
	var version, seq int64
	must(t, pool.QueryRow(ctx, `SELECT status, power, task, host, version, seq FROM servers WHERE id=$1`, sid).
		Scan(&status, &power, &task, &host, &version, &seq))
	if status != "BUILDING" || task == nil || *task != "scheduling" || host != nil {
		t.Errorf("server row: status %s task %v host %v; want BUILDING, scheduling, no host (last event %s)", status, deref(task), deref(host), last.Events[0].Type)
	}
	if uint64(version) != last.Version || uint64(seq) != last.Sequence {
		t.Errorf("server row at version %d seq %d; the log is at version %d seq %d (%s)", version, seq, last.Version, last.Sequence, last.Events[0].Type)
	}
	var opStatus, step string
	var steps string
	var detail *string
	must(t, pool.QueryRow(ctx, `SELECT o.status, coalesce(o.current_step, ''),
			(SELECT jsonb_agg(jsonb_build_array(st.name, st.status, st.detail) ORDER BY st.idx)::text FROM operation_steps st WHERE st.operation_id = o.id),
			o.detail
		FROM operations o WHERE o.resource_id=$1 AND o.kind='server.create'`, sid).Scan(&opStatus, &step, &steps, &detail))
	// The spawn step keeps the failed host's account for admins; the
	// operation, still running, has none.
	wantSteps := `[["schedule", "running", null], ["spawn", "pending", "` + hostAccount("h1") + `"]]`
	if opStatus != "running" || step != "schedule" || steps != wantSteps || detail != nil {
		t.Errorf("operation: %s, current step %q, steps %s, detail %v; want running, schedule, %s, none", opStatus, step, steps, deref(detail), wantSteps)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestWaitFor(t *testing.T) {
	w := newWorld(t)
	pool := newDB(t)
	r := w.runner(pool)
	start(t, r)
	h := w.caughtUp(r)
	ctx := ctxT(t)
	ok, err := r.WaitFor(ctx, h, time.Second)
	if err != nil || !ok {
		t.Fatalf("WaitFor(head) = %v, %v; want true", ok, err)
	}
	began := time.Now()
	ok, err = r.WaitFor(ctx, h+1, 300*time.Millisecond)
	if err != nil || ok {
		t.Fatalf("WaitFor(head+1) = %v, %v; want false", ok, err)
	}
	if d := time.Since(began); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("WaitFor(head+1) gave up after %s; want about 300ms", d)
	}
	// A commit appended while waiting is seen.
	done := make(chan bool, 1)
	go func() {
		ok, _ := r.WaitFor(ctx, h+1, 10*time.Second)
		done <- ok
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := w.serverLifecycle(ctx, "late", 1); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("WaitFor did not see a commit applied while it waited")
	}
}

// WaitFor answers true only once the commit is readable: on the replica
// whose runner applies it (woken by the apply) and on one that only reads
// (a replica without a runner, which reads the checkpoints), for each of
// many writes in a row.
func TestWaitForThenReadSeesTheWrite(t *testing.T) {
	w := newWorld(t)
	pool := newDB(t)
	r := w.runner(pool)
	start(t, r)
	w.caughtUp(r)
	passive := w.runner(pool) // not run: it only waits
	ctx := ctxT(t)
	for k := range 20 {
		if k%5 == 2 {
			continue // deleted: no row to read
		}
		id, err := w.serverLifecycle(ctx, "rw", k)
		must(t, err)
		_, version, err := w.app.Servers.LoadLatest(ctx, id)
		must(t, err)
		h := w.head()
		for _, waiter := range []*projections.Runner{r, passive} {
			ok, err := waiter.WaitFor(ctx, h, 10*time.Second)
			if err != nil || !ok {
				t.Fatalf("write %d: WaitFor(%d) = %v, %v", k, h, ok, err)
			}
			var read int64
			if err := pool.QueryRow(ctx, `SELECT version FROM servers WHERE id = $1`, id).Scan(&read); err != nil {
				t.Fatalf("write %d: server %s not readable after WaitFor(%d): %v", k, id, h, err)
			}
			if uint64(read) != version {
				t.Fatalf("write %d: server %s reads version %d after WaitFor(%d); want %d (its last commit)", k, id, read, h, version)
			}
		}
	}
}

// A runner killed in the middle of the stream and a new one started: every
// commit is applied once, and the tables equal a build from scratch.
func TestRunnerCrashMidStream(t *testing.T) {
	w := newWorld(t)
	w.servers("a", 24)
	pool := newDB(t)

	ctx := ctxT(t)
	var stopAppend atomic.Bool
	appended := make(chan error, 1)
	go func() {
		var err error
		for k := 0; !stopAppend.Load() && err == nil; k++ {
			_, err = w.serverLifecycle(ctx, "b", k)
		}
		appended <- err
	}()
	for crash := 0; crash < 3; crash++ {
		before := checkpoints(t, pool)
		r := w.runner(pool)
		stop := start(t, r)
		// Let it make some progress, then pull the plug.
		deadline := time.Now().Add(10 * time.Second)
	progress:
		for time.Now().Before(deadline) {
			for name, seq := range checkpoints(t, pool) {
				if seq > before[name] {
					break progress
				}
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(crash*15) * time.Millisecond)
		if err := stop(); err != nil {
			t.Fatalf("runner %d: %v", crash, err)
		}
		// Whatever the moment of the crash, the events table holds exactly
		// the commits its checkpoint says were applied. Both are read in one
		// statement, so in one snapshot: a commit the killed runner had
		// already sent may still land after stop returns.
		var rows, applied int64
		must(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events),
			(SELECT seq FROM projection_checkpoints WHERE name = 'events')`).Scan(&rows, &applied))
		if rows != applied {
			t.Fatalf("after crash %d: events has %d rows, checkpoint says %d", crash, rows, applied)
		}
		cp := checkpoints(t, pool)
		t.Logf("crash %d at checkpoints %v (head %d)", crash, cp, w.head())
	}
	stopAppend.Store(true)
	must(t, <-appended)

	r := w.runner(pool)
	start(t, r)
	h := w.caughtUp(r)
	if n := count(t, pool, `SELECT count(*) FROM events`); n != int(h) {
		t.Fatalf("events has %d rows, head is %d", n, h)
	}
	for name, seq := range checkpoints(t, pool) {
		if seq != h {
			t.Errorf("checkpoint %s = %d, want %d", name, seq, h)
		}
	}
	sameTables(t, dump(t, pool), w.fromScratch())
}

// Two replicas run a runner each on the same database and stream while
// commits arrive: each commit is applied exactly once.
func TestTwoRunnersApplyEachCommitOnce(t *testing.T) {
	w := newWorld(t)
	pool := newDB(t)
	r1, r2 := w.runner(pool), w.runner(pool)
	start(t, r1)
	start(t, r2)
	w.servers("x", 40)
	h := w.caughtUp(r1)
	if ok, err := r2.WaitFor(ctxT(t), h, 5*time.Second); err != nil || !ok {
		t.Fatalf("second runner WaitFor = %v, %v", ok, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM events`); n != int(h) {
		t.Fatalf("events has %d rows, head is %d", n, h)
	}
	if n := count(t, pool, `SELECT count(DISTINCT seq) FROM events`); n != int(h) {
		t.Fatalf("events has %d distinct seqs, head is %d", n, h)
	}
	for name, seq := range checkpoints(t, pool) {
		if seq != h {
			t.Errorf("checkpoint %s = %d, want %d", name, seq, h)
		}
	}
	sameTables(t, dump(t, pool), w.fromScratch())
}

// Rebuilding projections while the runner follows new commits and readers
// keep querying: no reader error, and the result equals a build from scratch.
func TestRebuildWhileServing(t *testing.T) {
	w := newWorld(t)
	w.servers("before", 24)
	pool := newDB(t)
	r := w.runner(pool)
	start(t, r)
	w.caughtUp(r)

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var wg sync.WaitGroup
	var appendErr error
	wg.Add(1)
	go func() { // a steady flow of commits
		defer wg.Done()
		for k := 0; ctx.Err() == nil; k++ {
			if _, err := w.serverLifecycle(ctx, "during", k); err != nil && ctx.Err() == nil {
				appendErr = err
				return
			}
		}
	}()
	var reads atomic.Int64
	readErrs := make(chan error, 100)
	for _, q := range []string{`SELECT count(*) FROM servers`, `SELECT count(*) FROM events`, `SELECT count(*) FROM servers s JOIN operations o ON o.id = s.operation_id`} {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			for ctx.Err() == nil {
				var n int
				if err := pool.QueryRow(ctx, q).Scan(&n); err != nil && ctx.Err() == nil {
					select {
					case readErrs <- err:
					default:
					}
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	for _, p := range []projections.Projection{projections.Servers, projections.Events, projections.Operations, projections.Servers} {
		res, err := r.Rebuild(ctxT(t), p)
		if err != nil {
			t.Fatalf("rebuild %s: %v", p.Name, err)
		}
		if res.Sequence == 0 || res.Commits == 0 {
			t.Errorf("rebuild %s: %+v", p.Name, res)
		}
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	close(readErrs)
	for err := range readErrs {
		t.Errorf("reader failed during rebuild: %v", err)
	}
	if appendErr != nil {
		t.Fatal(appendErr)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads happened")
	}
	w.caughtUp(r)
	for _, tb := range []string{"servers__rebuild", "events__rebuild", "servers__old", "operations__rebuild", "operation_steps__rebuild"} {
		if n := count(t, pool, `SELECT count(*) FROM pg_tables WHERE tablename=$1`, tb); n != 0 {
			t.Errorf("table %s left behind", tb)
		}
	}
	sameTables(t, dump(t, pool), w.fromScratch())
}

// A projection whose stored version is not the code's is rebuilt at start.
func TestChangedVersionRebuildsAtStart(t *testing.T) {
	w := newWorld(t)
	w.servers("v", 8)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	w.caughtUp(r)
	must(t, stop())
	want := dump(t, pool)
	ctx := ctxT(t)

	// As if the servers table had been built by an older Apply.
	_, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET version=0 WHERE name='servers'`)
	must(t, err)
	_, err = pool.Exec(ctx, `UPDATE servers SET name='stale', status='WRONG'`)
	must(t, err)

	r = w.runner(pool)
	start(t, r)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v int
		must(t, pool.QueryRow(ctx, `SELECT version FROM projection_checkpoints WHERE name='servers'`).Scan(&v))
		if v == projections.Servers.Version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers checkpoint still at version %d", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.caughtUp(r)
	if n := count(t, pool, `SELECT count(*) FROM servers WHERE name='stale' OR status='WRONG'`); n != 0 {
		t.Fatalf("%d stale rows survived the rebuild", n)
	}
	checkpoints(t, pool) // every version matches the code
	sameTables(t, dump(t, pool), want)
}

// An upgrade changes a projection's version and two replicas start at once:
// both see the old version. Both must end up following, and the tables must
// equal a build from scratch.
func TestTwoReplicasStartingOnAChangedVersion(t *testing.T) {
	w := newWorld(t)
	w.servers("u", 30)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	w.caughtUp(r)
	must(t, stop())
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET version=0`)
	must(t, err)

	r1, r2 := w.runner(pool), w.runner(pool)
	stop1, stop2 := start(t, r1), start(t, r2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var stale int
		must(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_checkpoints WHERE version=0`).Scan(&stale))
		if stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d projections still at version 0", stale)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.servers("after", 5) // both replicas must still follow
	w.caughtUp(r1)
	err1, err2 := stop1(), stop2()
	if err1 != nil || err2 != nil {
		t.Fatalf("a replica's runner failed while rebuilding at start: %v / %v", err1, err2)
	}
	checkpoints(t, pool)
	sameTables(t, dump(t, pool), w.fromScratch())
}
