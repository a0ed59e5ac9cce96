package ovntest

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartServesNBAndStopsEverything(t *testing.T) {
	s, stop, err := StartServers("", WithNorthd())
	if err != nil {
		t.Fatal(err)
	}
	s.NBCtl(t, "ls-add", "sw0")
	if out := s.NBCtl(t, "ls-list"); !strings.Contains(out, "(sw0)") {
		t.Fatalf("ls-list = %q, want sw0", out)
	}
	// northd answers: a bumped nb_cfg comes back as sb_cfg.
	s.NBCtl(t, "--wait=sb", "sync")
	procs := s.procs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running after stop", p.name)
		}
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still there after stop: %v", s.Dir, err)
	}
}

func TestMissingBinaryNamesMakeDeps(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := findBinaries(true)
	if err == nil || !strings.Contains(err.Error(), "make deps") || !strings.Contains(err.Error(), "ovsdb-server") {
		t.Fatalf("findBinaries with an empty PATH = %v, want an error naming ovsdb-server and make deps", err)
	}
}
