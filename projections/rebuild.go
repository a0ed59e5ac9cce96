package projections

import (
	"context"
	"fmt"
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

// Rebuild replays the whole stream into fresh copies of the projection's
// tables, then, under the projection's lock, applies what the live
// projection took in meanwhile and swaps the copies in. Readers see the old
// tables until the swap commits and the new ones after; the swap holds the
// lock only for the tail of the log.
//
// Rebuilds of one projection are serialised across replicas by a session
// advisory lock held for the whole rebuild.
func (r *Runner) Rebuild(ctx context.Context, p Projection) (RebuildResult, error) {
	var res RebuildResult
	err := r.withRebuildLock(ctx, p, func(conn *pgxpool.Conn) error {
		var err error
		res, err = r.rebuild(ctx, conn, p)
		return err
	})
	return res, err
}

// withRebuildLock runs fn holding the projection's rebuild lock on conn,
// the one connection the rebuild then works on (so that several rebuilds
// at once never wait on each other for connections).
func (r *Runner) withRebuildLock(ctx context.Context, p Projection, fn func(conn *pgxpool.Conn) error) error {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	defer conn.Release()
	key := lockKey("rebuild." + p.Name)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("rebuild lock of %s: %w", p.Name, err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) }()
	return fn(conn)
}

func (r *Runner) rebuild(ctx context.Context, conn *pgxpool.Conn, p Projection) (RebuildResult, error) {
	start := time.Now()
	rt := p.rebuild()
	if err := createCopies(ctx, conn, p, rt); err != nil {
		return RebuildResult{}, err
	}
	head, err := r.streamHead(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	var done, commits uint64
	if head > 0 {
		err = consume(ctx, r.Stream, 1, head, func(envs []domain.Envelope) error {
			n, err := r.applyTo(ctx, conn, p, rt, envs, done)
			done, commits = n, commits+uint64(len(envs))
			return err
		})
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild %s: %w", p.Name, err)
		}
	}
	seq, err := r.swap(ctx, conn, p, rt, done)
	if err != nil {
		return RebuildResult{}, err
	}
	return RebuildResult{Projection: p.Name, Commits: commits, Sequence: seq, Duration: time.Since(start)}, nil
}

func createCopies(ctx context.Context, conn *pgxpool.Conn, p Projection, rt Tables) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, t := range p.Tables {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL)`, rt.T(t), rt.T(t), t)); err != nil {
				return fmt.Errorf("create rebuild table for %s: %w", t, err)
			}
		}
		return nil
	})
}

func (r *Runner) streamHead(ctx context.Context) (uint64, error) {
	info, err := r.Stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

type execer interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// applyTo applies commits above after to the given tables, without a checkpoint.
func (r *Runner) applyTo(ctx context.Context, db execer, p Projection, t Tables, envs []domain.Envelope, after uint64) (uint64, error) {
	decoded, err := decodeAll(envs)
	if err != nil {
		return after, err
	}
	b := &pgx.Batch{}
	last, err := queue(b, p, t, envs, decoded, after)
	if err != nil || b.Len() == 0 {
		return last, err
	}
	return last, db.SendBatch(ctx, b).Close()
}

// swap catches the copies up with the live checkpoint and renames them in.
func (r *Runner) swap(ctx context.Context, conn *pgxpool.Conn, p Projection, rt Tables, done uint64) (uint64, error) {
	var final uint64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(p.Name)); err != nil {
			return err
		}
		var cur int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM projection_checkpoints WHERE name=$1 FOR UPDATE`, p.Name).Scan(&cur); err != nil {
			return fmt.Errorf("read checkpoint of %s: %w", p.Name, err)
		}
		final = max(done, uint64(cur))
		if uint64(cur) > done {
			err := consume(ctx, r.Stream, done+1, uint64(cur), func(envs []domain.Envelope) error {
				n, err := r.applyTo(ctx, tx, p, rt, envs, done)
				done = n
				return err
			})
			if err != nil {
				return fmt.Errorf("catch up rebuild of %s: %w", p.Name, err)
			}
		}
		for _, t := range p.Tables {
			sql := fmt.Sprintf(`ALTER TABLE %[1]s RENAME TO %[1]s__old; ALTER TABLE %[2]s RENAME TO %[1]s; DROP TABLE %[1]s__old`, t, rt.T(t))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("swap %s: %w", t, err)
			}
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET seq=$2, version=$3, updated_at=now() WHERE name=$1`, p.Name, int64(final), p.Version)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", p.Name, err)
	}
	return final, nil
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
	head, err := r.streamHead(ctx)
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
// passes; it reports whether the read model caught up.
func (r *Runner) WaitFor(ctx context.Context, seq uint64, maxWait time.Duration) (bool, error) {
	deadline := time.Now().Add(maxWait)
	for {
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
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// applied returns the sequence every projection has applied. Waiting
// requests share one read of the checkpoints per 5 ms, however many there are.
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
	r.markSeq, r.markAt = uint64(low), time.Now()
	return r.markSeq, nil
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
