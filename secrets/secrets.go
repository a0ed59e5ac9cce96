// Package secrets seals the secrets Keel generates for servers (the admin
// password of first boot) so that the event log holds only ciphertext:
// AES-256-GCM under one key that keel serve keeps outside the log, with the
// server's id as additional data, so a sealed value copied into another
// server's event does not open there.
//
// It knows nothing of servers, events or NATS; it must never log or return
// a plaintext except from Open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of a secrets key: 32 bytes, for AES-256.
const KeySize = 32

// Box seals and opens secrets under one key.
type Box struct {
	aead cipher.AEAD
}

// ErrOpen is what Open returns for a sealed value that does not open: the
// wrong key, the wrong additional data, or a changed ciphertext. GCM cannot
// tell these apart, and neither does this error.
var ErrOpen = errors.New("secret does not open with this key and id (wrong key, wrong id, or tampered)")

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to id (the additional data): a fresh random
// 12-byte nonce, then the ciphertext and its tag.
func (b *Box) Seal(plaintext []byte, id string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, []byte(id)), nil
}

// Open decrypts what Seal returned for the same id; anything else is ErrOpen.
func (b *Box) Open(sealed []byte, id string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// keyHeader starts a key file, so that whoever finds it knows what it is.
const keyHeader = "# Keel secrets key (AES-256, base64). Keep it private: it opens every server's generated password.\n"

// LoadFile reads a key file written by CreateFile: a base64 line of 32
// bytes, after any lines starting with '#'.
func LoadFile(path string) (*Box, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	var text string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			text = line
			break
		}
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("secrets key %s: not base64", path)
	}
	box, err := New(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return box, nil
}

// EnsureFile loads the key at path, creating it (mode 0600, a new random
// key) when it does not exist yet; an existing file is narrowed to 0600.
func EnsureFile(path string) (*Box, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := CreateFile(path); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("protect secrets key: %w", err)
	}
	return LoadFile(path)
}

// CreateFile writes a new random key to path, which must not exist.
func CreateFile(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create secrets key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create secrets key: %w", err)
	}
	_, err = f.WriteString(keyHeader + base64.StdEncoding.EncodeToString(key) + "\n")
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create secrets key: %w", err)
	}
	return nil
}

// passwordAlphabet has no characters that read alike (0/O, 1/l/I) and
// none a shell or a YAML file would treat specially.
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// PasswordLength is the length of a generated password: 20 characters of
// a 57-character alphabet, about 116 bits.
const PasswordLength = 20

// Password returns a new random password of PasswordLength characters.
func Password() (string, error) {
	out := make([]byte, PasswordLength)
	limit := byte(256 - 256%len(passwordAlphabet)) // rejection sampling: no bias
	buf := make([]byte, 1)
	for i := 0; i < len(out); {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		if buf[0] >= limit {
			continue
		}
		out[i] = passwordAlphabet[int(buf[0])%len(passwordAlphabet)]
		i++
	}
	return string(out), nil
}
