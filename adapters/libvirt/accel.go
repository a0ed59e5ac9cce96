package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// probeBIOS is a 64 KiB firmware whose reset vector writes "OK" to the
// debug console port 0xE9 and halts: if it shows, the accelerator ran guest
// code.
func probeBIOS() []byte {
	b := make([]byte, 64<<10)
	copy(b[0xFFF0:], []byte{
		0xB0, 'O', // mov al, 'O'
		0xE6, 0xE9, // out 0xE9, al
		0xB0, 'K', // mov al, 'K'
		0xE6, 0xE9, // out 0xE9, al
		0xF4,       // hlt
		0xEB, 0xFD, // jmp back to hlt
	})
	return b
}

// DetectAccel tells whether KVM runs guests on this host: it needs
// /dev/kvm and a probe guest under KVM that actually runs (on some hosts
// /dev/kvm exists and guests hang). It returns the libvirt domain type to
// use, kvm or qemu (TCG), and why.
func DetectAccel(ctx context.Context, emulator string) (domainType, why string) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return "qemu", fmt.Sprintf("KVM not usable (%v): TCG", err)
	} else {
		f.Close()
	}
	if err := probe(ctx, emulator, "kvm"); err != nil {
		return "qemu", fmt.Sprintf("a probe guest did not run under KVM (%v): TCG", err)
	}
	return "kvm", "a probe guest ran under KVM"
}

// probe boots the probe firmware under accel and waits up to 5 s for its
// output.
func probe(ctx context.Context, emulator, accel string) error {
	dir, err := os.MkdirTemp("", "keel-accel-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bios, out := filepath.Join(dir, "probe.bin"), filepath.Join(dir, "out")
	if err := os.WriteFile(bios, probeBIOS(), 0o600); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(pctx, emulator, "-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults",
		"-display", "none", "-no-reboot", "-bios", bios, "-debugcon", "file:"+out, "-global", "isa-debugcon.iobase=0xe9")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if msg := bytes.TrimSpace(stderr.Bytes()); len(msg) > 0 {
				return fmt.Errorf("%s exited: %v: %s", emulator, err, msg)
			}
			return fmt.Errorf("%s exited early: %v", emulator, err)
		case <-pctx.Done():
			<-done
			return fmt.Errorf("no output from the probe guest within 5s")
		case <-tick.C:
			if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("OK")) {
				cancel()
				<-done
				return nil
			}
		}
	}
}
