package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pidFile is the lock file a running postmaster keeps in its data directory.
const pidFile = "postmaster.pid"

// removeStaleLocks removes the lock files in dir (postmaster.pid and the
// Unix socket's .s.PGSQL.PORT.lock) whose process is no longer a live
// postmaster of dir: gone, a zombie nobody reaps, or a reused PID. PostgreSQL
// and pg_ctl take a zombie or reused PID for a running server and would
// refuse to start.
func removeStaleLocks(dir string, logf func(string, ...any)) error {
	sockets, err := filepath.Glob(filepath.Join(dir, ".s.PGSQL.*.lock"))
	if err != nil {
		return fmt.Errorf("find socket locks: %w", err)
	}
	for _, path := range append(sockets, filepath.Join(dir, pidFile)) {
		if err := removeStaleLock(path, dir, logf); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleLock removes the lock file at path unless the PID on its first
// line is a live postmaster of dir.
func removeStaleLock(path, dir string, logf func(string, ...any)) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read lock file: %w", err)
	}
	pid, err := strconv.Atoi(firstLine(data))
	if err == nil && postmasterAlive(pid, dir) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale lock file: %w", err)
	}
	logf("pgcluster: removed stale %s (PID %d is no running postmaster)", path, pid)
	return nil
}

// postmasterAlive reports whether pid is a live postgres process whose
// working directory is dir. Where /proc cannot tell, it trusts kill(pid, 0).
func postmasterAlive(pid int, dir string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "PID (COMM) STATE ...": COMM may itself hold parentheses.
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return true
	}
	comm, rest := s[open+1:end], strings.Fields(s[end+1:])
	if len(rest) > 0 && (rest[0] == "Z" || rest[0] == "X") {
		return false
	}
	if comm != "postgres" && comm != "postmaster" {
		return false
	}
	return sameDir(fmt.Sprintf("/proc/%d/cwd", pid), dir)
}

// sameDir reports whether the symlink link points at dir, or true when the
// link cannot be read.
func sameDir(link, dir string) bool {
	target, err := os.Readlink(link)
	if err != nil {
		return true
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return target == dir
}

// pidFilePort returns the port recorded in dir/postmaster.pid (line 4).
func pidFilePort(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", pidFile, err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("read %s: no port line", pidFile)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("read %s: port: %w", pidFile, err)
	}
	return port, nil
}
