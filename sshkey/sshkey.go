// Package sshkey reads the OpenSSH public keys users give for their
// servers' first boot: one authorized_keys line of an accepted type, with
// no options, stored normalised with its SHA256 fingerprint (as
// `ssh-keygen -lf` prints it). It never sees or makes a private key.
package sshkey

import (
	"crypto/rsa"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/keel-cloud/keel/domain"
)

// MaxSize bounds a public key as given, in bytes (16 KiB).
const MaxSize = 16 << 10

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Accepted lists the key types taken, in the words of error messages.
const Accepted = "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, or ssh-rsa of at least 2048 bits"

// Key is a parsed public key.
type Key struct {
	Type string // e.g. ssh-ed25519
	// Line is the key as authorized_keys holds it: type, base64, and the
	// comment when there is one.
	Line string
	// Fingerprint is "SHA256:" and the unpadded base64 of the key's hash.
	Fingerprint string
}

// Parse reads one public key line; refusals are domain.Invalid errors
// that say what is wrong with the key.
func Parse(text string) (Key, error) {
	if len(text) > MaxSize {
		return Key{}, domain.Invalidf("public_key is %d bytes long; the limit is %d", len(text), MaxSize)
	}
	line := strings.TrimSpace(text)
	if line == "" {
		return Key{}, domain.Invalidf("public_key must not be empty")
	}
	if err := domain.CheckTextUpTo("public_key", line, MaxSize); err != nil {
		return Key{}, err // control characters, line breaks (one key per keypair), bidi controls
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return Key{}, domain.Invalidf("public_key is not an OpenSSH public key (%s): give the one line of a .pub file", err)
	}
	if len(options) > 0 || len(rest) > 0 {
		return Key{}, domain.Invalidf("public_key must be one key without authorized_keys options")
	}
	if err := checkType(pub); err != nil {
		return Key{}, err
	}
	out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment = strings.TrimSpace(comment); comment != "" {
		out += " " + comment
	}
	return Key{Type: pub.Type(), Line: out, Fingerprint: ssh.FingerprintSHA256(pub)}, nil
}

func checkType(pub ssh.PublicKey) error {
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return nil
	case ssh.KeyAlgoRSA:
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return domain.Invalidf("public_key: cannot read the RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return domain.Invalidf("public_key: cannot read the RSA key")
		}
		if bits := rk.N.BitLen(); bits < MinRSABits {
			return domain.Invalidf("public_key is an RSA key of %d bits; at least %d are needed", bits, MinRSABits)
		}
		return nil
	default:
		return domain.Invalidf("public_key is of type %s; accepted are %s", pub.Type(), Accepted)
	}
}
