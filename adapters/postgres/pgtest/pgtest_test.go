package pgtest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

func TestNewDatabaseIsUsable(t *testing.T) {
	conn := connect(t, NewDatabase(t))
	ctx := t.Context()
	if _, err := conn.Exec(ctx, "CREATE TABLE note (body text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO note VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := conn.QueryRow(ctx, "SELECT body FROM note").Scan(&body); err != nil || body != "hello" {
		t.Fatalf("select = %q, %v; want hello", body, err)
	}
}

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c", "d"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				u := NewDatabase(t)
				conn := connect(t, u) // left open: the drop must force it closed
				var tables int
				err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
				if err != nil || tables != 0 {
					t.Errorf("fresh database has %d tables (err %v)", tables, err)
				}
				name := currentDatabase(t, conn)
				if !strings.Contains(u, "/"+name+"?") {
					t.Errorf("URL %q does not name database %s", u, name)
				}
				mu.Lock()
				defer mu.Unlock()
				if names[name] {
					t.Errorf("database name %s reused", name)
				}
				names[name] = true
			})
		}
	})
	if len(names) != 4 {
		t.Fatalf("got %d distinct databases, want 4", len(names))
	}
	admin := connect(t, shared.admin)
	for name := range names {
		var exists bool
		err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
		if err != nil || exists {
			t.Errorf("database %s still exists after its test (err %v)", name, err)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	long := "TestSomething/with spaces & ÜNICODE/" + strings.Repeat("x", 100)
	a, b := databaseName(long), databaseName(long)
	if a == b {
		t.Errorf("databaseName is not unique: %s", a)
	}
	if len(a) > 63 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("databaseName(%q) = %q: too long or unsafe", long, a)
	}
	if !strings.HasPrefix(a, "test_testsomething_with_spaces_") {
		t.Errorf("databaseName(%q) = %q: unreadable prefix", long, a)
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@db.example:5433/keel?sslmode=disable", "test_x")
	if want := "postgres://u:p@db.example:5433/test_x?sslmode=disable"; err != nil || got != want {
		t.Errorf("withDatabase = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"host=localhost dbname=keel", "mysql://x/y", ":"} {
		if checkURL(bad) == nil {
			t.Errorf("checkURL(%q) accepted a non-postgres URL", bad)
		}
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func currentDatabase(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var name string
	if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
