package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/audit"
)

// runAudit measures `keel audit verify` over e.cfg.AuditRecords chained
// records in audit_records, written with COPY as the chain writer would
// chain them. The baseline is a plain SELECT of the same rows and columns
// in the same order, read to the end by the same client, without hashing
// or decoding: what any verification must at least pay. Each is run twice,
// alternating, and the faster run of each kept.
func runAudit(ctx context.Context, e *benchEnv, res *results) error {
	_, pool, err := e.database(ctx, "audit")
	if err != nil {
		return err
	}
	n := e.cfg.AuditRecords
	start := time.Now()
	if err := fillAudit(ctx, pool, n); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `VACUUM (FREEZE, ANALYZE) audit_records`); err != nil {
		return err
	}
	var size string
	if err := pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('audit_records'))`).Scan(&size); err != nil {
		return err
	}
	logf("wrote %d chained audit records (%s) in %s", n, size, time.Since(start).Round(time.Millisecond))
	scan, verify := time.Duration(1<<62), time.Duration(1<<62)
	for round := 0; round < 2; round++ {
		t := time.Now()
		rows, err := scanAudit(ctx, pool)
		if err != nil {
			return err
		}
		scan = min(scan, time.Since(t))
		t = time.Now()
		r, err := postgres.VerifyAudit(ctx, pool)
		if err != nil {
			return err
		}
		verify = min(verify, time.Since(t))
		if !r.OK() || r.Records != uint64(n) || rows != n {
			return fmt.Errorf("verify of %d records found %d (scan %d), first problem %v", n, r.Records, rows, r.First)
		}
		logf("round %d: scan %s, verify %s", round+1, scan.Round(time.Millisecond), verify.Round(time.Millisecond))
	}
	res.add(fmt.Sprintf("audit_scan_%d_s", n), scan.Seconds(), "s", 2, none)
	res.add(fmt.Sprintf("audit_verify_%d_s", n), verify.Seconds(), "s", 2, verify.Seconds()/scan.Seconds())
	return nil
}

// fillAudit COPYs n chained records shaped as the API writes them.
func fillAudit(ctx context.Context, pool *pgxpool.Pool, n int) error {
	var prev []byte
	at := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Duration(n) * time.Millisecond)
	project, user, token := uuid.NewString(), uuid.NewString(), uuid.NewString()
	i := 0
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"audit_records"},
		[]string{"seq", "id", "at", "project_id", "operation", "outcome", "record", "prev_hash", "hash"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			rec := audit.Record{ID: uuid.NewString(), At: at.Add(time.Duration(i) * time.Millisecond),
				Actor:   audit.Actor{UserID: user, UserName: "bench-user", TokenID: token},
				Project: project, Source: "10.1.2.3", RequestID: uuid.NewString(), Operation: "create-server",
				Method: "POST", Path: "/v1/servers", Target: audit.Target{Type: "servers", ID: uuid.NewString()},
				Outcome: audit.Success, Status: 202}
			data, err := json.Marshal(rec)
			if err != nil {
				return nil, err
			}
			seq := uint64(i)
			h := audit.Hash(prev, data, seq)
			p := prev
			if p == nil {
				p = []byte{}
			}
			prev = h
			return []any{int64(seq), rec.ID, rec.At, rec.Project, rec.Operation, rec.Outcome, data, p, h}, nil
		}))
	return err
}

// scanAudit reads every row verify reads, in its order, and does nothing
// with them.
func scanAudit(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	rows, err := pool.Query(ctx, `SELECT seq, id::text, at, project_id, operation, outcome, record, prev_hash, hash FROM audit_records ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		_ = rows.RawValues()
		n++
	}
	return n, rows.Err()
}
