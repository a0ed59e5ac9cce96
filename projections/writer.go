package projections

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

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
		fmt.Fprint(&sb, keyVals[i])
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

// Flush queues every pending write, in the order the rows were first
// written.
func (w *Writer) Flush() {
	for _, p := range w.order {
		if !p.dropped {
			w.queue(p)
		}
	}
	clear(w.pending)
	w.order = w.order[:0]
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
