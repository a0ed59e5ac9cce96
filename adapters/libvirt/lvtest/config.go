package lvtest

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
)

// libvirtdConf is the daemon's libvirtd.conf: sockets in its own directory,
// no authentication on them (only root can reach them), its own host UUID.
func libvirtdConf(d *Daemon) string {
	return fmt.Sprintf(`unix_sock_dir = %q
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = %q
log_outputs = %q
`, filepath.Dir(d.Socket), d.HostUUID, "3:file:"+d.Log)
}

// qemuConf is the daemon's qemu.conf: qemuConfBase and a VNC port range
// of its own. Daemons on one machine share its network: each picking the
// first free port from 5900 at once, two guests would try the same one.
func qemuConf() string {
	lo := 5900 + 20*rand.IntN(2900)
	return qemuConfBase + fmt.Sprintf("remote_display_port_min = %d\nremote_display_port_max = %d\n", lo, lo+19)
}

// qemuConfBase: QEMU runs as root with no security driver, cgroups or
// private /dev, so files under Daemon.Dir just work and nothing is shared
// with another daemon. Serial consoles of type "file" are written by QEMU
// itself ("file" stdio handler), so no virtlogd is needed.
const qemuConfBase = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
vnc_listen = "127.0.0.1"
`
