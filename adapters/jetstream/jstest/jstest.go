// Package jstest gives tests a private embedded NATS JetStream server and
// Keel's event store on it, as pgtest gives them a PostgreSQL database:
// each in a temporary directory of the test's own, with the settings of
// keel serve (SyncAlways, file storage), closed when the test ends.
//
// It is for tests only.
package jstest

import (
	"context"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// Server starts an embedded NATS server storing its files in dir (a fresh
// temporary directory when dir is "") and closes it when t ends. Closing it
// earlier, to restart on the same dir, is harmless.
func Server(t testing.TB, dir string) *keeljs.Embedded {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: dir, SyncAlways: true})
	if err != nil {
		t.Fatalf("jstest: start embedded nats: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// Store starts a fresh server and opens the event store on it, with
// JetStream's duplicate window set to dupWindow (0: the store's default).
func Store(t testing.TB, dupWindow time.Duration) (*keeljs.Embedded, *keeljs.Store) {
	t.Helper()
	e := Server(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := keeljs.Open(ctx, e.Conn, 1, dupWindow)
	if err != nil {
		t.Fatalf("jstest: open store: %v", err)
	}
	return e, s
}
