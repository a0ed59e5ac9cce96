package nbsync_test

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/domain/port"
)

// parked lists the commits the adapter's subscription parked.
func (c *cloud) parked(t *testing.T) []string {
	t.Helper()
	recs, _, err := c.lot.List(c.ctx, nbsync.SubscriptionName, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.AggregateType+"/"+r.AggregateID+": "+r.Reason)
	}
	return out
}

// While the NB is down, commits wait instead of failing: nothing is
// parked (even with parking after 2 attempts), and once the NB is back
// what landed meanwhile is written.
func TestNBOutageParksNothingAndConverges(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	c.start(t, "a", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	eventually(t, "port 1", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))

	c.srv.StopNB(t)
	c.dropPort(t, port1, sub1, "10.0.0.10")
	c.port(t, port2, net1, sub1, "fa:16:3e:00:00:02", "10.0.0.11")
	time.Sleep(1500 * time.Millisecond) // the adapter meets the outage
	c.srv.StartNB(t)

	eventually(t, "port 2 after the outage", 15*time.Second, c.hasPort(t, net1, port2, "fa:16:3e:00:00:02 10.0.0.11"))
	eventually(t, "port 1 gone after the outage", 5*time.Second, func() (bool, string) {
		got := c.nbctl(t, "lsp-list", "keel-"+net1)
		return !strings.Contains(got, port1), got
	})
	if p := c.parked(t); len(p) != 0 {
		t.Errorf("the outage parked commits: %v", p)
	}
}

// A commit that keeps failing is parked after the bounded attempts, and
// the commits after it go on.
func TestFailingCommitIsParkedAndLaterOnesGoOn(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	c.start(t, "a", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	// A port on a network that was never made: its switch never comes.
	_, err := c.ports.Create(c.ctx, port3, port.Create{ID: port3, Network: net2, Project: "p1", MAC: "fa:16:3e:00:00:03", At: time.Now()}, meta())
	must(t, err)
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	eventually(t, "port 1 after the failing one", 15*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
	p := c.parked(t)
	if len(p) != 1 || !strings.Contains(p[0], "port/"+port3) || !strings.Contains(p[0], "not in the northbound database") {
		t.Errorf("parked = %q, want port 3's commit, its switch missing", p)
	}
}

// proxy forwards a unix socket to the NB's, until Cut: a network
// partition between one adapter and the NB.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) (*proxy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nb-proxy.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p, "unix:" + path
}

// Cut closes the listener and every connection.
func (p *proxy) Cut() {
	err := p.ln.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// The holder cut off from the NB (but not from NATS) gives the lease up
// after NBDownLimit, and a replica that reaches the NB takes over.
func TestHolderCutOffFromTheNBLetsAnotherWrite(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	px, via := newProxy(t, c.srv.NBSocket)
	a := c.startWith(t, "a", via, func(s *nbsync.Syncer) { s.NBDownLimit = time.Second })
	eventually(t, "a active", 5*time.Second, func() (bool, string) { return a.active(), "" })
	b := c.start(t, "b", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	eventually(t, "switch 1 by a", 10*time.Second, func() (bool, string) {
		out := c.nbctl(t, "ls-list")
		return strings.Contains(out, "keel-"+net1), out
	})

	px.Cut()
	eventually(t, "b takes over from a cut-off a", 10*time.Second, func() (bool, string) { return b.active() && !a.active(), "" })
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	eventually(t, "port 1 by b", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
	if p := c.parked(t); len(p) != 0 {
		t.Errorf("the partition parked commits: %v", p)
	}
}
