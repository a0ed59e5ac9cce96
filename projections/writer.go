package projections

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer collects one projection's statements for a batch of commits. Most
// projection writes set columns of one row (a server's status, a host's
// counters, an operation's step); the Writer folds those of one row within
// the batch into one statement, so that a server built in one batch costs
// one INSERT rather than an INSERT and two UPDATEs. Statements it cannot
// fold (Exec) are queued in order, after the pending writes of their group
// (usually the aggregate) have been queued, so that each row sees its
// writes in log order.
//
// Folding keeps the effect of the statements it replaces:
//   - an UPDATE after a pending INSERT becomes part of the INSERT's values
//     and of its ON CONFLICT DO UPDATE (the row existed before: the UPDATE
//     applies to it, as it would have after an INSERT that did nothing);
//   - UPDATEs of one row merge, the later value of a column winning and
//     increments adding up;
//   - a DELETE drops the row's pending writes and is queued at once.
//
// Rows of different groups never depend on each other's pending writes.
type Writer struct {
	b       *pgx.Batch
	pending map[string]*pendingRow
	order   []*pendingRow
}

// Set is one column assignment: col = val, or col = col + val when Add.
type Set struct {
	Col string
	Val any
	Add bool
}

// To assigns a value.
func To(col string, val any) Set { return Set{Col: col, Val: val} }

// Plus adds n to the column.
func Plus(col string, n int) Set { return Set{Col: col, Val: int64(n), Add: true} }

type pendingRow struct {
	id       string
	group    string
	table    string
	insert   bool
	conflict string   // insert: the conflict target, "(id)"
	cols     []string // insert: the columns, in order
	vals     []any    // insert: their values
	keyCols  []string // update: the WHERE columns
	keyVals  []any
	sets     map[string]Set // update: SET; insert: ON CONFLICT DO UPDATE SET
	dropped  bool
}

// NewWriter writes into b.
func NewWriter(b *pgx.Batch) *Writer {
	return &Writer{b: b, pending: map[string]*pendingRow{}}
}

func rowID(table string, keyCols []string, keyVals []any) string {
	var sb strings.Builder
	sb.WriteString(table)
	for i, c := range keyCols {
		sb.WriteString("\x00")
		sb.WriteString(c)
		sb.WriteString("=")
		if v, ok := keyVals[i].(string); ok {
			sb.WriteString(v)
		} else {
			fmt.Fprint(&sb, keyVals[i])
		}
	}
	return sb.String()
}

// Exec queues a statement that is not folded, after the pending writes of
// group ("": none need go first).
func (w *Writer) Exec(group, sql string, args ...any) {
	if group != "" {
		w.flushGroup(group)
	}
	w.b.Queue(sql, args...)
}

// Insert adds a row to table, identified within the batch by the values of
// keyCols (which must be among cols). conflict is the ON CONFLICT target;
// onConflict, when given, is its DO UPDATE SET (none: DO NOTHING).
func (w *Writer) Insert(group, table, conflict string, keyCols, cols []string, vals []any, onConflict ...Set) {
	keyVals := make([]any, len(keyCols))
	for i, k := range keyCols {
		j := slices.Index(cols, k)
		if j < 0 {
			panic("projections: insert key column " + k + " not among the columns")
		}
		keyVals[i] = vals[j]
	}
	id := rowID(table, keyCols, keyVals)
	if p := w.pending[id]; p != nil {
		if p.insert {
			// The row exists once the pending insert ran: this insert
			// only applies its conflict update.
			w.merge(p, onConflict)
			return
		}
		// Updates of a row that may not exist yet, then an insert: keep
		// that order.
		w.flushRow(p)
	}
	p := &pendingRow{id: id, group: group, table: table, insert: true, conflict: conflict,
		cols: slices.Clone(cols), vals: slices.Clone(vals), keyCols: keyCols, keyVals: keyVals, sets: map[string]Set{}}
	for _, s := range onConflict {
		p.sets[s.Col] = s
	}
	w.add(p)
}

// Update sets columns of the row of table whose keyCols have keyVals.
func (w *Writer) Update(group, table string, keyCols []string, keyVals []any, sets ...Set) {
	id := rowID(table, keyCols, keyVals)
	if p := w.pending[id]; p != nil {
		w.merge(p, sets)
		return
	}
	p := &pendingRow{id: id, group: group, table: table, keyCols: keyCols, keyVals: keyVals, sets: map[string]Set{}}
	w.merge(p, sets)
	w.add(p)
}

// Delete removes the row of table whose keyCols have keyVals: its pending
// writes are dropped and the DELETE is queued at once.
func (w *Writer) Delete(table string, keyCols []string, keyVals []any) {
	id := rowID(table, keyCols, keyVals)
	if p := w.pending[id]; p != nil {
		p.dropped = true
		delete(w.pending, id)
	}
	sql, args := where(`DELETE FROM `+table, keyCols, keyVals, nil)
	w.b.Queue(sql, args...)
}

// Known returns the value a pending update of the row sets col to, if it
// does: what the column holds after the writes so far, whatever the row
// held before the batch.
func (w *Writer) Known(table string, keyCols []string, keyVals []any, col string) (any, bool) {
	p := w.pending[rowID(table, keyCols, keyVals)]
	if p == nil {
		return nil, false
	}
	s, ok := p.sets[col]
	if !ok || s.Add {
		return nil, false
	}
	if p.insert {
		// Both branches of the upsert set it to the same value.
		j := slices.Index(p.cols, col)
		if j < 0 {
			return nil, false
		}
		a, ok1 := p.vals[j].(string)
		b, ok2 := s.Val.(string)
		if !ok1 || !ok2 || a != b {
			return nil, false
		}
	}
	return s.Val, true
}

func (w *Writer) add(p *pendingRow) {
	w.pending[p.id] = p
	w.order = append(w.order, p)
}

// merge applies sets to a pending row: to an insert's values and to its
// conflict update, or to an update's SET.
func (w *Writer) merge(p *pendingRow, sets []Set) {
	if p.insert {
		for _, s := range sets {
			if s.Add && !slices.Contains(p.cols, s.Col) {
				// An increment of a column the insert leaves to its
				// default: not foldable; write the row, then the update.
				w.flushRow(p)
				w.Update(p.group, p.table, p.keyCols, p.keyVals, sets...)
				return
			}
		}
	}
	for _, s := range sets {
		if p.insert {
			j := slices.Index(p.cols, s.Col)
			switch {
			case j < 0:
				p.cols, p.vals = append(p.cols, s.Col), append(p.vals, s.Val)
			case s.Add:
				p.vals[j] = toInt64(p.vals[j]) + s.Val.(int64)
			default:
				p.vals[j] = s.Val
			}
		}
		old, had := p.sets[s.Col]
		switch {
		case s.Add && had && old.Add:
			p.sets[s.Col] = Set{Col: s.Col, Val: old.Val.(int64) + s.Val.(int64), Add: true}
		case s.Add && had:
			p.sets[s.Col] = Set{Col: s.Col, Val: toInt64(old.Val) + s.Val.(int64)}
		default:
			p.sets[s.Col] = s
		}
	}
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	}
	panic(fmt.Sprintf("projections: cannot add to a %T", v))
}

func (w *Writer) flushGroup(group string) {
	kept := w.order[:0]
	for _, p := range w.order {
		if p.dropped {
			continue
		}
		if p.group == group {
			w.queue(p)
			delete(w.pending, p.id)
			continue
		}
		kept = append(kept, p)
	}
	clear(w.order[len(kept):])
	w.order = kept
}

func (w *Writer) flushRow(p *pendingRow) {
	w.queue(p)
	delete(w.pending, p.id)
	p.dropped = true // queued: skipped by later flushes
}

// Flush queues every pending write. Inserts into one table with the same
// columns and conflict action go as multi-row INSERTs; rows of a batch are
// independent of each other, so their order does not matter.
func (w *Writer) Flush() {
	var groups []*insertGroup
	var after []*pendingRow // a second insert of a conflict key: after the first
	byShape := map[string]*insertGroup{}
	for _, p := range w.order {
		if p.dropped {
			continue
		}
		shape, ok := p.shape()
		if !ok {
			w.queue(p)
			continue
		}
		g := byShape[shape]
		if g == nil {
			g = &insertGroup{seen: map[string]bool{}}
			byShape[shape] = g
			groups = append(groups, g)
		}
		// One statement must not insert a conflict key twice.
		ck := p.conflictKey()
		if g.seen[ck] {
			after = append(after, p)
			continue
		}
		g.seen[ck] = true
		g.rows = append(g.rows, p)
	}
	for _, g := range groups {
		rows := g.rows
		for _, size := range []int{64, 8} {
			for len(rows) >= size {
				w.queueRows(rows[:size])
				rows = rows[size:]
			}
		}
		for _, p := range rows {
			w.queue(p)
		}
	}
	for _, p := range after {
		w.queue(p)
	}
	clear(w.pending)
	w.order = w.order[:0]
}

type insertGroup struct {
	rows []*pendingRow
	seen map[string]bool // conflict keys
}

// conflictKey is the row's values of its conflict target's columns.
func (p *pendingRow) conflictKey() string {
	cols := strings.Split(strings.Trim(p.conflict, "() "), ",")
	vals := make([]any, len(cols))
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
		if j := slices.Index(p.cols, cols[i]); j >= 0 {
			vals[i] = p.vals[j]
		}
	}
	return rowID(p.table, cols, vals)
}

// shape says which inserts can share a multi-row statement: same table,
// columns and conflict action, where the conflict update sets each column
// to the value inserted (EXCLUDED.col). Increments are not shared.
func (p *pendingRow) shape() (string, bool) {
	if !p.insert {
		return "", false
	}
	cols := make([]string, 0, len(p.sets))
	for c, s := range p.sets {
		j := slices.Index(p.cols, c)
		if s.Add || j < 0 || !sameValue(p.vals[j], s.Val) {
			return "", false
		}
		cols = append(cols, c)
	}
	slices.Sort(cols)
	return p.table + "\x00" + strings.Join(p.cols, ",") + "\x00" + p.conflict + "\x00" + strings.Join(cols, ","), true
}

// sameValue compares the values projections set; other types are never
// the same (and such rows go one by one).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int:
		y, ok := b.(int)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case uint64:
		y, ok := b.(uint64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return false
}

// queueRows queues one INSERT of rows of one shape.
func (w *Writer) queueRows(rows []*pendingRow) {
	p := rows[0]
	var sb strings.Builder
	sb.WriteString(`INSERT INTO ` + p.table + ` (` + strings.Join(p.cols, ", ") + `) VALUES `)
	args := make([]any, 0, len(rows)*len(p.cols))
	for r, row := range rows {
		if r > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(")
		for i := range p.cols {
			if i > 0 {
				sb.WriteString(",")
			}
			args = append(args, row.vals[i])
			sb.WriteString("$" + strconv.Itoa(len(args)))
		}
		sb.WriteString(")")
	}
	sb.WriteString(` ON CONFLICT ` + p.conflict)
	if len(p.sets) == 0 {
		sb.WriteString(` DO NOTHING`)
	} else {
		cols := make([]string, 0, len(p.sets))
		for c := range p.sets {
			cols = append(cols, c+"=EXCLUDED."+c)
		}
		slices.Sort(cols)
		sb.WriteString(` DO UPDATE SET ` + strings.Join(cols, ", "))
	}
	w.b.Queue(sb.String(), args...)
}

func (w *Writer) queue(p *pendingRow) {
	if !p.insert {
		if len(p.sets) == 0 {
			return
		}
		sql, args := setClause(`UPDATE `+p.table+` SET `, p.sets, nil)
		sql, args = where(sql, p.keyCols, p.keyVals, args)
		w.b.Queue(sql, args...)
		return
	}
	var sb strings.Builder
	sb.WriteString(`INSERT INTO ` + p.table + ` (` + strings.Join(p.cols, ", ") + `) VALUES (`)
	for i := range p.cols {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("$" + strconv.Itoa(i+1))
	}
	sb.WriteString(`) ON CONFLICT ` + p.conflict)
	args := slices.Clone(p.vals)
	if len(p.sets) == 0 {
		sb.WriteString(` DO NOTHING`)
		w.b.Queue(sb.String(), args...)
		return
	}
	sql, args := setClause(sb.String()+` DO UPDATE SET `, p.sets, args)
	w.b.Queue(sql, args...)
}

// setClause appends "col=$n, col2=col2+$m" in column order (so that the
// statement text, and its prepared statement, repeat).
func setClause(sql string, sets map[string]Set, args []any) (string, []any) {
	cols := make([]string, 0, len(sets))
	for c := range sets {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	var sb strings.Builder
	sb.WriteString(sql)
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		s := sets[c]
		args = append(args, s.Val)
		n := "$" + strconv.Itoa(len(args))
		if s.Add {
			sb.WriteString(c + "=" + c + "+" + n)
		} else {
			sb.WriteString(c + "=" + n)
		}
	}
	return sb.String(), args
}

func where(sql string, keyCols []string, keyVals []any, args []any) (string, []any) {
	var sb strings.Builder
	sb.WriteString(sql + ` WHERE `)
	for i, c := range keyCols {
		if i > 0 {
			sb.WriteString(" AND ")
		}
		args = append(args, keyVals[i])
		sb.WriteString(c + "=$" + strconv.Itoa(len(args)))
	}
	return sb.String(), args
}
