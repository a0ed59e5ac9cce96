package lvtest

import (
	"os"
	"path/filepath"
	"sync"
)

// qemuCaps keeps the QEMU capabilities cache files of the daemons that
// probed QEMU, and gives them to the daemons started after them: probing takes
// 2-3 s at a daemon's first domain definition. libvirt checks the cached
// files itself (QEMU and libvirtd binaries, kernel, CPU) and probes again
// when they do not match.
var qemuCaps capsCache

type capsCache struct {
	mu    sync.Mutex
	files map[string][]byte // base name -> contents
}

// capsDir is the daemon's private /var/cache/libvirt/qemu/capabilities.
func (d *Daemon) capsDir() string {
	return filepath.Join(d.root, "cache", "qemu", "capabilities")
}

// restore writes the kept files into dir.
func (c *capsCache) restore(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.files) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range c.files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// save keeps the files of dir it does not hold yet (one per QEMU binary
// probed: qemu-system-i386 is probed too when the host capabilities are
// read).
func (c *capsCache) save(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, p := range paths {
		name := filepath.Base(p)
		if _, ok := c.files[name]; ok {
			continue
		}
		if data, err := os.ReadFile(p); err == nil {
			if c.files == nil {
				c.files = make(map[string][]byte)
			}
			c.files[name] = data
		}
	}
}
