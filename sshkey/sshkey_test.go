package sshkey_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/sshkey"
)

// Made with ssh-keygen (OpenSSH 9.2); the fingerprint is what
// `ssh-keygen -lf` printed for it.
const (
	ed25519Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0r2iHJKGMaAUABUbV1qDof3YMRyKZr3YlLWDJEH980 alice@laptop"
	ed25519FP  = "SHA256:Ktbt0mXjPtWXuT0sBf0jWLpmFDycXf60j3y3hq+qusM"
	rsa1024Key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9jeECVHKa3Ponxyf+UDL9E11JMu+7+ZrEV2fKJj5hNAWAIaeKLzOkqe/7CYcIiGxd/IeyRmNyjd30Crg95y9RoRS/SrLA2Toe0ALzMKgaiEUYortQyUcu81hwEG8q8V7GLaYGLBEiaEN3E0uAQgLQGTHFxJY8YZR+pIIlca7jLQ== root@vm"
	dsaKey     = "ssh-dss AAAAB3NzaC1kc3MAAACBANs2dlFkJQjNjA8oHr7s0a/5Q4FdaKosPMSsf2zge52Qd+Zy6wk6v5X4QVk6Jf/KCwXD9oYuW7eGZO6fX8aO1mbOIOyvP8axLCOHSBkL03enaodYtRcKQUKGCieZE0fbJKfvh3BifklAtiXrq/3MG/qlKLfUYSHEhh7RJ065eUjpAAAAFQDdPyo5d7scE929prcg+L8vPpCPqQAAAIEA1ynrN6LsAeFbj83w1D+YxYRUIzgjRlq65i3DdqjILXkk24yiuCm3Ee9Qz/upz2UoVBZrbsljuXm94RI/TuGQAaqW+//cE0DL2s0Xsqn6wiuMPyY6pveqbkoxqcnDYFkXCRm2Z3mIUmYWRnG3jVjNnfoaO6rwKu+oH3skaSH77eQAAACBAJBYNW3EpoqyjSWyqi45tYBU+NjYMYuQ9dqFZpzS5CHFmDZqaBofaRHmWNaKIVOVt6aeVi1aNBuI27NtQwFgwB80SHFfRvsQAgv4sKWf11deC/vGR/Gwpk5hJhWWC93mJy9fb+R99batcQteER1hLHprT1gtk3wZJSaoqlUe0kWM root@vm"
)

func authorized(t *testing.T, key any) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func TestAcceptedKeysAreNormalisedWithTheirFingerprint(t *testing.T) {
	k, err := sshkey.Parse("  " + strings.Replace(ed25519Key, " alice", "   alice", 1) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if k.Line != ed25519Key || k.Fingerprint != ed25519FP || k.Type != "ssh-ed25519" {
		t.Fatalf("got %+v; want the line as ssh-keygen wrote it and fingerprint %s", k, ed25519FP)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		ek, _ := ecdsa.GenerateKey(curve, rand.Reader)
		if _, err := sshkey.Parse(authorized(t, &ek.PublicKey)); err != nil {
			t.Errorf("ECDSA %s: %v", curve.Params().Name, err)
		}
	}
	if k, err := sshkey.Parse(authorized(t, &rk.PublicKey)); err != nil || k.Type != "ssh-rsa" {
		t.Errorf("RSA 2048: %+v, %v", k, err)
	}
}

func TestRefusedKeysSayWhy(t *testing.T) {
	for _, c := range []struct{ name, key, msg string }{
		{"empty", " \n", "must not be empty"},
		{"DSA", dsaKey, "type ssh-dss; accepted are"},
		{"RSA 1024", rsa1024Key, "RSA key of 1024 bits; at least 2048"},
		{"not a key", "hello world", "not an OpenSSH public key"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----", "not an OpenSSH public key"},
		{"two keys", ed25519Key + "\n" + ed25519Key, "control characters"},
		{"escape in comment", ed25519Key + "\x1b[2J", "control characters"},
		{"override in comment", ed25519Key + "\u202e", "bidirectional"},
		{"options", `command="/bin/sh" ` + ed25519Key, "without authorized_keys options"},
		{"over 16 KiB", ed25519Key + " " + strings.Repeat("x", sshkey.MaxSize), "the limit is 16384"},
	} {
		_, err := sshkey.Parse(c.key)
		if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want an invalid error containing %q", c.name, err, c.msg)
		}
	}
}
