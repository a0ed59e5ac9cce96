package jetstream_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// TestEmbeddedRefusesStrangers: a listening embedded server takes only the
// users it was given; their seed file is private to its owner.
func TestEmbeddedRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "agent.nk")
	pub, err := keeljs.EnsureUserSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := keeljs.EnsureUserSeed(seed); err != nil || again != pub {
		t.Fatalf("EnsureUserSeed again = %q, %v; want the same key %q", again, err, pub)
	}
	if fi, err := os.Stat(seed); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v, want mode 0600", fi, err)
	}
	store := filepath.Join(dir, "jetstream")
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: store, Listen: "127.0.0.1:-1", Users: []string{pub}})
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
	opt, err := keeljs.CredentialsOption(seed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.ClientURL(), opt)
	if err != nil {
		t.Fatalf("connect with the agent's credentials: %v", err)
	}
	defer nc.Close()
	if _, err := keeljs.Attach(ctxT(t), nc); err != nil {
		t.Fatalf("the agent's credentials reach JetStream: %v", err)
	}
}
