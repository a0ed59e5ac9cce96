package ovntest

import (
	"os"
	"testing"
	"time"
)

// The data plane binds a port plugged into br-int with its iface-id to the
// logical switch port of that name, as it will bind a VM's tap.
func TestDataPlaneBindsAPluggedPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ovs-vswitchd needs root")
	}
	s := Start(t, WithNorthd())
	p := s.StartDataPlane(t)
	s.NBCtl(t, "ls-add", "sw0")
	s.NBCtl(t, "lsp-add", "sw0", "lsp0")
	p.VSCtl(t, "add-port", "br-int", "vm0", "--", "set", "Interface", "vm0", "type=internal", "external_ids:iface-id=lsp0")
	p.WaitBound(t, "lsp0", 30*time.Second)
	if up := s.NBCtl(t, "lsp-get-up", "lsp0"); up != "up\n" {
		t.Errorf("lsp0 is %q after binding, want up", up)
	}
}
