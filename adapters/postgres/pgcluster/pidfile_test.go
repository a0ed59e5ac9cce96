package pgcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRemoveStaleLocks(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, zombie.Process.Pid)
	defer zombie.Wait()

	for name, pid := range map[string]int{
		"exited":       exited.Process.Pid,
		"zombie":       zombie.Process.Pid,
		"not postgres": os.Getpid(),
		"garbage":      0,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			paths := []string{filepath.Join(dir, pidFile), filepath.Join(dir, ".s.PGSQL.5432.lock")}
			for _, path := range paths {
				writePID(t, path, pid)
			}
			if err := removeStaleLocks(dir, t.Logf); err != nil {
				t.Fatal(err)
			}
			for _, path := range paths {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("stale %s for PID %d kept (stat err %v)", filepath.Base(path), pid, err)
				}
			}
		})
	}
}

func TestRemoveStaleLocksWithoutFiles(t *testing.T) {
	if err := removeStaleLocks(t.TempDir(), t.Logf); err != nil {
		t.Fatal(err)
	}
}

func writePID(t *testing.T, path string, pid int) {
	t.Helper()
	content := strconv.Itoa(pid) + "\n/data\n1700000000\n5432\n.\n127.0.0.1\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitZombie waits until the unreaped child pid has exited.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for range 500 {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("child %d did not become a zombie", pid)
}
