package libvirt

import (
	"slices"
	"testing"
)

// The CPU model and features come from libvirt's host capabilities (an
// excerpt of a real QEMU host's).
func TestHostCPU(t *testing.T) {
	caps := `<capabilities><host><uuid>767f1ac1-7e26-45b2-819c-a4ca556fa234</uuid><cpu>
	  <arch>x86_64</arch><model>kvm64</model><vendor>AMD</vendor>
	  <feature name='vme'/><feature name='sse4.2'/><feature name='avx2'/>
	</cpu></host><guest><os_type>hvm</os_type></guest></capabilities>`
	model, features, err := hostCPU(caps)
	if err != nil {
		t.Fatal(err)
	}
	if model != "kvm64" || !slices.Equal(features, []string{"avx2", "sse4.2", "vme"}) {
		t.Fatalf("model %q features %v", model, features)
	}
	if _, _, err := hostCPU("<capabilities"); err == nil {
		t.Fatal("broken capabilities read without an error")
	}
}
