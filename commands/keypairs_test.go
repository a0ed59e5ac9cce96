package commands_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/secrets"
)

const aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0r2iHJKGMaAUABUbV1qDof3YMRyKZr3YlLWDJEH980 alice@laptop"

// bootWorld is an App with a names bucket, a secrets key, a flavor and an
// active image: enough to create servers.
func bootWorld(t *testing.T) (*commands.App, *keeljs.Store, commands.CreateServerRequest) {
	t.Helper()
	s := openStore(t)
	ctx := ctxT(t)
	a := newApp(t, s, s, &atomic.Int64{})
	box, err := secrets.EnsureFile(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	a.Secrets = box
	fl, err := a.CreateFlavor(ctx, small, meta("flavor"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := a.CreateImage(ctx, image.Spec{Name: "debian", DiskFormat: "qcow2"}, meta("image"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, meta("upload")); err != nil {
		t.Fatal(err)
	}
	return a, s, commands.CreateServerRequest{Name: "web-1", FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}
}

func TestKeypairNamesAreUniqueAndKeysNormalised(t *testing.T) {
	a, _, _ := bootWorld(t)
	ctx := ctxT(t)
	kp, err := a.CreateKeypair(ctx, "alice", "  "+aliceKey+"\n", meta("kp-1"))
	if err != nil {
		t.Fatal(err)
	}
	if kp.State.Spec.PublicKey != aliceKey || kp.State.Spec.Fingerprint != "SHA256:Ktbt0mXjPtWXuT0sBf0jWLpmFDycXf60j3y3hq+qusM" {
		t.Fatalf("stored %+v", kp.State.Spec)
	}
	if _, err := a.CreateKeypair(ctx, "alice", aliceKey, meta("kp-2")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("a second keypair named alice: %v; want a conflict", err)
	}
	if _, err := a.DeleteKeypair(ctx, string(kp.State.ID), meta("kp-1-delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateKeypair(ctx, "alice", aliceKey, meta("kp-3")); err != nil {
		t.Fatalf("the name of a deleted keypair is free again: %v", err)
	}
}

// A server gets a copy of its keypair's key and a sealed password that
// only its own id opens; the log holds no plaintext password, and deleting
// the keypair changes nothing of the server.
func TestServerFirstBootCredentials(t *testing.T) {
	a, s, req := bootWorld(t)
	ctx := ctxT(t)
	kp, err := a.CreateKeypair(ctx, "alice", aliceKey, meta("kp"))
	if err != nil {
		t.Fatal(err)
	}
	req.KeypairID = string(kp.State.ID)
	res, _, err := a.CreateServer(ctx, req, meta("create"))
	if err != nil {
		t.Fatal(err)
	}
	id := string(res.State.ID)
	user, pw, err := a.LoginInfo(ctx, id, "")
	if err != nil || user != "keel" || len(pw) != secrets.PasswordLength {
		t.Fatalf("login info: %q %q %v", user, pw, err)
	}
	if _, err := a.DeleteKeypair(ctx, string(kp.State.ID), meta("kp-delete")); err != nil {
		t.Fatal(err)
	}
	st, _, err := commands.NewApp(s).Servers.Load(ctx, id) // cold: from the log
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyName != "alice" || st.PublicKey != aliceKey {
		t.Fatalf("after the keypair's delete the server has key %q %q", st.KeyName, st.PublicKey)
	}
	if _, err := a.Secrets.Open(st.AdminPasswordSealed, "another-server"); err == nil {
		t.Fatal("the sealed password opens under another server's id")
	}
	for seq := uint64(1); seq <= head(t, s); seq++ {
		msg, err := s.Stream().GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(msg.Data, []byte(pw)) {
			t.Fatalf("commit %d (%s) holds the password in clear: %s", seq, msg.Subject, msg.Data)
		}
	}
	if _, _, err := a.LoginInfo(ctx, "no-such-server", ""); domain.KindOf(err) != domain.NotFound {
		t.Fatalf("login info of an unknown server: %v", err)
	}
}

func TestUnknownOrDeletedKeypairRefusesTheServer(t *testing.T) {
	a, s, req := bootWorld(t)
	ctx := ctxT(t)
	kp, err := a.CreateKeypair(ctx, "alice", aliceKey, meta("kp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteKeypair(ctx, string(kp.State.ID), meta("kp-delete")); err != nil {
		t.Fatal(err)
	}
	before := head(t, s)
	for _, ref := range []string{string(kp.State.ID), commands.DeriveID("nothing")} {
		req.KeypairID = ref
		_, _, err := a.CreateServer(ctx, req, meta("create-"+ref))
		if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), "keypair") {
			t.Errorf("server with keypair %s: %v; want invalid", ref, err)
		}
	}
	if h := head(t, s); h != before {
		t.Fatalf("refused creates wrote %d commits", h-before)
	}
}

// Servers created without a secrets key (or before passwords) have none:
// login info says so with a conflict rather than an empty password.
func TestServerWithoutPasswordHasNoLoginInfo(t *testing.T) {
	a, _, req := bootWorld(t)
	ctx := ctxT(t)
	a.Secrets = nil
	res, _, err := a.CreateServer(ctx, req, meta("create"))
	if err != nil {
		t.Fatal(err)
	}
	if res.State.AdminPasswordSealed != nil {
		t.Fatal("a password was sealed without a key")
	}
	_, _, err = a.LoginInfo(ctx, string(res.State.ID), "")
	if domain.KindOf(err) != domain.Conflict {
		t.Fatalf("login info: %v; want a conflict", err)
	}
}
