package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// needQemuImg checks for the real qemu-img (and prlimit, which runs it
// under limits). As root, where make test installs them
// (scripts/install-deps.sh), their absence fails the test; otherwise it
// skips with the reason.
func needQemuImg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"qemu-img", "prlimit"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Geteuid() == 0 {
				t.Fatalf("%s is not installed (Debian: qemu-utils, util-linux; scripts/install-deps.sh installs them): %v", bin, err)
			}
			t.Skipf("%s is not installed (Debian: qemu-utils, util-linux): %v", bin, err)
		}
	}
}

// run runs a command for a test's fixtures and fails the test on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// fixture makes an image file with qemu-img (or another tool) in a temp
// directory and returns its bytes.
func fixture(t *testing.T, build func(dir, path string)) []byte {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "image")
	build(dir, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func qcow2Bytes(t *testing.T) []byte {
	return fixture(t, func(_, path string) { run(t, "qemu-img", "create", "-q", "-f", "qcow2", path, "16M") })
}

func rawBytes() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// store is an image store in memory that counts Fetch calls. Fetch waits
// for gate to close when gate is set, and fails the first failures calls.
type store struct {
	objects  map[string][]byte
	calls    atomic.Int32
	gate     chan struct{}
	failures atomic.Int32
	stopped  chan struct{} // closed when a Fetch saw its context end
	stopOnce sync.Once
}

func newStore() *store {
	return &store{objects: map[string][]byte{}, stopped: make(chan struct{})}
}

func (s *store) Fetch(ctx context.Context, object string) (io.ReadCloser, error) {
	s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			s.stopOnce.Do(func() { close(s.stopped) })
			return nil, ctx.Err()
		}
	}
	if s.failures.Add(-1) >= 0 {
		return nil, errors.New("object store unavailable")
	}
	b, ok := s.objects[object]
	if !ok {
		return nil, fmt.Errorf("object %s: not found", object)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// add stores b as a new image of the declared format and returns it.
func (s *store) add(id, format string, b []byte) Image {
	sum := sha256.Sum256(b)
	s.objects["obj-"+id] = b
	return Image{ID: id, Object: "obj-" + id, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Format: format}
}

func newCache(t *testing.T, s *store) *ImageCache {
	return &ImageCache{Dir: filepath.Join(t.TempDir(), "bases"), Fetch: s.Fetch}
}

// files lists the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *ImageCache) waiters(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.inflight[id]; f != nil {
		return f.waiters
	}
	return 0
}

func TestEnsureInstallsAVerifiedReadOnlyBase(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	b := qcow2Bytes(t)
	img := s.add("img-1", "qcow2", b)
	c := newCache(t, s)

	path, err := c.Ensure(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(c.Dir, "img-1"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("base holds other bytes than the image (err %v)", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o444 {
		t.Errorf("base mode %v, want read-only 0444", st.Mode())
	}
	if names := files(t, c.Dir); len(names) != 1 {
		t.Errorf("cache holds %v, want only the base", names)
	}
	if _, err := c.Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestEnsureReusesABaseFromAnEarlierRun(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	img := s.add("img-1", "raw", rawBytes())
	first := newCache(t, s)
	if _, err := first.Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}

	second := &ImageCache{Dir: first.Dir, Fetch: s.Fetch}
	if _, err := second.Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1: the base on disk should be reused", n)
	}
}

func TestEnsureFetchesAgainABaseOfTheWrongSize(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	b := rawBytes()
	img := s.add("img-1", "raw", b)
	c := newCache(t, s)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "img-1"), b[:100], 0o444); err != nil {
		t.Fatal(err)
	}

	path, err := c.Ensure(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b) {
		t.Errorf("the truncated base was not replaced (err %v)", err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

// endless is a stream that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestEnsureRefusesBytesThatDoNotMatchTheUpload(t *testing.T) {
	needQemuImg(t)
	b := rawBytes()
	tests := []struct {
		name  string
		bytes func(img Image) io.Reader
		want  string
	}{
		{"other bytes", func(Image) io.Reader {
			o := bytes.Clone(b)
			o[5] ^= 1
			return bytes.NewReader(o)
		}, "its bytes do not match the sha256 recorded at upload"},
		{"fewer bytes", func(Image) io.Reader { return bytes.NewReader(b[:1000]) },
			"it holds 1000 bytes, not the 1048576 recorded at upload"},
		{"more bytes", func(Image) io.Reader { return io.MultiReader(bytes.NewReader(b), bytes.NewReader([]byte("x"))) },
			"it holds more bytes than the 1048576 recorded at upload"},
		{"an endless stream", func(Image) io.Reader { return endless{} },
			"it holds more bytes than the 1048576 recorded at upload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := newStore().add("img-1", "raw", b)
			c := &ImageCache{Dir: t.TempDir(), Fetch: func(context.Context, string) (io.ReadCloser, error) {
				return io.NopCloser(tt.bytes(img)), nil
			}}
			_, err := c.Ensure(context.Background(), img)
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), "image img-1: "+tt.want) {
				t.Fatalf("error %v, want a refusal saying %q", err, tt.want)
			}
			if names := files(t, c.Dir); len(names) != 0 {
				t.Errorf("refusal left %v behind", names)
			}
		})
	}
}

func TestEnsureJudgesTheRealFormat(t *testing.T) {
	needQemuImg(t)
	qcow2 := qcow2Bytes(t)
	raw := rawBytes()
	withBacking := fixture(t, func(dir, path string) {
		base := filepath.Join(dir, "base.raw")
		run(t, "qemu-img", "create", "-q", "-f", "raw", base, "16M")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path, "16M")
	})
	withDataFile := fixture(t, func(dir, path string) {
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), path, "16M")
	})
	tests := []struct {
		name     string
		declared string
		bytes    []byte
		want     string // empty: accepted
	}{
		{"raw is raw", "raw", raw, ""},
		{"qcow2 is qcow2", "qcow2", qcow2, ""},
		{"raw that is qcow2", "raw", qcow2, "it was declared raw, but qemu-img finds qcow2"},
		{"qcow2 that is raw", "qcow2", raw, "it was declared qcow2, but qemu-img finds raw"},
		{"iso that is qcow2", "iso", qcow2, "it was declared iso, but qemu-img finds qcow2"},
		{"qcow2 with a backing file", "qcow2", withBacking, `it is a qcow2 with a backing file "`},
		{"qcow2 with a data file", "qcow2", withDataFile, `it is a qcow2 with an external data file "`},
	}
	if _, err := exec.LookPath("genisoimage"); err == nil {
		iso := fixture(t, func(dir, path string) {
			src := filepath.Join(dir, "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "meta-data"), []byte("instance-id: x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "genisoimage", "-quiet", "-o", path, "-V", "cidata", "-J", "-r", src)
		})
		tests = append(tests, struct {
			name, declared string
			bytes          []byte
			want           string
		}{"iso is an ISO", "iso", iso, ""})
	} else {
		t.Log("genisoimage is not installed: the case of a real ISO is not run")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			img := s.add("img-1", tt.declared, tt.bytes)
			c := newCache(t, s)
			path, err := c.Ensure(context.Background(), img)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, err := os.Stat(path); err != nil {
					t.Fatal(err)
				}
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a refusal saying %q", err, tt.want)
			}
			if names := files(t, c.Dir); len(names) != 0 {
				t.Errorf("refusal left %v behind", names)
			}
		})
	}
}

func TestConcurrentEnsureSharesOneFetch(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	s.gate = make(chan struct{})
	img := s.add("img-1", "qcow2", qcow2Bytes(t))
	c := newCache(t, s)

	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { paths[i], errs[i] = c.Ensure(context.Background(), img) })
	}
	eventually(t, "all callers wait on the download", func() bool { return c.waiters("img-1") == n })
	close(s.gate)
	wg.Wait()

	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("caller %d: %q, %v; want %q", i, paths[i], errs[i], paths[0])
		}
	}
	if got := s.calls.Load(); got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

func TestFailedFetchIsNotRemembered(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	s.failures.Store(1)
	img := s.add("img-1", "raw", rawBytes())
	c := newCache(t, s)

	if _, err := c.Ensure(context.Background(), img); err == nil || !strings.Contains(err.Error(), "object store unavailable") {
		t.Fatalf("first Ensure: %v, want the fetch's error", err)
	}
	if _, err := c.Ensure(context.Background(), img); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("%d fetches, want 2", got)
	}
}

func TestACallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	s.gate = make(chan struct{})
	img := s.add("img-1", "raw", rawBytes())
	c := newCache(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	starterErr := make(chan error, 1)
	go func() { _, err := c.Ensure(ctx, img); starterErr <- err }()
	eventually(t, "the download starts", func() bool { return c.waiters("img-1") == 1 })
	otherErr := make(chan error, 1)
	go func() { _, err := c.Ensure(context.Background(), img); otherErr <- err }()
	eventually(t, "a second caller waits", func() bool { return c.waiters("img-1") == 2 })

	cancel()
	if err := <-starterErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller who gave up got %v, want context.Canceled", err)
	}
	close(s.gate)
	if err := <-otherErr; err != nil {
		t.Errorf("the other caller got %v", err)
	}
}

func TestTheLastCallerGivingUpStopsTheDownload(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	s.gate = make(chan struct{})
	img := s.add("img-1", "raw", rawBytes())
	c := newCache(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Ensure(ctx, img); done <- err }()
	eventually(t, "the download starts", func() bool { return c.waiters("img-1") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Ensure: %v, want context.Canceled", err)
	}
	select {
	case <-s.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the fetch's context was not cancelled")
	}
	eventually(t, "the temp file is gone", func() bool { return len(files(t, c.Dir)) == 0 })

	close(s.gate)
	if _, err := c.Ensure(context.Background(), img); err != nil {
		t.Fatalf("Ensure after the abandoned download: %v", err)
	}
}

func TestEvictRemovesOnlyUnusedBases(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	kept := s.add("kept", "raw", rawBytes())
	unused := s.add("unused", "qcow2", qcow2Bytes(t))
	c := newCache(t, s)
	for _, img := range []Image{kept, unused} {
		if _, err := c.Ensure(context.Background(), img); err != nil {
			t.Fatal(err)
		}
	}
	// A download in flight, and a file that is no base.
	s.gate = make(chan struct{})
	fetching := s.add("fetching", "raw", rawBytes())
	done := make(chan error, 1)
	go func() { _, err := c.Ensure(context.Background(), fetching); done <- err }()
	eventually(t, "the download starts", func() bool { return c.waiters("fetching") == 1 })
	if err := os.WriteFile(filepath.Join(c.Dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	removed, err := c.Evict(map[string]bool{"kept": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != "unused" {
		t.Errorf("removed %v, want [unused]", removed)
	}
	close(s.gate)
	if err := <-done; err != nil {
		t.Fatalf("the download evicted under it failed: %v", err)
	}
	got := strings.Join(files(t, c.Dir), " ")
	if got != "fetching kept notes.txt" {
		t.Errorf("cache holds %q, want %q", got, "fetching kept notes.txt")
	}
}

func TestCleanRemovesLeftoverPartFiles(t *testing.T) {
	needQemuImg(t)
	s := newStore()
	img := s.add("img-1", "raw", rawBytes())
	c := newCache(t, s)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"img-1.123.part", "img-2.456.part"} {
		if err := os.WriteFile(filepath.Join(c.Dir, name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := c.Ensure(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files(t, c.Dir), " "); got != "img-1" {
		t.Errorf("after first use the cache holds %q, want only img-1", got)
	}

	if err := os.WriteFile(filepath.Join(c.Dir, "img-3.789.part"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Clean(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files(t, c.Dir), " "); got != "img-1" {
		t.Errorf("after Clean the cache holds %q, want only img-1", got)
	}
}

func TestEnsureRefusesAnImageItCannotName(t *testing.T) {
	s := newStore()
	c := newCache(t, s)
	for _, id := range []string{"../etc", "a/b", ".hidden", "x.part", ""} {
		img := s.add("ok", "raw", []byte("x"))
		img.ID = id
		if _, err := c.Ensure(context.Background(), img); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	img := s.add("ok", "vmdk", []byte("x"))
	if _, err := c.Ensure(context.Background(), img); err == nil || !strings.Contains(err.Error(), `declared format "vmdk"`) {
		t.Errorf("format vmdk: %v", err)
	}
	if s.calls.Load() != 0 {
		t.Errorf("an invalid image was fetched")
	}
}
