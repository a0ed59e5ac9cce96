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

// Accel is how this host runs guests.
type Accel struct {
	// DomainType is the libvirt domain type: kvm, or qemu (TCG).
	DomainType string
	// CPUMode is the libvirt CPU mode of a KVM guest: host-model (the
	// guest sees the host's CPU); "" for TCG.
	CPUMode string
	// Why says how it was found, for the log.
	Why string
}

// DetectAccel tells whether KVM runs guests on this host: it needs
// /dev/kvm and a probe guest that actually runs under KVM with the host's
// CPU (what host-model gives a guest). On some hosts /dev/kvm exists and
// guests hang; on some nested ones KVM refuses the host's CPU (a
// model-specific register the outer hypervisor does not allow), and there a
// probe with the default CPU model does run but a real guest kernel stops
// with an internal KVM error once it boots: only the host-CPU probe
// predicts real guests, so anything less is TCG.
func DetectAccel(ctx context.Context, emulator string) Accel {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return Accel{DomainType: "qemu", Why: fmt.Sprintf("KVM not usable (%v): TCG", err)}
	} else {
		f.Close()
	}
	if err := probe(ctx, emulator, "kvm", "host"); err != nil {
		return Accel{DomainType: "qemu", Why: fmt.Sprintf("a probe guest with the host's CPU did not run under KVM (%v): TCG", err)}
	}
	return Accel{DomainType: "kvm", CPUMode: "host-model", Why: "a probe guest ran under KVM with the host's CPU"}
}

// probe boots the probe firmware under accel (with the CPU model cpu, ""
// for the default) and waits up to 5 s for its output.
func probe(ctx context.Context, emulator, accel, cpu string) error {
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
	args := []string{"-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults",
		"-display", "none", "-no-reboot", "-bios", bios, "-debugcon", "file:" + out, "-global", "isa-debugcon.iobase=0xe9"}
	if cpu != "" {
		args = append(args, "-cpu", cpu)
	}
	cmd := exec.CommandContext(pctx, emulator, args...)
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
