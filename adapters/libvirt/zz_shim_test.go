package libvirt_test

import (
	"strconv"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

type shimDaemon struct{}

func daemon(t *testing.T) shimDaemon { return shimDaemon{} }

func (shimDaemon) DialTest(t *testing.T) *golibvirt.Libvirt {
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket("/run/libvirt/libvirt-sock")))
	if err := l.ConnectToURI(golibvirt.TestDefault); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
