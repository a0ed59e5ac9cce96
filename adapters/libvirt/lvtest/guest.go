package lvtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The lines the test guest prints on its serial console (ttyS0), in order:
//
//	KEEL-GUEST booted
//	KEEL-GUEST seed: /dev/sr0          (or "none")
//	KEEL-GUEST meta-data:
//	<meta-data>
//	KEEL-GUEST meta-data-end
//	KEEL-GUEST user-data-begin
//	<user-data>
//	KEEL-GUEST user-data-end
//	KEEL-GUEST ready
//
// Then it stays up, silent, unless the user-data holds the line
// PoweroffLine: then it prints "KEEL-GUEST poweroff" and powers off. An
// ACPI power button press (DomainShutdown) makes it print
// "KEEL-GUEST acpi-poweroff" and power off. With a network interface it runs
// one DHCP round and prints "KEEL-GUEST ip: eth0 ADDR/PREFIX".
const (
	UserDataBegin = "KEEL-GUEST user-data-begin"
	UserDataEnd   = "KEEL-GUEST user-data-end"
	// PoweroffLine in the user-data makes the guest power off after
	// printing its seed instead of staying up.
	PoweroffLine = "keel-test: poweroff"
)

// Image file names in the guest cache directory.
const (
	guestQCOW2 = "keel-test-guest.qcow2"
	guestRaw   = "keel-test-guest.raw"
)

// guest is the image built by this process, once.
var guest struct {
	mu  sync.Mutex
	dir string
}

// GuestImage returns the path of the test guest's qcow2 disk, building it
// with scripts/test-guest.sh on first use into $KEEL_TOOLS_DIR/guest
// (default .tools/guest in the repository), where it stays for later runs.
// The raw image is its sibling (GuestImageRaw). Use it as a backing file;
// never write to it. A failed build skips t when not root and fails it as
// root.
func GuestImage(t testing.TB) string {
	t.Helper()
	return filepath.Join(guestDir(t), guestQCOW2)
}

// GuestImageRaw is GuestImage's raw (64 MiB) twin.
func GuestImageRaw(t testing.TB) string {
	t.Helper()
	return filepath.Join(guestDir(t), guestRaw)
}

func guestDir(t testing.TB) string {
	t.Helper()
	dir, err := buildGuestDir()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("lvtest: cannot build the test guest (scripts/install-deps.sh as root installs its tools): %v", err)
		}
		t.Fatalf("lvtest: build the test guest: %v", err)
	}
	return dir
}

// BuildGuestImage is GuestImage for programs that are not tests
// (keelbench): it returns the qcow2 path or the build's error.
func BuildGuestImage() (string, error) {
	dir, err := buildGuestDir()
	if err != nil {
		return "", fmt.Errorf("lvtest: build the test guest: %w", err)
	}
	return filepath.Join(dir, guestQCOW2), nil
}

// buildGuestDir builds the guest into its cache directory once per process
// and returns that directory.
func buildGuestDir() (string, error) {
	guest.mu.Lock()
	defer guest.mu.Unlock()
	if guest.dir != "" {
		return guest.dir, nil
	}
	root, err := repoRoot()
	if err == nil {
		err = buildGuest(root, cacheDir(root))
	}
	if err != nil {
		return "", err
	}
	guest.dir = cacheDir(root)
	return guest.dir, nil
}

func cacheDir(root string) string {
	if d := os.Getenv("KEEL_TOOLS_DIR"); d != "" {
		return filepath.Join(d, "guest")
	}
	return filepath.Join(root, ".tools", "guest")
}

// buildGuest runs the build script under an exclusive lock on the cache
// directory, so that concurrent test processes build it once. The script
// does nothing when the images are up to date.
func buildGuest(root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "test-guest.sh"), dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/test-guest.sh: %w\n%s", err, out)
	}
	return nil
}

// repoRoot finds the repository from this source file's path, or else from
// the working directory up.
func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		if fileExists(filepath.Join(root, "scripts", "test-guest.sh")) {
			return filepath.Clean(root), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for !fileExists(filepath.Join(dir, "scripts", "test-guest.sh")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no scripts/test-guest.sh above %s", dir)
		}
		dir = parent
	}
	return dir, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Seed writes a NoCloud seed ISO (volume label cidata) at path with the
// given meta-data and user-data, with scripts/test-guest.sh seed.
func Seed(t testing.TB, path, metaData, userData string) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	tmp := t.TempDir()
	meta, user := filepath.Join(tmp, "meta-data"), filepath.Join(tmp, "user-data")
	if err := os.WriteFile(meta, []byte(metaData), 0o644); err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	if err := os.WriteFile(user, []byte(userData), 0o644); err != nil {
		t.Fatalf("lvtest: %v", err)
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "test-guest.sh"), "seed", path, meta, user).CombinedOutput()
	if err != nil {
		t.Fatalf("lvtest: make seed %s: %v\n%s", path, err, out)
	}
}

// WaitUserData polls the serial log at path until the guest has printed its
// user-data, and returns it (each line ending in "\n", carriage returns
// dropped). It fails t after timeout, showing the log.
func WaitUserData(t testing.TB, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if ud, ok := UserData(string(b)); ok {
			return ud
		}
		if time.Now().After(deadline) {
			t.Fatalf("lvtest: no user-data on the serial console %s after %v; it holds:\n%s", path, timeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// UserData extracts the user-data the guest printed from its serial output;
// ok is false until the guest has printed all of it.
func UserData(serial string) (userData string, ok bool) {
	serial = strings.ReplaceAll(serial, "\r", "")
	_, rest, ok := strings.Cut(serial, UserDataBegin+"\n")
	if !ok {
		return "", false
	}
	userData, _, ok = strings.Cut(rest, UserDataEnd+"\n")
	return userData, ok
}
