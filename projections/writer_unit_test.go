package projections

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Inserts of one shape share multi-row statements of 64 and 8 rows; the
// rest go one by one, and an update after a pending insert joins it.
func TestWriterSharesInsertsOfOneShape(t *testing.T) {
	b := &pgx.Batch{}
	w := NewWriter(b)
	cols := []string{"id", "name"}
	for i := range 75 {
		id := string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		w.Insert(id, "t", "(id)", []string{"id"}, cols, []any{id, "first"})
		w.Update(id, "t", []string{"id"}, []any{id}, To("name", "m"))
	}
	w.Flush()
	var rows []int
	for _, q := range b.QueuedQueries {
		n := strings.Count(q.SQL, "($")
		if n > 1 && !strings.Contains(q.SQL, "DO UPDATE SET name=EXCLUDED.name") ||
			n == 1 && !strings.Contains(q.SQL, "DO UPDATE SET name=$3") {
			t.Fatalf("statement %q does not apply the update on conflict", q.SQL)
		}
		rows = append(rows, n)
		for _, a := range q.Arguments {
			if a == "first" {
				t.Fatalf("a row is inserted with its first name, not the updated one: %q %v", q.SQL, q.Arguments)
			}
		}
	}
	want := []int{64, 8, 1, 1, 1}
	if len(rows) != len(want) {
		t.Fatalf("statements of %v rows; want %v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Fatalf("statements of %v rows; want %v", rows, want)
		}
	}
}

// Two inserts of one conflict key never share a statement (Postgres
// refuses to update a row twice in one), and the second goes after.
func TestWriterKeepsASecondInsertOfAConflictKeyApart(t *testing.T) {
	b := &pgx.Batch{}
	w := NewWriter(b)
	cols := []string{"operation_id", "idx", "name"}
	key := []string{"operation_id", "name"}
	for i := range 7 {
		w.Insert("op", "s", "(operation_id, idx)", key, cols, []any{"op", i, "step" + string(rune('0'+i))}, To("name", "step"+string(rune('0'+i))))
	}
	w.Insert("op", "s", "(operation_id, idx)", key, cols, []any{"op", 0, "again"}, To("name", "again"))
	w.Flush()
	// Eight rows of one shape would make one statement, were it not for
	// the repeated key.
	for _, q := range b.QueuedQueries {
		seen := map[any]bool{}
		for i := 1; i < len(q.Arguments); i += 3 {
			if seen[q.Arguments[i]] {
				t.Fatalf("one statement inserts idx %v twice: %q", q.Arguments[i], q.SQL)
			}
			seen[q.Arguments[i]] = true
		}
	}
	last := b.QueuedQueries[len(b.QueuedQueries)-1]
	if strings.Count(last.SQL, "($") != 1 || last.Arguments[2] != "again" {
		t.Fatalf("last statement %q %v; want the second insert of idx 0", last.SQL, last.Arguments)
	}
}
