package libvirt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
)

type Image struct {
	ID, Object, SHA256 string
	Size               int64
	Format             string
}
type Fetcher func(ctx context.Context, object string) (io.ReadCloser, error)
type ImageCache struct {
	Dir   string
	Fetch Fetcher
	Log   *slog.Logger
}

func (c *ImageCache) Ensure(ctx context.Context, img Image) (string, error) {
	p := filepath.Join(c.Dir, img.ID)
	r, err := c.Fetch(ctx, img.Object)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return p, os.WriteFile(p, b, 0o444)
}
func CreateOverlay(ctx context.Context, base, baseFormat, path string, sizeBytes int64) error {
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, path, fmt.Sprint(sizeBytes)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}
func CreateBlank(ctx context.Context, path string, sizeBytes int64) error { return nil }
