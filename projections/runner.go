package projections

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/eventlog"
)

// BatchSize bounds the commits applied in one transaction: one batch of
// the follower.
const BatchSize = eventlog.MaxBatch

// Runner keeps projections up to date with the stream. Several replicas may
// run one each: a per-projection advisory lock and the checkpoint read under
// it make sure each commit is applied exactly once.
type Runner struct {
	Pool *pgxpool.Pool
	// Events is the log the projections follow.
	Events      eventlog.Follower
	Projections []Projection
	Log         *slog.Logger

	mark    sync.Mutex // guards the shared read of what has been applied
	markAt  time.Time
	markSeq uint64
	wake    chan struct{} // closed by advanced
}

// Run prepares every projection, then follows the stream once for all of
// them until ctx ends: each commit is read and decoded once, and each batch
// is applied to every projection in one transaction that advances every
// checkpoint, restarting after errors.
func (r *Runner) Run(ctx context.Context) error {
	for {
		err := r.prepare(ctx)
		if err == nil || ctx.Err() != nil {
			break
		}
		r.Log.Error("projections could not start; retrying", "err", err)
		_ = sleepCtx(ctx, time.Second)
	}
	for ctx.Err() == nil {
		err := r.followOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Error("projections stopped; restarting", "err", err)
			_ = sleepCtx(ctx, time.Second)
		}
	}
	return nil
}

// prepare makes sure every checkpoint row exists, and rebuilds the
// projections whose stored version is not the code's, all in one pass over
// the log.
func (r *Runner) prepare(ctx context.Context) error {
	for _, p := range r.Projections {
		_, err := r.Pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, version, seq) VALUES ($1, $2, 0) ON CONFLICT (name) DO NOTHING`, p.Name, p.Version)
		if err != nil {
			return fmt.Errorf("projection %s checkpoint: %w", p.Name, err)
		}
	}
	stale, err := staleOf(ctx, r.Pool, r.Projections)
	if err != nil || len(stale) == 0 {
		return err
	}
	// Another replica may be rebuilding them too: take the rebuild locks,
	// then look again.
	return r.withRebuildLocks(ctx, stale, func(conn *pgxpool.Conn) error {
		stale, err := staleOf(ctx, conn, stale)
		if err != nil || len(stale) == 0 {
			return err
		}
		for _, p := range stale {
			r.Log.Info("projection version changed; rebuilding", "projection", p.Name, "to", p.Version)
		}
		_, err = r.rebuild(ctx, conn, stale)
		return err
	})
}

// staleOf returns the projections of ps whose checkpoint has another version.
func staleOf(ctx context.Context, q querier, ps []Projection) ([]Projection, error) {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	rows, err := q.Query(ctx, `SELECT name, version FROM projection_checkpoints WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint versions: %w", err)
	}
	defer rows.Close()
	stored := map[string]int{}
	for rows.Next() {
		var name string
		var version int
		if err := rows.Scan(&name, &version); err != nil {
			return nil, fmt.Errorf("read checkpoint versions: %w", err)
		}
		stored[name] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoint versions: %w", err)
	}
	var out []Projection
	for _, p := range ps {
		if stored[p.Name] != p.Version {
			out = append(out, p)
		}
	}
	return out, nil
}

func (r *Runner) followOnce(ctx context.Context) error {
	cps, err := r.checkpoints(ctx, r.Pool, "")
	if err != nil {
		return err
	}
	from := uint64(0)
	for i, p := range r.Projections {
		if i == 0 || cps[p.Name] < from {
			from = cps[p.Name]
		}
	}
	return followAhead(ctx, r.Events, from+1, 0, func(envs []domain.Envelope, decoded [][]domain.Event) error {
		if err := r.applyLive(ctx, envs, decoded); err != nil {
			return err
		}
		r.advanced(envs[len(envs)-1].Sequence)
		return nil
	})
}

func (r *Runner) names() []string {
	out := make([]string, len(r.Projections))
	for i, p := range r.Projections {
		out[i] = p.Name
	}
	return out
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// checkpoints reads every projection's checkpoint; suffix is "" or, inside
// a transaction holding the projections' locks, " ORDER BY name FOR UPDATE".
func (r *Runner) checkpoints(ctx context.Context, q querier, suffix string) (map[string]uint64, error) {
	rows, err := q.Query(ctx, `SELECT name, seq FROM projection_checkpoints WHERE name = ANY($1)`+suffix, r.names())
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, err
		}
		out[name] = uint64(seq)
	}
	return out, rows.Err()
}

// applyLive applies a batch to every projection, each from above its own
// checkpoint, and advances the checkpoints, in one transaction holding every
// projection's advisory lock (taken in name order, as rebuilds take theirs).
func (r *Runner) applyLive(ctx context.Context, envs []domain.Envelope, decoded [][]domain.Event) error {
	ordered := inNameOrder(r.Projections)
	return pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		locks := &pgx.Batch{}
		for _, p := range ordered {
			locks.Queue(`SELECT pg_advisory_xact_lock($1)`, lockKey(p.Name))
		}
		if err := tx.SendBatch(ctx, locks).Close(); err != nil {
			return err
		}
		cps, err := r.checkpoints(ctx, tx, ` ORDER BY name FOR UPDATE`)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, p := range r.Projections {
			cur := cps[p.Name]
			last, err := queue(b, p, p.live(), envs, decoded, cur)
			if err != nil {
				return err
			}
			if last > cur {
				b.Queue(`UPDATE projection_checkpoints SET seq=$2, updated_at=now() WHERE name=$1`, p.Name, int64(last))
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// inNameOrder returns ps sorted by name, without repeats: the order in
// which every lock on several projections is taken, so that no two holders
// wait on each other.
func inNameOrder(ps []Projection) []Projection {
	out := slices.SortedFunc(slices.Values(ps), func(a, b Projection) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b Projection) bool { return a.Name == b.Name })
}

// decodeAll decodes each commit once, for every projection to use.
func decodeAll(envs []domain.Envelope) ([][]domain.Event, error) {
	decoded := make([][]domain.Event, len(envs))
	for i, env := range envs {
		evs, err := catalog.Decode(env)
		if err != nil {
			return nil, fmt.Errorf("projections: %w", err)
		}
		decoded[i] = evs
	}
	return decoded, nil
}

// queue adds one projection's statements for the commits above after, to
// tables t; it returns the last sequence queued (after when none).
func queue(b *pgx.Batch, p Projection, t Tables, envs []domain.Envelope, decoded [][]domain.Event, after uint64) (uint64, error) {
	i := 0
	for i < len(envs) && envs[i].Sequence <= after {
		i++
	}
	envs, decoded = envs[i:], decoded[i:]
	if len(envs) == 0 {
		return after, nil
	}
	w := NewWriter(b)
	if p.ApplyBatch != nil {
		if err := p.ApplyBatch(w, t, envs, decoded); err != nil {
			return after, fmt.Errorf("projection %s at %d to %d: %w", p.Name, envs[0].Sequence, envs[len(envs)-1].Sequence, err)
		}
	} else {
		for i, env := range envs {
			if err := p.Apply(w, t, env, decoded[i]); err != nil {
				return after, fmt.Errorf("projection %s at %d: %w", p.Name, env.Sequence, err)
			}
		}
	}
	w.Flush()
	return envs[len(envs)-1].Sequence, nil
}

func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("keel.projection." + name))
	return int64(h.Sum64())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
