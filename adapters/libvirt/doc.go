// Package libvirt is the libvirt driver of the host agent: it runs a
// compute node's servers as libvirt domains through go-libvirt, with a
// directory storage pool, an image cache and NoCloud seeds.
package libvirt

import _ "github.com/digitalocean/go-libvirt" // the driver's client
