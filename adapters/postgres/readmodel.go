// Package postgres reads Keel's read model: every GET of the API, the
// scheduler's snapshot of hosts and the saga's list of overdue steps are
// served from here. It only reads; projections/ writes these tables. The
// one table it writes is the audit chain (audit.go), which it copies from
// the audit stream, not from the event log.
package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keel-cloud/keel/domain"
)

// ReadModel answers queries from Postgres.
type ReadModel struct{ Pool *pgxpool.Pool }

// Connect opens a pool and checks the connection.
func Connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return pool, nil
}

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Page asks for one page of a list.
type Page struct {
	Limit  int
	Cursor string
}

// cursor is the keyset position after the last row of a page.
type cursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

// ErrBadCursor is returned for a cursor this server did not produce.
var ErrBadCursor = domain.Invalidf("cursor is not valid; use the next_cursor of a previous page")

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || uuid.Validate(c.ID) != nil {
		return nil, ErrBadCursor
	}
	return &c, nil
}

func encodeCursor(at time.Time, id string) string {
	b, _ := json.Marshal(cursor{At: at, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// where collects filter clauses and their arguments.
type where struct {
	clauses []string
	args    []any
}

func (w *where) add(clause string, v any) {
	w.args = append(w.args, v)
	w.clauses = append(w.clauses, strings.ReplaceAll(clause, "?", fmt.Sprintf("$%d", len(w.args))))
}

func (w *where) page(p Page, tsCol string) error {
	c, err := decodeCursor(p.Cursor)
	if err != nil {
		return err
	}
	if c != nil {
		w.args = append(w.args, c.At, c.ID)
		n := len(w.args)
		w.clauses = append(w.clauses, fmt.Sprintf("(%s, id) > ($%d, $%d::uuid)", tsCol, n-1, n))
	}
	return nil
}

func (w *where) sql() string {
	if len(w.clauses) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.clauses, " AND ")
}

func limit(p Page) int {
	if p.Limit <= 0 {
		return 50
	}
	return min(p.Limit, 1000)
}

// list runs a keyset-paginated query and returns rows and the next cursor.
func list[T any](ctx context.Context, pool *pgxpool.Pool, q string, w *where, p Page, tsCol string,
	scan func(pgx.CollectableRow) (T, error), key func(T) (time.Time, string)) ([]T, string, error) {
	if err := w.page(p, tsCol); err != nil {
		return nil, "", err
	}
	n := limit(p)
	sql := q + w.sql() + fmt.Sprintf(" ORDER BY %s, id LIMIT %d", tsCol, n+1)
	rows, err := pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("query: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, "", fmt.Errorf("query: %w", err)
	}
	next := ""
	if len(out) > n {
		out = out[:n]
		at, id := key(out[n-1])
		next = encodeCursor(at, id)
	}
	return out, next, nil
}

func one[T any](ctx context.Context, pool *pgxpool.Pool, q string, scan func(pgx.CollectableRow) (T, error), args ...any) (T, error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("query: %w", err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}
