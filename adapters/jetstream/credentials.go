package jetstream

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// CredentialsOption returns the connect option that authenticates as the user
// whose nkey seed is in the file at path (an external NATS's user).
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
