package secrets_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/secrets"
)

func box(t *testing.T) *secrets.Box {
	t.Helper()
	b, err := secrets.EnsureFile(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealedPasswordOpensOnlyWithTheKeyAndTheServerID(t *testing.T) {
	b, other := box(t), box(t)
	sealed, err := b.Seal([]byte("hunter2-but-longer"), "server-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	got, err := b.Open(sealed, "server-1")
	if err != nil || string(got) != "hunter2-but-longer" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)/2] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"wrong key":           func() ([]byte, error) { return other.Open(sealed, "server-1") },
		"another server's id": func() ([]byte, error) { return b.Open(sealed, "server-2") },
		"tampered ciphertext": func() ([]byte, error) { return b.Open(tampered, "server-1") },
		"truncated":           func() ([]byte, error) { return b.Open(sealed[:10], "server-1") },
	} {
		if p, err := open(); !errors.Is(err, secrets.ErrOpen) || p != nil {
			t.Errorf("%s: %q, %v; want nothing and ErrOpen", name, p, err)
		}
	}
}

func TestSealingTwiceGivesDifferentCiphertexts(t *testing.T) {
	b := box(t)
	x, _ := b.Seal([]byte("same"), "s")
	y, _ := b.Seal([]byte("same"), "s")
	if bytes.Equal(x, y) {
		t.Fatal("two seals of one password are equal: the nonce is not fresh")
	}
}

func TestKeyFileIsCreatedPrivateOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	b1, err := secrets.EnsureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	sealed, _ := b1.Seal([]byte("pw"), "s")
	os.Chmod(path, 0o644)
	b2, err := secrets.EnsureFile(path) // a restart reads the same key
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b2.Open(sealed, "s"); err != nil || string(p) != "pw" {
		t.Fatalf("after a restart the key changed: %q, %v", p, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("an existing key file was left at %v", fi.Mode().Perm())
	}
}

func TestBadKeyFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"short": "c2hvcnQ=\n", "not base64": "!!!\n", "empty": ""} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := secrets.LoadFile(p); err == nil {
			t.Errorf("%s key file accepted", name)
		}
	}
	if _, err := secrets.LoadFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file (given by the operator) is not created by LoadFile")
	}
}

func TestPasswordsAreLongUnambiguousAndDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p, err := secrets.Password()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != secrets.PasswordLength || strings.ContainsAny(p, "0O1lI \"'$\\:#") {
			t.Fatalf("password %q: want %d characters without look-alikes or specials", p, secrets.PasswordLength)
		}
		if seen[p] {
			t.Fatalf("password %q generated twice", p)
		}
		seen[p] = true
	}
}
