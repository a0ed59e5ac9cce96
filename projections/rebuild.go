package projections

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keel-cloud/keel/domain"
)

// RebuildResult says what a rebuild did.
type RebuildResult struct {
	Projection string        `json:"projection"`
	Commits    uint64        `json:"commits"`
	Sequence   uint64        `json:"sequence"`
	Duration   time.Duration `json:"duration_ns"`
}

// Rebuild rebuilds one projection; see RebuildAll.
func (r *Runner) Rebuild(ctx context.Context, p Projection) (RebuildResult, error) {
	res, err := r.RebuildAll(ctx, []Projection{p})
	if err != nil {
		return RebuildResult{}, err
	}
	return res[0], nil
}

// RebuildAll replays the log once into fresh copies of the tables of every
// projection of ps: each batch is decoded once and applied to every copy.
// Then, in one transaction under the projections' locks, it applies what
// the live projections took in meanwhile and swaps the copies in. Readers
// see the old tables until the swap commits and the new ones after; the
// swap holds the locks only for the tail of the log. The results follow
// the order of ps.
//
// Rebuilds are serialised across replicas by a session advisory lock per
// projection, held for the whole rebuild and taken in name order.
func (r *Runner) RebuildAll(ctx context.Context, ps []Projection) ([]RebuildResult, error) {
	var res []RebuildResult
	err := r.withRebuildLocks(ctx, ps, func(conn *pgxpool.Conn) error {
		var err error
		res, err = r.rebuild(ctx, conn, inNameOrder(ps))
		return err
	})
	if err != nil {
		return nil, err
	}
	byName := map[string]RebuildResult{}
	for _, rr := range res {
		byName[rr.Projection] = rr
	}
	out := make([]RebuildResult, 0, len(res))
	for _, p := range ps {
		if rr, ok := byName[p.Name]; ok {
			out = append(out, rr)
			delete(byName, p.Name) // a projection named twice is rebuilt once
		}
	}
	return out, nil
}

// withRebuildLocks runs fn holding the rebuild locks of ps on conn, the one
// connection the rebuild then works on (so that several rebuilds at once
// never wait on each other for connections).
func (r *Runner) withRebuildLocks(ctx context.Context, ps []Projection, fn func(conn *pgxpool.Conn) error) error {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer conn.Release()
	for _, p := range inNameOrder(ps) {
		key := lockKey("rebuild." + p.Name)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return fmt.Errorf("rebuild lock of %s: %w", p.Name, err)
		}
		defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) }()
	}
	return fn(conn)
}

// rebuild rebuilds ps (in name order) on conn, which holds their rebuild locks.
func (r *Runner) rebuild(ctx context.Context, conn *pgxpool.Conn, ps []Projection) ([]RebuildResult, error) {
	start := time.Now()
	var indexes []string
	for _, p := range ps {
		later, err := createCopies(ctx, conn, p, p.rebuild())
		if err != nil {
			return nil, err
		}
		indexes = append(indexes, later...)
	}
	head, err := r.Events.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	var done, commits uint64
	if head > 0 {
		if done, commits, err = r.fill(ctx, conn, ps, head); err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", names(ps), err)
		}
	}
	filled := time.Now()
	for _, sql := range indexes {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return nil, fmt.Errorf("rebuild %s: index: %w", names(ps), err)
		}
	}
	indexed := time.Now()
	finals, err := r.swap(ctx, conn, ps, done)
	if err != nil {
		return nil, err
	}
	r.Log.Info("projections rebuilt", "projections", names(ps), "commits", commits,
		"fill", filled.Sub(start).Round(time.Millisecond), "indexes", indexed.Sub(filled).Round(time.Millisecond),
		"swap", time.Since(indexed).Round(time.Millisecond))
	out := make([]RebuildResult, len(ps))
	for i, p := range ps {
		out[i] = RebuildResult{Projection: p.Name, Commits: commits, Sequence: finals[i], Duration: time.Since(start)}
	}
	return out, nil
}

// fill applies the log up to head to the rebuild copies of ps. The copies
// are seen by no one until the swap, and a rebuild cut short starts again
// from nothing: their batches need not wait for the disk (the swap commits
// synchronously). The log is read once, and the biggest projections (the
// events history, most of the bytes written, and operations) are filled
// each on a connection of its own beside the others, so that Postgres
// writes them at once: each batch goes to every connection's worker.
func (r *Runner) fill(ctx context.Context, conn *pgxpool.Conn, ps []Projection, head uint64) (done, commits uint64, err error) {
	var groups [][]Projection
	var rest []Projection
	for _, p := range ps {
		if p.Name == Events.Name || p.Name == Operations.Name {
			groups = append(groups, []Projection{p})
		} else {
			rest = append(rest, p)
		}
	}
	if len(rest) > 0 {
		groups = append([][]Projection{rest}, groups...)
	}
	conns := []*pgxpool.Conn{conn}
	for range groups[1:] {
		extra, err := r.Pool.Acquire(ctx)
		if err != nil {
			return 0, 0, err
		}
		defer extra.Release()
		conns = append(conns, extra)
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, `SET synchronous_commit = off`); err != nil {
			return 0, 0, err
		}
		defer func() {
			if _, rerr := c.Exec(context.WithoutCancel(ctx), `RESET synchronous_commit`); rerr != nil {
				// Not back to synchronous: the pool must not reuse it.
				_ = c.Conn().Close(context.WithoutCancel(ctx))
				err = errors.Join(err, rerr)
			}
		}()
	}
	// One worker per connection; each batch goes to every worker, which
	// only reads it.
	type batch struct {
		envs    []domain.Envelope
		decoded [][]domain.Event
		after   uint64
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queues := make([]chan batch, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i := range groups {
		queues[i] = make(chan batch, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range queues[i] {
				if errs[i] != nil {
					continue // drain
				}
				if _, errs[i] = applyRebuild(wctx, conns[i], groups[i], nil, b.envs, b.decoded, b.after); errs[i] != nil {
					cancel()
				}
			}
		}()
	}
	err = followAhead(wctx, r.Events, 1, head, func(envs []domain.Envelope, decoded [][]domain.Event) error {
		if len(envs) == 0 {
			return nil
		}
		b := batch{envs, decoded, done}
		for _, q := range queues {
			select {
			case q <- b:
			case <-wctx.Done():
				return nil
			}
		}
		done, commits = max(done, envs[len(envs)-1].Sequence), commits+uint64(len(envs))
		return nil
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	err = errors.Join(append([]error{err}, errs...)...)
	if err == nil {
		err = ctx.Err() // Follow returns nil when ctx ends
	}
	return done, commits, err
}

func names(ps []Projection) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return strings.Join(out, ", ")
}

// createCopies creates the rebuild copies of p's tables with their columns,
// defaults and keys (primary and unique: ON CONFLICT needs them), and
// returns the statements that create their other indexes, run once the
// copies are filled: building an index once is cheaper than keeping it up
// to date row by row.
func createCopies(ctx context.Context, conn *pgxpool.Conn, p Projection, rt Tables) ([]string, error) {
	var later []string
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, t := range p.Tables {
			cp := rt.T(t)
			if _, err := tx.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)`, cp, cp, t)); err != nil {
				return fmt.Errorf("create rebuild table for %s: %w", t, err)
			}
			rows, err := tx.Query(ctx, `SELECT pg_get_indexdef(i.indexrelid), i.indisunique, coalesce(pg_get_constraintdef(c.oid), '')
				FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
				WHERE i.indrelid = $1::regclass ORDER BY i.indexrelid`, t)
			if err != nil {
				return fmt.Errorf("read indexes of %s: %w", t, err)
			}
			type index struct {
				def, constraint string
				unique          bool
			}
			idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
				var x index
				return x, r.Scan(&x.def, &x.unique, &x.constraint)
			})
			if err != nil {
				return fmt.Errorf("read indexes of %s: %w", t, err)
			}
			for _, x := range idx {
				var sql string
				switch {
				case x.constraint != "":
					sql = `ALTER TABLE ` + cp + ` ADD ` + x.constraint
				default:
					m := indexDef.FindStringSubmatchIndex(x.def)
					if m == nil {
						return fmt.Errorf("index of %s not understood: %s", t, x.def)
					}
					sql = x.def[:m[3]] + " ON " + cp + x.def[m[1]:] // CREATE [UNIQUE] INDEX ON copy USING ...
				}
				if x.unique || x.constraint != "" {
					if _, err := tx.Exec(ctx, sql); err != nil {
						return fmt.Errorf("key of rebuild table %s: %w", cp, err)
					}
					continue
				}
				later = append(later, sql)
			}
		}
		return nil
	})
	return later, err
}

// indexDef matches the head of pg_get_indexdef's text up to the table:
// group 1 is "CREATE [UNIQUE] INDEX", then the name and "ON [ONLY] table".
var indexDef = regexp.MustCompile(`^(CREATE (?:UNIQUE )?INDEX) \S+ ON (?:ONLY )?\S+`)

type execer interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// applyRebuild applies the commits above after to the rebuild tables of
// every projection of ps, in one batch and without checkpoints: each
// projection up to its limit (limits nil: no limit). It returns the last
// sequence of envs above after.
func applyRebuild(ctx context.Context, db execer, ps []Projection, limits []uint64, envs []domain.Envelope, decoded [][]domain.Event, after uint64) (uint64, error) {
	last := after
	if n := len(envs); n > 0 {
		last = max(after, envs[n-1].Sequence)
	}
	b := &pgx.Batch{}
	for i, p := range ps {
		n := len(envs)
		if limits != nil {
			n = through(envs, limits[i])
		}
		if _, err := queue(b, p, p.rebuild(), envs[:n], decoded[:n], after); err != nil {
			return after, err
		}
	}
	if b.Len() == 0 {
		return last, nil
	}
	return last, db.SendBatch(ctx, b).Close()
}

// through is the number of commits of envs (in order) up to sequence seq.
func through(envs []domain.Envelope, seq uint64) int {
	for i, e := range envs {
		if e.Sequence > seq {
			return i
		}
	}
	return len(envs)
}

// swap catches each copy up with its projection's live checkpoint and
// renames the copies in, in one transaction holding the projections' locks
// (in name order, as the live runner takes them). It returns each
// projection's checkpoint after the swap.
func (r *Runner) swap(ctx context.Context, conn *pgxpool.Conn, ps []Projection, done uint64) ([]uint64, error) {
	finals := make([]uint64, len(ps))
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		live := make([]uint64, len(ps))
		var behind uint64 // the furthest live checkpoint beyond done
		for i, p := range ps {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(p.Name)); err != nil {
				return err
			}
			var cur int64
			if err := tx.QueryRow(ctx, `SELECT seq FROM projection_checkpoints WHERE name=$1 FOR UPDATE`, p.Name).Scan(&cur); err != nil {
				return fmt.Errorf("read checkpoint of %s: %w", p.Name, err)
			}
			live[i], finals[i] = uint64(cur), max(done, uint64(cur))
			behind = max(behind, uint64(cur))
		}
		if behind > done {
			// Each copy takes the tail up to its own live checkpoint: the
			// live runner goes on from there.
			caught := done
			err := followAhead(ctx, r.Events, done+1, behind, func(envs []domain.Envelope, decoded [][]domain.Event) error {
				n, err := applyRebuild(ctx, tx, ps, live, envs, decoded, caught)
				caught = n
				return err
			})
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("catch up rebuild of %s: %w", names(ps), err)
			}
		}
		for i, p := range ps {
			for _, t := range p.Tables {
				sql := fmt.Sprintf(`ALTER TABLE %[1]s RENAME TO %[1]s__old; ALTER TABLE %[2]s RENAME TO %[1]s; DROP TABLE %[1]s__old`, t, p.rebuild().T(t))
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("swap %s: %w", t, err)
				}
			}
			_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET seq=$2, version=$3, updated_at=now() WHERE name=$1`, p.Name, int64(finals[i]), p.Version)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", names(ps), err)
	}
	return finals, nil
}

// Status is one projection's checkpoint and lag.
type Status struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Sequence  uint64    `json:"sequence"`
	Lag       uint64    `json:"lag"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Statuses lists every projection with its checkpoint and its lag behind the stream.
func (r *Runner) Statuses(ctx context.Context) ([]Status, error) {
	head, err := r.Events.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := r.Pool.Query(ctx, `SELECT name, version, seq, updated_at FROM projection_checkpoints ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Status, error) {
		var s Status
		var seq int64
		err := row.Scan(&s.Name, &s.Version, &seq, &s.UpdatedAt)
		s.Sequence = uint64(seq)
		if head > s.Sequence {
			s.Lag = head - s.Sequence
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

// WaitFor blocks until every projection has applied seq, or until maxWait
// passes; it reports whether the read model caught up. A batch this
// process applies wakes it at once; what another replica applies is seen
// by reading the checkpoints, every 5 ms at most.
func (r *Runner) WaitFor(ctx context.Context, seq uint64, maxWait time.Duration) (bool, error) {
	deadline := time.Now().Add(maxWait)
	for {
		wake := r.wakeup()
		low, err := r.applied(ctx)
		if err != nil {
			return false, err
		}
		if low >= seq {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// applied returns the sequence every projection has applied. Waiting
// requests share one read of the checkpoints per 5 ms, however many there
// are; a batch this process applies raises it at once (advanced).
func (r *Runner) applied(ctx context.Context) (uint64, error) {
	r.mark.Lock()
	defer r.mark.Unlock()
	if time.Since(r.markAt) < 5*time.Millisecond {
		return r.markSeq, nil
	}
	var low, rows int64
	// A projection without its checkpoint row yet has applied nothing.
	err := r.Pool.QueryRow(ctx, `SELECT coalesce(min(seq), 0), count(*) FROM projection_checkpoints WHERE name = ANY($1)`, r.names()).Scan(&low, &rows)
	if err != nil {
		return 0, fmt.Errorf("read checkpoints: %w", err)
	}
	if rows != int64(len(r.Projections)) {
		low = 0
	}
	// Checkpoints only move forward (a rebuild ends at the head it read),
	// so a batch applied here since the read started is not undone by it.
	r.markSeq, r.markAt = max(r.markSeq, uint64(low)), time.Now()
	return r.markSeq, nil
}

// wakeup returns a channel closed when this process next applies a batch.
func (r *Runner) wakeup() <-chan struct{} {
	r.mark.Lock()
	defer r.mark.Unlock()
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

// advanced records that every projection has applied seq, committed by
// this process, and wakes the waiters.
func (r *Runner) advanced(seq uint64) {
	r.mark.Lock()
	defer r.mark.Unlock()
	r.markSeq = max(r.markSeq, seq)
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// Lags returns how many commits each projection is behind the stream.
func (r *Runner) Lags(ctx context.Context) (map[string]uint64, error) {
	sts, err := r.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(sts))
	for _, s := range sts {
		out[s.Name] = s.Lag
	}
	return out, nil
}

// Applied returns the sequence every projection has applied (shared with
// the waiting reads: one read of the checkpoints per 5 ms).
func (r *Runner) Applied(ctx context.Context) (uint64, error) { return r.applied(ctx) }
