package jetstream_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// TestEmbeddedRefusesStrangers: a listening embedded server takes only the
// users its authenticator admits, and keeps its store private.
func TestEmbeddedRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	access := hostlink.NewAccess()
	access.AdmitFull(pub)
	store := filepath.Join(dir, "jetstream")
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: store, Listen: "127.0.0.1:-1", Auth: access})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := keeljs.Open(ctxT(t), e.Conn, 1, time.Minute); err != nil {
		t.Fatalf("the server's own client opens the store: %v", err)
	}
	if fi, err := os.Stat(store); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store dir: %v %v, want mode 0700", fi, err)
	}
	if nc, err := nats.Connect(e.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("connect without credentials: err = %v, want %v", err, nats.ErrAuthorization)
	}
	stranger, _ := nkeys.CreateUser()
	spub, _ := stranger.PublicKey()
	if nc, err := nats.Connect(e.ClientURL(), nats.Nkey(spub, stranger.Sign)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("connect with an unknown key: err = %v, want %v", err, nats.ErrAuthorization)
	}
	// A known key whose signature is another key's is refused too.
	if nc, err := nats.Connect(e.ClientURL(), nats.Nkey(pub, stranger.Sign)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("connect with a known key signed by another: err = %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err := nats.Connect(e.ClientURL(), nats.Nkey(pub, user.Sign))
	if err != nil {
		t.Fatalf("connect with an admitted key: %v", err)
	}
	defer nc.Close()
	if _, err := keeljs.Attach(ctxT(t), nc); err != nil {
		t.Fatalf("an admitted full user reaches JetStream: %v", err)
	}
}
