package libvirt

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cachedBase puts b in a cache as an image of format and returns its
// base's path.
func cachedBase(t *testing.T, format string, b []byte) string {
	t.Helper()
	s := newStore()
	img := s.add("base-1", format, b)
	path, err := newCache(t, s).Ensure(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCreateOverlayReadsThroughToItsBase(t *testing.T) {
	needQemuImg(t)
	for _, tt := range []struct {
		format string
		bytes  []byte
	}{{"qcow2", qcow2Bytes(t)}, {"raw", rawBytes()}} {
		t.Run(tt.format, func(t *testing.T) {
			base := cachedBase(t, tt.format, tt.bytes)
			path := filepath.Join(t.TempDir(), "root.qcow2")
			if err := CreateOverlay(context.Background(), base, tt.format, path, 32<<20); err != nil {
				t.Fatal(err)
			}
			info, err := qemuImgInfo(context.Background(), "qcow2", path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != "qcow2" || info.BackingFilename != base || info.VirtualSize != 32<<20 {
				t.Errorf("overlay is %s of %d bytes backed by %q; want qcow2 of %d bytes backed by %q",
					info.Format, info.VirtualSize, info.BackingFilename, 32<<20, base)
			}
		})
	}
}

func TestCreateOverlayNamesItsBaseByAnAbsolutePath(t *testing.T) {
	needQemuImg(t)
	base := cachedBase(t, "qcow2", qcow2Bytes(t))
	dir := filepath.Dir(base)
	t.Chdir(filepath.Dir(dir))
	rel := filepath.Join(filepath.Base(dir), filepath.Base(base))
	path := filepath.Join(t.TempDir(), "root.qcow2")

	if err := CreateOverlay(context.Background(), rel, "qcow2", path, 16<<20); err != nil {
		t.Fatal(err)
	}
	info, err := qemuImgInfo(context.Background(), "qcow2", path)
	if err != nil {
		t.Fatal(err)
	}
	if info.BackingFilename != base {
		t.Errorf("overlay backed by %q, want %q", info.BackingFilename, base)
	}
}

func TestCreateOverlayRefusesADiskSmallerThanTheImage(t *testing.T) {
	needQemuImg(t)
	base := cachedBase(t, "qcow2", qcow2Bytes(t)) // 16 MiB virtual
	path := filepath.Join(t.TempDir(), "root.qcow2")

	err := CreateOverlay(context.Background(), base, "qcow2", path, 8<<20)
	if !errors.Is(err, ErrDiskTooSmall) {
		t.Fatalf("error %v, want ErrDiskTooSmall", err)
	}
	want := "the flavor's disk of 8388608 bytes is smaller than the image's virtual size of 16777216 bytes"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused overlay left a file behind (stat: %v)", err)
	}
}

func TestCreateDiskNeverOverwrites(t *testing.T) {
	needQemuImg(t)
	base := cachedBase(t, "qcow2", qcow2Bytes(t))
	path := filepath.Join(t.TempDir(), "root.qcow2")
	if err := os.WriteFile(path, []byte("a server's data"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := CreateOverlay(context.Background(), base, "qcow2", path, 16<<20); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateOverlay on an existing file: %v, want fs.ErrExist", err)
	}
	if err := CreateBlank(context.Background(), path, 16<<20); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateBlank on an existing file: %v, want fs.ErrExist", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "a server's data" {
		t.Errorf("the existing file changed: %q, %v", b, err)
	}
}

func TestCreateBlankMakesAnEmptyQcow2(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "data.qcow2")
	if err := CreateBlank(context.Background(), path, 64<<20); err != nil {
		t.Fatal(err)
	}
	info, err := probeImage(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 64<<20 || info.backing() != "" {
		t.Errorf("blank disk is %s of %d bytes with %q; want qcow2 of %d bytes standing alone",
			info.Format, info.VirtualSize, info.backing(), 64<<20)
	}
}

func TestFailedQemuImgRunSaysWhy(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "missing.qcow2")
	_, err := probeImage(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("error %v, want qemu-img's own words", err)
	}
	if err := CreateBlank(context.Background(), filepath.Join(t.TempDir(), "x.qcow2"), -1); err == nil {
		t.Error("a negative size was accepted")
	}
}

func TestCreatedDisksArePrivate(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "data.qcow2")
	if err := CreateBlank(context.Background(), path, 16<<20); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("disk mode %v, want 0600", st.Mode())
	}
}
