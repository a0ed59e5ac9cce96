package jetstream

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// seedHeader opens a seed file, saying what it is for.
const seedHeader = "# NATS user nkey seed of Keel's agents: keel agent --credentials THIS_FILE. Keep it secret.\n"

// EnsureUserSeed returns the public key of the NATS user whose nkey seed is
// kept in the file at path, creating a new user first when there is no such
// file. The file is made readable by its owner only; it is the credential an
// agent passes to CredentialsOption.
func EnsureUserSeed(path string) (string, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createUserSeed(path)
	}
	if err != nil {
		return "", fmt.Errorf("read nats credentials: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return "", fmt.Errorf("protect nats credentials: %w", err)
	}
	return publicKey(path, seed)
}

// createUserSeed writes a new user seed to path (which must not exist).
func createUserSeed(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("create nats credentials: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("create nats credentials: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create nats credentials: %w", err)
	}
	_, err = f.Write(append([]byte(seedHeader), append(seed, '\n')...))
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create nats credentials: %w", err)
	}
	return kp.PublicKey()
}

// publicKey returns the public key of the user seed read from path.
func publicKey(path string, seed []byte) (string, error) {
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", fmt.Errorf("nats credentials %s: %w", path, err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nats credentials %s: not a user nkey seed", path)
	}
	return pub, nil
}

// CredentialsOption returns the connect option that authenticates as the user
// whose nkey seed is in the file at path (see EnsureUserSeed).
func CredentialsOption(path string) (nats.Option, error) {
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("nats credentials %s: %w", path, err)
	}
	return opt, nil
}

// privateDir creates dir, or narrows an existing one, to mode 0700.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
