package pgcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

const (
	// passwordFile holds the postgres superuser's password (mode 0600).
	passwordFile = "keel-password"
	// hbaFile is the server's client authentication file.
	hbaFile = "pg_hba.conf"
)

// hbaConfig admits only clients that know the password: Keel. Other local
// users reach the TCP port but not the password; the socket directory (the
// data directory) is private to the server's user anyway.
const hbaConfig = `# Written by Keel (pgcluster): every connection needs the password kept in
# keel-password next to this file. Changes here are overwritten on start.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
`

// newPassword returns a random password of hex digits, which need no quoting.
func newPassword() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// readPassword returns the password kept in dir, or "" when there is none.
func readPassword(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, passwordFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read postgres password: %w", err)
	}
	return firstLine(data), nil
}

// ensurePassword returns the password kept in dir, creating one first when
// there is none (a cluster from before passwords, about to be migrated). It
// makes the file readable by its owner only.
func (b *binaries) ensurePassword(dir string) (string, error) {
	password, err := readPassword(dir)
	if err != nil {
		return "", err
	}
	if password == "" && hbaCurrent(dir) {
		return "", fmt.Errorf("postgres in %s requires a password but %s is missing", dir, passwordFile)
	}
	if password == "" {
		password = newPassword()
		return password, b.writePrivate(filepath.Join(dir, passwordFile), password+"\n")
	}
	if err := os.Chmod(filepath.Join(dir, passwordFile), 0o600); err != nil {
		return "", fmt.Errorf("protect postgres password: %w", err)
	}
	return password, nil
}

// writePrivate writes data to path with mode 0600, owned by the server's user,
// replacing the file in one rename.
func (b *binaries) writePrivate(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps the mode of a leftover
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := b.chown(tmp); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// initPasswordFile writes password to a temporary file the server's user can
// read, for initdb --pwfile, and returns its path and a function removing it.
func (b *binaries) initPasswordFile(password string) (string, func(), error) {
	f, err := os.CreateTemp("", "keel-pwfile-")
	if err != nil {
		return "", nil, fmt.Errorf("write initdb password file: %w", err)
	}
	remove := func() { os.Remove(f.Name()) }
	_, err = f.WriteString(password + "\n")
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = b.chown(f.Name())
	}
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("write initdb password file: %w", err)
	}
	return f.Name(), remove, nil
}

// hbaCurrent reports whether dir's pg_hba.conf is the one Keel writes.
func hbaCurrent(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, hbaFile))
	return err == nil && string(data) == hbaConfig
}

// requirePassword makes the running server at adminURL (whose URL carries
// password) require it: it sets the superuser's password, which a cluster of
// the time before passwords lacks, while its trust rule still lets Keel in,
// then rewrites pg_hba.conf and reloads the server. It does nothing when
// pg_hba.conf is Keel's already.
func (b *binaries) requirePassword(ctx context.Context, dir, adminURL, password string, logf func(string, ...any)) error {
	if hbaCurrent(dir) {
		return nil
	}
	logf("pgcluster: %s trusted local users; setting a password (kept in %s) and requiring it", dir, passwordFile)
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("require a password: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	literal := "'" + strings.ReplaceAll(password, "'", "''") + "'"
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("require a password: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE postgres PASSWORD "+literal); err != nil {
		return fmt.Errorf("require a password: set it: %w", err)
	}
	if err := b.writePrivate(filepath.Join(dir, hbaFile), hbaConfig); err != nil {
		return fmt.Errorf("require a password: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("require a password: reload: %w", err)
	}
	return nil
}
