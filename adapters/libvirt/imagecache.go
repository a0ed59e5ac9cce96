package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Image is what the cache needs to know of an image (from the image
// aggregate).
type Image struct {
	ID     string // the image's uuid; the base file is named after it
	Object string // object name in the image store
	SHA256 string // hex, as recorded at upload
	Size   int64
	Format string // declared disk format: "raw", "qcow2" or "iso"
}

// BaseFormat is the format qemu reads the image's base as: an ISO is a raw
// file to qemu.
func (img Image) BaseFormat() string {
	if img.Format == "qcow2" {
		return "qcow2"
	}
	return "raw"
}

// idPattern is what an image id may look like. It keeps ids from naming a
// path outside the cache ("../x") and holds no dot, so that a base name
// can never end in partSuffix.
var idPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_-]*$`)

var sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (img Image) validate() error {
	switch {
	case !idPattern.MatchString(img.ID):
		return fmt.Errorf("image %q: the id is not a plain name", img.ID)
	case img.Object == "":
		return fmt.Errorf("image %s: no object name", img.ID)
	case !sha256Pattern.MatchString(img.SHA256):
		return fmt.Errorf("image %s: recorded sha256 %q is not 64 hex digits", img.ID, img.SHA256)
	case img.Size <= 0:
		return fmt.Errorf("image %s: recorded size %d is not positive", img.ID, img.Size)
	case img.Format != "raw" && img.Format != "qcow2" && img.Format != "iso":
		return fmt.Errorf("image %s: declared format %q is none of raw, qcow2, iso", img.ID, img.Format)
	}
	return nil
}

// RefusedError says why an image's bytes will not be used. Its Reason is
// written for the user who uploaded the image and may be shown to them.
type RefusedError struct {
	ImageID string
	Reason  string
}

// Error says which image was refused and why.
func (e *RefusedError) Error() string { return "image " + e.ImageID + ": " + e.Reason }

func refuse(img Image, format string, args ...any) error {
	return &RefusedError{ImageID: img.ID, Reason: fmt.Sprintf(format, args...)}
}

// Fetcher opens an image's bytes (the JetStream object store in
// production). The caller closes the reader.
type Fetcher func(ctx context.Context, object string) (io.ReadCloser, error)

// partSuffix ends the name of a base being downloaded. A crash leaves such
// files behind; Clean removes them.
const partSuffix = ".part"

// ImageCache keeps a compute node's verified base images in Dir, one
// read-only file per image named after its id. A base is only ever put in
// place whole, by rename, after its sha256, size and real format have been
// checked, so a file with a base's name is a verified base.
//
// One ImageCache must own Dir: two (in one process or two) would remove
// each other's downloads in Clean.
type ImageCache struct {
	Dir   string
	Fetch Fetcher
	Log   *slog.Logger

	mu       sync.Mutex
	dir      string            // Dir made absolute, set at first use
	inflight map[string]*fetch // by image id
}

// fetch is one download shared by the Ensure calls of one image.
type fetch struct {
	done chan struct{} // closed when path and err are set
	path string
	err  error
	// waiters counts the Ensure calls waiting for it. The download runs on
	// a context of its own, so that the caller who started it can give up
	// without failing the others; it stops when the last one gives up.
	waiters int
	cancel  context.CancelFunc
}

// Ensure returns the path of the verified base of img, fetching it once:
// concurrent Ensure calls for one image share one download. A failed
// download is not remembered: the next Ensure tries again.
//
// A base already in Dir (from an earlier run) is reused after a size
// check only. Re-hashing it would read gigabytes at every server start;
// the file was hashed before it was renamed into place and is read-only
// since, so only a root process or a broken disk can have changed it. A
// base of the wrong size is removed and fetched again.
func (c *ImageCache) Ensure(ctx context.Context, img Image) (string, error) {
	if err := img.validate(); err != nil {
		return "", err
	}
	f, path, err := c.join(ctx, img)
	if f == nil {
		return path, err
	}
	select {
	case <-f.done:
		return f.path, f.err
	case <-ctx.Done():
		c.leave(img.ID, f)
		return "", fmt.Errorf("image %s: wait for its download: %w", img.ID, ctx.Err())
	}
}

// join returns the base's path when it is in place, or else the download
// to wait for, starting one if none runs.
func (c *ImageCache) join(ctx context.Context, img Image) (*fetch, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setupLocked(); err != nil {
		return nil, "", err
	}
	if f := c.inflight[img.ID]; f != nil {
		f.waiters++
		return f, "", nil
	}
	path, ok, err := c.reusable(img)
	if ok || err != nil {
		return nil, path, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &fetch{done: make(chan struct{}), waiters: 1, cancel: cancel}
	c.inflight[img.ID] = f
	go c.run(dctx, img, f)
	return f, "", nil
}

// reusable reports whether the base of img is already in place with the
// size recorded at upload; a base of another size is removed.
func (c *ImageCache) reusable(img Image) (string, bool, error) {
	path := filepath.Join(c.dir, img.ID)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("image %s: look for its base: %w", img.ID, err)
	}
	if st.Mode().IsRegular() && st.Size() == img.Size {
		return path, true, nil
	}
	c.log().Warn("base image has the wrong size, fetching it again",
		"image", img.ID, "path", path, "size", st.Size(), "recorded_size", img.Size)
	if err := os.Remove(path); err != nil {
		return "", false, fmt.Errorf("image %s: remove its base of the wrong size: %w", img.ID, err)
	}
	return "", false, nil
}

// leave is called by a waiter that gives up; the last one stops the
// download and forgets it, so that the next Ensure starts afresh instead
// of joining a cancelled download.
func (c *ImageCache) leave(id string, f *fetch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	f.cancel()
	if c.inflight[id] == f {
		delete(c.inflight, id)
	}
}

// run downloads img and hands the outcome to every waiter.
func (c *ImageCache) run(ctx context.Context, img Image, f *fetch) {
	start := time.Now()
	path, err := c.download(ctx, img)
	if err != nil {
		c.log().Warn("image download failed", "image", img.ID, "error", err)
	} else {
		c.log().Info("image downloaded and verified", "image", img.ID, "path", path,
			"size", img.Size, "took", time.Since(start))
	}
	c.mu.Lock()
	if c.inflight[img.ID] == f {
		delete(c.inflight, img.ID)
	}
	f.path, f.err = path, err
	c.mu.Unlock()
	f.cancel()
	close(f.done)
}

// download streams img to a temp file in Dir, checks it, and renames it to
// its base's name. On any failure the temp file is removed.
func (c *ImageCache) download(ctx context.Context, img Image) (path string, err error) {
	tmp, err := os.CreateTemp(c.dir, img.ID+".*"+partSuffix)
	if err != nil {
		return "", fmt.Errorf("image %s: create its temp file: %w", img.ID, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeFile(tmp.Name()))
		}
	}()
	if err := c.copyVerified(ctx, tmp, img); err != nil {
		return "", err
	}
	if err := checkFormat(ctx, tmp.Name(), img); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("image %s: %w", img.ID, err)
	}
	return c.install(tmp.Name(), img)
}

// copyVerified streams the image's bytes into tmp, hashing them on the
// way, closes tmp, and checks size and sha256 against the upload's.
func (c *ImageCache) copyVerified(ctx context.Context, tmp *os.File, img Image) error {
	n, sum, err := c.copyImage(ctx, tmp, img)
	if err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(fmt.Errorf("image %s: sync its temp file: %w", img.ID, err), tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image %s: close its temp file: %w", img.ID, err)
	}
	if n > img.Size {
		return refuse(img, "it holds more bytes than the %d recorded at upload", img.Size)
	}
	if n < img.Size {
		return refuse(img, "it holds %d bytes, not the %d recorded at upload", n, img.Size)
	}
	if !strings.EqualFold(sum, img.SHA256) {
		return refuse(img, "its bytes do not match the sha256 recorded at upload (recorded %s, found %s)", img.SHA256, sum)
	}
	return nil
}

// copyImage copies at most one byte more than the recorded size, enough to
// tell that a stream is too long without filling the disk with it.
func (c *ImageCache) copyImage(ctx context.Context, w io.Writer, img Image) (int64, string, error) {
	r, err := c.Fetch(ctx, img.Object)
	if err != nil {
		return 0, "", fmt.Errorf("image %s: fetch object %s: %w", img.ID, img.Object, err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			c.log().Warn("close image stream", "image", img.ID, "error", err)
		}
	}()
	h := sha256.New()
	src := io.LimitReader(ctxReader{ctx: ctx, r: r}, img.Size+1)
	n, err := io.CopyBuffer(io.MultiWriter(w, h), src, make([]byte, 1<<20))
	if err != nil {
		return n, "", fmt.Errorf("image %s: copy object %s: %w", img.ID, img.Object, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a copy when ctx ends, whether or not the Fetcher's
// reader watches ctx itself.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// checkFormat asks qemu-img what path really is and judges it against the
// declared format.
func checkFormat(ctx context.Context, path string, img Image) error {
	info, err := probeImage(ctx, path)
	if err != nil {
		return fmt.Errorf("image %s: probe its format: %w", img.ID, err)
	}
	return judgeFormat(img, info)
}

// judgeFormat refuses an image whose real format is not the declared one,
// and any image that reads through to another file: a backing file or an
// external data file would let a user read any file of the host.
func judgeFormat(img Image, info imageInfo) error {
	if info.Format != img.BaseFormat() {
		if img.Format == "iso" {
			return refuse(img, "it was declared iso, but qemu-img finds %s (an ISO reads as raw)", info.Format)
		}
		return refuse(img, "it was declared %s, but qemu-img finds %s", img.Format, info.Format)
	}
	if b := info.backing(); b != "" {
		return refuse(img, "it is a %s with %s; an image must stand alone, since a backing or data file could read any file of the host",
			info.Format, b)
	}
	if info.Encrypted {
		return refuse(img, "it is encrypted, and hosts hold no key for it")
	}
	if info.FormatSpecific.Data.Corrupt {
		return refuse(img, "qemu-img marks it corrupt")
	}
	return nil
}

// install makes the verified temp file read-only and renames it to the
// base's name, then syncs Dir so that the rename survives a crash. If only
// that sync fails, the base stays in place (its bytes are verified) and
// the error is returned.
func (c *ImageCache) install(tmp string, img Image) (string, error) {
	if err := os.Chmod(tmp, 0o444); err != nil {
		return "", fmt.Errorf("image %s: make its base read-only: %w", img.ID, err)
	}
	path := filepath.Join(c.dir, img.ID)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("image %s: put its base in place: %w", img.ID, err)
	}
	if err := syncDir(c.dir); err != nil {
		return "", fmt.Errorf("image %s: %w", img.ID, err)
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync directory %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Evict removes the bases not in keep (image ids) and returns the ids it
// removed. It never removes a base being fetched. keep must name the
// images of every server on this node, including those still being built:
// a base Ensure has just returned is not otherwise protected.
//
// Files of Dir that are not bases (temp files, names that are no image
// id) are left alone; temp files are Clean's.
func (c *ImageCache) Evict(keep map[string]bool) ([]string, error) {
	// The lock is held across the removals so that Ensure never returns a
	// base that is being removed.
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setupLocked(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("evict bases: read %s: %w", c.dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if !e.Type().IsRegular() || !idPattern.MatchString(id) || keep[id] || c.inflight[id] != nil {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, id)); err != nil {
			errs = append(errs, fmt.Errorf("evict base %s: %w", id, err))
			continue
		}
		c.log().Info("base image evicted", "image", id)
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// Clean removes the temp files that a crash left in Dir, except those of
// downloads running now. Ensure and Evict call it once, at first use.
func (c *ImageCache) Clean() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setupLocked(); err != nil {
		return err
	}
	return c.cleanLocked()
}

func (c *ImageCache) cleanLocked() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("clean image cache: read %s: %w", c.dir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		id, _, _ := strings.Cut(name, ".")
		if !strings.HasSuffix(name, partSuffix) || c.inflight[id] != nil {
			continue
		}
		if err := removeFile(filepath.Join(c.dir, name)); err != nil {
			errs = append(errs, fmt.Errorf("clean image cache: %w", err))
			continue
		}
		c.log().Info("leftover partial image removed", "file", name)
	}
	return errors.Join(errs...)
}

// setupLocked creates Dir and cleans it at first use. A failure is not
// remembered: the next call tries again.
func (c *ImageCache) setupLocked() error {
	if c.dir != "" {
		return nil
	}
	if c.Dir == "" {
		return errors.New("image cache: no directory set")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("image cache: directory %s: %w", c.Dir, err)
	}
	// 0755: the hypervisor, under a user of its own, reads the bases.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("image cache: create %s: %w", dir, err)
	}
	if c.inflight == nil {
		c.inflight = make(map[string]*fetch)
	}
	c.dir = dir
	if err := c.cleanLocked(); err != nil {
		c.dir = ""
		return err
	}
	return nil
}

func (c *ImageCache) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}
