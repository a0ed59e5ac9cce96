package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/keel-cloud/keel/adapters/postgres/pgcluster"
	"github.com/keel-cloud/keel/secrets"
)

const (
	// lockFile is held locked (flock) by the keel serve using the data dir,
	// and names its pid.
	lockFile = "keel.lock"
	// agentCredentialsFile holds the credentials simulated fleets connect
	// to the embedded NATS with (package hostlink).
	agentCredentialsFile = "agent.nk"
	// secretsKeyFile holds the key generated passwords are sealed with.
	secretsKeyFile = "secrets.key"
)

// DataDirInUseError is returned by Start when another process (or another
// Node of this one) holds the data directory.
type DataDirInUseError struct {
	Dir string
	PID int // 0 when the holder's pid could not be read
}

func (e *DataDirInUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("another keel serve is using %s", e.Dir)
	}
	return fmt.Sprintf("another keel serve (pid %d) is using %s", e.PID, e.Dir)
}

// openDataDir creates the data dir, takes its lock and narrows its mode to
// what its owner needs (see dataDirMode).
func (n *Node) openDataDir() error {
	dir := n.Config.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	n.dirLock = lock
	return protectDataDir(dir, n.Config.DatabaseURL == "")
}

// lockDataDir takes the exclusive lock of dir, writes this process's pid in
// it, and returns the open lock file: closing it (or the process dying)
// releases the lock. Locks are per open file, so a second Node of the same
// process is refused too.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := lockHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &DataDirInUseError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return f, nil
}

// writePID replaces the content of the lock file with this process's pid.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Chmod(0o600)
}

// lockHolder returns the pid written in the lock file, or 0.
func lockHolder(f *os.File) int {
	buf := make([]byte, 32)
	k, _ := f.ReadAt(buf, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:k])))
	return pid
}

// protectDataDir makes dir readable by its owner only: mode 0700, or, when
// a private Postgres runs there as another user (keel serve as root), 0710
// with that user's group, which lets it reach its own folder and no more.
func protectDataDir(dir string, privatePostgres bool) error {
	gid, other, err := pgcluster.ServerGroup()
	if !privatePostgres || err != nil || !other {
		return chmod(dir, 0o700) // a missing Postgres is reported when it starts
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return chmod(dir, 0o710)
}

func chmod(dir string, mode os.FileMode) error {
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// unlockDataDir releases the data dir's lock, if this node holds it.
func (n *Node) unlockDataDir() {
	if n.dirLock != nil {
		n.dirLock.Close()
		n.dirLock = nil
	}
}

// AgentCredentials is the file of the simulated fleets' credentials (keel
// agent --driver fake --credentials), or "" when the node uses an external
// NATS.
func (n *Node) AgentCredentials() string {
	if n.Embedded == nil {
		return ""
	}
	return filepath.Join(n.Config.DataDir, agentCredentialsFile)
}

// openSecrets loads the secrets key: the one given, which must exist (the
// replicas of one control plane share it), or the data dir's, created
// (mode 0600) at first start.
func openSecrets(c Config) (*secrets.Box, error) {
	if c.SecretsKey != "" {
		return secrets.LoadFile(c.SecretsKey)
	}
	return secrets.EnsureFile(filepath.Join(c.DataDir, secretsKeyFile))
}
