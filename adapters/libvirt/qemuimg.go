package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// qemuImgTimeout bounds one qemu-img run. A crafted image can make the
// prober spin; nothing qemu-img does on a local file should take this long.
const qemuImgTimeout = 30 * time.Second

// Resource limits of qemu-img on bytes a user uploaded, the ones OpenStack
// found safe after crafted images made it eat memory and CPU
// (OSSA-2015-014): 1 GiB of address space and 30 s of CPU.
const (
	qemuImgAddressSpace = 1 << 30
	qemuImgCPUSeconds   = 30
)

// ErrDiskTooSmall is returned by CreateOverlay when the disk asked for is
// smaller than its base's virtual size: the flavor cannot hold the image.
var ErrDiskTooSmall = errors.New("disk too small for the image")

// imageInfo is the part of `qemu-img info --output=json` the cache judges.
type imageInfo struct {
	Format              string `json:"format"`
	VirtualSize         int64  `json:"virtual-size"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	Encrypted           bool   `json:"encrypted"`
	FormatSpecific      struct {
		Data struct {
			DataFile string `json:"data-file"`
			Corrupt  bool   `json:"corrupt"`
		} `json:"data"`
	} `json:"format-specific"`
}

// backing names the file this image reads through, if any: a backing file
// or an external data file. Either lets an image read a file of the host.
func (i imageInfo) backing() string {
	switch {
	case i.BackingFilename != "":
		return "a backing file " + strconv.Quote(i.BackingFilename)
	case i.FullBackingFilename != "":
		return "a backing file " + strconv.Quote(i.FullBackingFilename)
	case i.FormatSpecific.Data.DataFile != "":
		return "an external data file " + strconv.Quote(i.FormatSpecific.Data.DataFile)
	}
	return ""
}

// probeImage reports what qemu-img finds in path. It passes no -f on
// purpose: the point is the real format, whatever the upload declared.
// --force-share lets it read a base that a running guest holds open.
func probeImage(ctx context.Context, path string) (imageInfo, error) {
	return qemuImgInfo(ctx, "", path)
}

// qemuImgInfo runs `qemu-img info` on path, with -f format unless format
// is empty (then qemu-img probes).
func qemuImgInfo(ctx context.Context, format, path string) (imageInfo, error) {
	args := []string{"info", "--output=json", "--force-share"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := runQemuImg(ctx, append(args, qemuPath(path))...)
	if err != nil {
		return imageInfo{}, err
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imageInfo{}, fmt.Errorf("read qemu-img info of %s: %w", path, err)
	}
	if info.Format == "" {
		return imageInfo{}, fmt.Errorf("qemu-img info of %s: no format in its answer", path)
	}
	return info, nil
}

// runQemuImg runs qemu-img under prlimit and a timeout, and returns its
// standard output; a failure carries qemu-img's own words.
func runQemuImg(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, qemuImgTimeout)
	defer cancel()
	full := append([]string{
		"--as=" + strconv.Itoa(qemuImgAddressSpace),
		"--cpu=" + strconv.Itoa(qemuImgCPUSeconds),
		"qemu-img",
	}, args...)
	cmd := exec.CommandContext(ctx, "prlimit", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("qemu-img %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// qemuPath makes path absolute: qemu reads "name:rest" before the first
// slash as a protocol, and resolves a relative backing file against the
// overlay's directory rather than ours.
func qemuPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		// Only fails when the working directory is gone; "./" still keeps
		// a colon in the name from reading as a protocol.
		return "./" + path
	}
	return abs
}

// CreateOverlay creates path as a qcow2 disk of sizeBytes that reads
// through to base (of baseFormat, "raw" or "qcow2"): a server's root disk.
// It refuses a size below the base's virtual size (ErrDiskTooSmall) and
// never overwrites an existing file (fs.ErrExist), since that file is a
// server's disk.
func CreateOverlay(ctx context.Context, base, baseFormat, path string, sizeBytes int64) error {
	if baseFormat != "raw" && baseFormat != "qcow2" {
		return fmt.Errorf("create overlay %s: base format %q is neither raw nor qcow2", path, baseFormat)
	}
	info, err := qemuImgInfo(ctx, baseFormat, base)
	if err != nil {
		return fmt.Errorf("create overlay %s: read its base: %w", path, err)
	}
	if sizeBytes < info.VirtualSize {
		return fmt.Errorf("create overlay %s: the flavor's disk of %d bytes is smaller than the image's virtual size of %d bytes: %w",
			path, sizeBytes, info.VirtualSize, ErrDiskTooSmall)
	}
	return createQcow2(ctx, path, sizeBytes, "-F", baseFormat, "-b", qemuPath(base))
}

// CreateBlank creates path as an empty qcow2 disk of sizeBytes (an extra
// data disk). Like CreateOverlay it never overwrites an existing file.
func CreateBlank(ctx context.Context, path string, sizeBytes int64) error {
	return createQcow2(ctx, path, sizeBytes)
}

// createQcow2 claims path with O_EXCL before qemu-img writes it, so that
// two racing creates cannot both succeed, and removes it again on failure.
// The disk is 0600: it holds a user's data, and libvirt hands it to the
// hypervisor's user when it starts the domain.
func createQcow2(ctx context.Context, path string, sizeBytes int64, extra ...string) error {
	if sizeBytes <= 0 {
		return fmt.Errorf("create disk %s: size %d bytes is not positive", path, sizeBytes)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create disk %s: it exists already, and a disk is never overwritten: %w", path, err)
		}
		return fmt.Errorf("create disk %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return errors.Join(fmt.Errorf("create disk %s: %w", path, err), removeFile(path))
	}
	args := append([]string{"create", "-q", "-f", "qcow2"}, extra...)
	args = append(args, qemuPath(path), strconv.FormatInt(sizeBytes, 10))
	if _, err := runQemuImg(ctx, args...); err != nil {
		return errors.Join(fmt.Errorf("create disk %s: %w", path, err), removeFile(path))
	}
	return nil
}

// removeFile removes path; a missing file is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
