package pgcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serverPackage is the Debian package that ships the server binaries.
const serverPackage = "postgresql"

// libGlob matches the per-version server directories of Debian and Ubuntu.
const libGlob = "/usr/lib/postgresql/*/bin"

// serverTools are the binaries a cluster needs, all from one directory.
var serverTools = []string{"initdb", "pg_ctl", "postgres"}

// binaries runs the server tools of one installation.
type binaries struct {
	dir string
	// runuser is set when running as root: the tools then run as the
	// postgres user, whose ids are uid and gid.
	runuser  string
	uid, gid int
}

// Available returns nil when the PostgreSQL server binaries (and, when
// running as root, runuser and the postgres user) are present, else an error
// naming what is missing.
func Available() error {
	_, err := findBinaries("")
	return err
}

// ServerGroup returns the group of the user the server runs as, when that is
// not the calling user (as root: postgres), so that the caller can let that
// group through the directories above a cluster's; ok is false when the
// server runs as the calling user.
func ServerGroup() (gid int, ok bool, err error) {
	b, err := rootAccount()
	if err != nil {
		return 0, false, err
	}
	return b.gid, b.runuser != "", nil
}

// findBinaries looks for a directory holding all server tools, first through
// PATH and then in libGlob, highest version first. When major is not empty,
// only binaries of that major version qualify.
func findBinaries(major string) (*binaries, error) {
	bin, err := rootAccount()
	if err != nil {
		return nil, err
	}
	for _, dir := range candidateDirs() {
		if hasTools(dir) && (major == "" || serverMajor(dir) == major) {
			bin.dir = dir
			return bin, nil
		}
	}
	if major != "" {
		return nil, fmt.Errorf("postgres %s server binaries (%s) not found in PATH or %s: install the Debian package %s-%s",
			major, strings.Join(serverTools, ", "), libGlob, serverPackage, major)
	}
	return nil, fmt.Errorf("postgres server binaries (%s) not found in PATH or %s: install the Debian package %s (scripts/install-deps.sh does it)",
		strings.Join(serverTools, ", "), libGlob, serverPackage)
}

// rootAccount returns binaries that run tools as the postgres user when the
// process is root, and as the current user otherwise.
func rootAccount() (*binaries, error) {
	if os.Geteuid() != 0 {
		return &binaries{uid: -1, gid: -1}, nil
	}
	runuser, err := lookPath("runuser", "/usr/sbin", "/sbin")
	if err != nil {
		return nil, fmt.Errorf("running as root needs runuser (Debian package util-linux) to start postgres as the postgres user: %w", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user (created by the Debian package %s): %w", serverPackage, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &binaries{runuser: runuser, uid: uid, gid: gid}, nil
}

// lookPath finds name in PATH, then in dirs, which PATH may lack.
func lookPath(name string, dirs ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range dirs {
		if p, dirErr := exec.LookPath(filepath.Join(dir, name)); dirErr == nil {
			return p, nil
		}
	}
	return "", err
}

// candidateDirs lists the directories of the server tools found in PATH
// (symlinks resolved), then libGlob's directories, highest version first.
func candidateDirs() []string {
	var dirs []string
	for _, name := range serverTools {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versioned, _ := filepath.Glob(libGlob)
	slices.SortFunc(versioned, func(a, b string) int {
		return cmp.Compare(dirVersion(b), dirVersion(a))
	})
	var unique []string
	for _, dir := range append(dirs, versioned...) {
		if !slices.Contains(unique, dir) {
			unique = append(unique, dir)
		}
	}
	return unique
}

// dirVersion parses the version in /usr/lib/postgresql/VERSION/bin.
func dirVersion(dir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	return v
}

func hasTools(dir string) bool {
	for _, name := range serverTools {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// serverMajor returns the major version of dir/postgres as PG_VERSION spells
// it ("15"), or "" when it cannot be told.
func serverMajor(dir string) string {
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return ""
	}
	// "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return ""
	}
	parts := strings.Split(fields[2], ".")
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// command prepares tool with args, run as the postgres user when root, with
// dir as working directory.
func (b *binaries) command(ctx context.Context, dir, tool string, args ...string) *exec.Cmd {
	path := filepath.Join(b.dir, tool)
	if b.runuser != "" {
		args = append([]string{"-u", "postgres", "--", path}, args...)
		path = b.runuser
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs tool and returns its output in the error when it fails.
func (b *binaries) run(ctx context.Context, dir, tool string, args ...string) error {
	out, err := b.command(ctx, dir, tool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeDataDir creates dir for initdb, owned by the user the server runs as,
// and checks that this user can reach it.
func (b *binaries) makeDataDir(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create postgres data directory: %w", err)
	}
	if b.runuser == "" {
		return nil
	}
	if err := os.Chown(dir, b.uid, b.gid); err != nil {
		return fmt.Errorf("create postgres data directory: %w", err)
	}
	check := exec.CommandContext(ctx, b.runuser, "-u", "postgres", "--", "test", "-w", dir, "-a", "-x", dir)
	if err := check.Run(); err != nil {
		return fmt.Errorf("user postgres cannot reach %s (make its parent directories traversable, e.g. chmod o+x): %w", dir, err)
	}
	return nil
}

// chown gives path to the user the server runs as, when that is not us.
func (b *binaries) chown(path string) error {
	if b.runuser == "" {
		return nil
	}
	return os.Chown(path, b.uid, b.gid)
}

// runningPort reports whether pg_ctl status finds the server in dir running,
// and its port.
func (b *binaries) runningPort(ctx context.Context, dir string) (int, bool, error) {
	err := b.command(ctx, dir, "pg_ctl", "status", "-D", dir).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("check postgres in %s: %w", dir, err)
	}
	port, err := pidFilePort(dir)
	if err != nil {
		return 0, false, fmt.Errorf("check postgres in %s: %w", dir, err)
	}
	return port, true, nil
}
