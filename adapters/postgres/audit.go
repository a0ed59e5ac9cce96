package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keel-cloud/keel/audit"
)

// AuditSource is where the chain writer reads audit records: the audit
// stream, in order.
type AuditSource interface {
	Fetch(ctx context.Context, from uint64, n int) ([]audit.Stored, error)
}

// auditLock is the advisory lock key that lets one chain writer at a time
// append to audit_records, whatever the number of keel serve replicas.
const auditLock = int64(0x6b65656c61756474) // "keelaudt"

// AuditBatch is how many records the chain writer copies per transaction.
const AuditBatch = 1000

// AuditChain copies the audit stream into audit_records, chaining each
// record to the one before it. Any number may run against one database:
// each transaction takes an advisory lock, reads the last row, and
// appends what follows it in the stream, so a crash loses or doubles
// nothing and replicas never interleave.
type AuditChain struct {
	Pool   *pgxpool.Pool
	Source AuditSource
	Log    *slog.Logger
}

// CopyOnce copies the next batch of records, if any, and says how many.
func (c *AuditChain) CopyOnce(ctx context.Context) (int, error) {
	tx, err := c.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit chain: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
		return 0, fmt.Errorf("audit chain lock: %w", err)
	}
	var last uint64
	var prev []byte
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("audit chain head: %w", err)
	}
	recs, err := c.Source.Fetch(ctx, last+1, AuditBatch)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	rows := make([][]any, 0, len(recs))
	for _, r := range recs {
		if r.Seq != last+1 {
			return 0, fmt.Errorf("audit chain: the stream gave sequence %d after %d", r.Seq, last)
		}
		h := audit.Hash(prev, r.Data, r.Seq)
		rows = append(rows, c.row(r, prev, h))
		last, prev = r.Seq, h
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"},
		[]string{"seq", "id", "at", "project_id", "operation", "outcome", "record", "prev_hash", "hash"}, pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("audit chain insert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("audit chain commit: %w", err)
	}
	return len(recs), nil
}

// row is the table row of one record. A record that does not decode (none
// Keel publishes) is kept all the same, so the chain does not stall on it;
// verify names it.
func (c *AuditChain) row(r audit.Stored, prev, h []byte) []any {
	id, at, project, op, outcome, err := audit.Columns(r.Data)
	if err == nil {
		_, err = uuid.Parse(id)
	}
	if err != nil {
		c.Log.Error("audit record does not decode; chained as it is", "seq", r.Seq, "err", err)
		id, at, project, op, outcome = uuid.Nil.String(), time.Unix(0, 0), "", "", "unknown"
	}
	if prev == nil {
		prev = []byte{}
	}
	return []any{int64(r.Seq), id, at, project, op, outcome, r.Data, prev, h}
}

// Run copies records as they come: at once when wake fires, else every
// second, until ctx ends.
func (c *AuditChain) Run(ctx context.Context, wake <-chan struct{}) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n, err := c.CopyOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Error("audit chain", "err", err)
		}
		if n == AuditBatch {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}

// AuditLast is the last sequence in audit_records (0: none).
func AuditLast(ctx context.Context, pool *pgxpool.Pool) (uint64, error) {
	var last int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&last); err != nil {
		return 0, fmt.Errorf("audit chain head: %w", err)
	}
	return uint64(last), nil
}

// VerifyAudit walks audit_records in sequence order through the chain
// verifier.
func VerifyAudit(ctx context.Context, pool *pgxpool.Pool) (audit.Result, error) {
	var v audit.Verifier
	rows, err := pool.Query(ctx, `SELECT seq, id::text, at, project_id, operation, outcome, record, prev_hash, hash FROM audit_records ORDER BY seq`)
	if err != nil {
		return audit.Result{}, fmt.Errorf("read audit records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r audit.Row
		var seq int64
		if err := rows.Scan(&seq, &r.ID, &r.At, &r.Project, &r.Operation, &r.Outcome, &r.Record, &r.PrevHash, &r.Hash); err != nil {
			return audit.Result{}, fmt.Errorf("read audit record: %w", err)
		}
		r.Seq = uint64(seq)
		if len(r.PrevHash) == 0 {
			r.PrevHash = nil
		}
		v.Add(r)
	}
	if err := rows.Err(); err != nil {
		return audit.Result{}, fmt.Errorf("read audit records: %w", err)
	}
	return v.Result(), nil
}

// AuditFilter selects audit records.
type AuditFilter struct {
	// Project limits the records to one project's ("" and All: every
	// one); Cloud adds the records of no project (refused logins and
	// tokens, the cloud's own calls).
	Project string
	All     bool
	Cloud   bool
	From    time.Time // at or after (zero: from the first)
	To      time.Time // before (zero: to the last)
	After   uint64    // only records after this sequence
	Limit   int
}

// AuditRecord is one record as published, and its sequence.
type AuditRecord struct {
	Seq    uint64
	Record []byte
}

// AuditRecords lists records in sequence order.
func (r *ReadModel) AuditRecords(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	w := &where{}
	switch {
	case f.All:
	case f.Cloud:
		w.add("(project_id = '' OR project_id = ?)", f.Project)
	default:
		w.add("project_id = ?", f.Project)
	}
	if !f.From.IsZero() {
		w.add("at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("at < ?", f.To)
	}
	if f.After > 0 {
		w.add("seq > ?", int64(f.After))
	}
	rows, err := r.Pool.Query(ctx, `SELECT seq, record FROM audit_records`+w.sql()+` ORDER BY seq LIMIT `+fmt.Sprint(max(f.Limit, 1)), w.args...)
	if err != nil {
		return nil, fmt.Errorf("query audit records: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditRecord, error) {
		var a AuditRecord
		var seq int64
		err := row.Scan(&seq, &a.Record)
		a.Seq = uint64(seq)
		return a, err
	})
}
