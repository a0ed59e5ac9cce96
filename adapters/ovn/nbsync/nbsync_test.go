package nbsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
	"github.com/keel-cloud/keel/eventlog"
)

// cloud is a real event log (embedded JetStream) with the networking
// command handlers on it, and a private NB and SB ovsdb-server.
type cloud struct {
	ctx     context.Context
	store   *keeljs.Store
	srv     *ovntest.Servers
	leases  *keeljs.Leases
	lot     *keeljs.ParkingLot
	nets    *commands.Handler[network.State, network.Command]
	subnets *commands.Handler[subnet.State, subnet.Command]
	groups  *commands.Handler[secgroup.State, secgroup.Command]
	ports   *commands.Handler[port.State, port.Command]
}

func newCloud(t *testing.T, leaseTTL time.Duration) *cloud {
	t.Helper()
	_, store := jstest.Store(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	leases, err := keeljs.OpenLeases(ctx, store.JS, leaseTTL, 1)
	if err != nil {
		t.Fatal(err)
	}
	lot, err := store.ParkingLot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &cloud{ctx: ctx, store: store, srv: ovntest.Start(t), leases: leases, lot: lot,
		nets: commands.New(store, network.Decider, 0), subnets: commands.New(store, subnet.Decider, 0),
		groups: commands.New(store, secgroup.Decider, 0), ports: commands.New(store, port.Decider, 0)}
}

// adapter is one keel serve's network adapter: a syncer with its own NB
// connection.
type adapter struct {
	s       *nbsync.Syncer
	nb      *ovn.Client
	metrics *nbsync.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
}

func (c *cloud) start(t *testing.T, holder string, interval time.Duration) *adapter {
	t.Helper()
	return c.startWith(t, holder, c.srv.NB, func(s *nbsync.Syncer) { s.Interval = interval })
}

// startWith starts an adapter on NB endpoint nb, its syncer changed by
// tweak before it runs. Its commits are parked after 2 failed attempts.
func (c *cloud) startWith(t *testing.T, holder, endpoint string, tweak func(*nbsync.Syncer)) *adapter {
	t.Helper()
	nb, err := ovn.Dial(c.ctx, endpoint, ovn.Options{ReconnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a := &adapter{nb: nb, metrics: nbsync.NewMetrics(), done: make(chan struct{})}
	a.s = &nbsync.Syncer{NB: nb, Log: c.store, Leases: c.leases, Holder: holder, Interval: time.Hour, Metrics: a.metrics,
		Subs: &eventlog.Parking{Subscriber: c.store, Lot: c.lot, Commits: c.store, MaxAttempts: 2, After: -1, Poll: time.Hour}}
	tweak(a.s)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { defer close(a.done); a.s.Run(ctx) }()
	t.Cleanup(a.stop)
	return a
}

// stop stops the adapter as keel serve's shutdown does (the lease is
// released) and closes its NB connection.
func (a *adapter) stop() {
	a.cancel()
	<-a.done
	a.nb.Close()
}

func (a *adapter) active() bool { return testutil.ToFloat64(a.metrics.Active) == 1 }

func meta() commands.Meta {
	return commands.Meta{CommandID: uuid.NewString(), Actor: domain.Actor{User: "test"}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// network makes a network with one /24 subnet whose gateway is .1.
func (c *cloud) network(t *testing.T, id, sub, cidr string) {
	t.Helper()
	at := time.Now()
	_, err := c.nets.Create(c.ctx, id, network.Create{ID: network.ID(id), Project: "p1", Name: "net-" + id[:4], At: at}, meta())
	must(t, err)
	_, err = c.nets.Handle(c.ctx, id, network.AddSubnet{Subnet: sub, At: at}, meta())
	must(t, err)
	_, err = c.subnets.Create(c.ctx, sub, subnet.Create{ID: subnet.ID(sub), Network: id, Project: "p1", CIDR: cidr, At: at}, meta())
	must(t, err)
}

// dropNetwork deletes the subnet and then the network, as the commands
// layer does.
func (c *cloud) dropNetwork(t *testing.T, id, sub string) {
	t.Helper()
	_, err := c.subnets.Handle(c.ctx, sub, subnet.Delete{At: time.Now()}, meta())
	must(t, err)
	_, err = c.nets.Handle(c.ctx, id, network.RemoveSubnet{Subnet: sub, At: time.Now()}, meta())
	must(t, err)
	_, err = c.nets.Handle(c.ctx, id, network.Delete{At: time.Now()}, meta())
	must(t, err)
}

// port allocates ip on sub and makes a server's port with it.
func (c *cloud) port(t *testing.T, id, net, sub, mac, ip string, groups ...string) {
	t.Helper()
	_, err := c.subnets.Handle(c.ctx, sub, subnet.Allocate{Key: id, IP: ip, At: time.Now()}, meta())
	must(t, err)
	_, err = c.ports.Create(c.ctx, id, port.Create{ID: port.ID(id), Network: net, Project: "p1", MAC: mac,
		FixedIPs: []port.FixedIP{{Subnet: sub, IP: ip}}, SecurityGroups: groups, DeviceOwner: port.OwnerServer,
		DeviceID: uuid.NewString(), At: time.Now()}, meta())
	must(t, err)
}

func (c *cloud) dropPort(t *testing.T, id, sub, ip string) {
	t.Helper()
	// As the server's saga does: the port is a server's NIC.
	_, err := c.ports.Handle(c.ctx, id, port.Delete{ByOwner: true, At: time.Now()}, meta())
	must(t, err)
	_, err = c.subnets.Handle(c.ctx, sub, subnet.Release{Key: id, IP: ip, At: time.Now()}, meta())
	must(t, err)
}

func (c *cloud) group(t *testing.T, id string) {
	t.Helper()
	_, err := c.groups.Create(c.ctx, id, secgroup.Create{ID: secgroup.ID(id), Project: "p1", Name: "web", At: time.Now(),
		Rules: []secgroup.Rule{{ID: "ssh", Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: secgroup.TCP,
			PortMin: 22, PortMax: 22, RemoteCIDR: "0.0.0.0/0"}}}, meta())
	must(t, err)
}

func (c *cloud) nbctl(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(c.srv.NBCtl(t, args...))
}

// eventually polls check until it reports done, or fails t after within
// with what check last said.
func eventually(t *testing.T, what string, within time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, said := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s; last seen:\n%s", within, what, said)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasPort says whether the port's LSP is on the network's switch with the
// addresses wanted.
func (c *cloud) hasPort(t *testing.T, net, id, addr string) func() (bool, string) {
	return func() (bool, string) {
		list := c.nbctl(t, "--bare", "--columns=name", "find", "Logical_Switch", "name=keel-"+net)
		if list == "" {
			return false, "no switch keel-" + net
		}
		lsps := c.nbctl(t, "lsp-list", "keel-"+net)
		if !strings.Contains(lsps, "("+id+")") {
			return false, lsps
		}
		got := c.nbctl(t, "lsp-get-addresses", id)
		return got == addr, got
	}
}

// keelRows lists the rows that carry a Keel id, table by table ("" when
// none), but keel_drop and its ACLs (keel:owner=keel), which all groups
// share and which stay, as Neutron's neutron_pg_drop does.
func (c *cloud) keelRows(t *testing.T) string {
	var out []string
	for _, table := range []string{"Logical_Switch", "Logical_Switch_Port", "DHCP_Options", "Port_Group", "ACL"} {
		for _, row := range strings.Split(c.nbctl(t, "--bare", "--columns=external_ids", "list", table), "\n") {
			if strings.Contains(row, "keel:") && !strings.Contains(row, "keel:owner=keel") {
				out = append(out, table+": "+row)
			}
		}
	}
	return strings.Join(out, "\n")
}

const (
	net1  = "0a000000-0000-4000-8000-00000000000a"
	net2  = "0b000000-0000-4000-8000-00000000000b"
	sub1  = "5a000000-0000-4000-8000-00000000000a"
	sub2  = "5b000000-0000-4000-8000-00000000000b"
	port1 = "9a000000-0000-4000-8000-00000000000a"
	port2 = "9b000000-0000-4000-8000-00000000000b"
	port3 = "9c000000-0000-4000-8000-00000000000c"
	grp1  = "6a000000-0000-4000-8000-00000000000a"
)

// Commands on a network, subnet, security group and port produce their NB
// rows; deleting them leaves no row with a Keel id.
func TestCommandsMakeNBRowsAndDeletesLeaveNone(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	c.start(t, "a", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.group(t, grp1)
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10", grp1)

	eventually(t, "port 1 on switch 1", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
	pg := ovn.PortGroupName(grp1)
	eventually(t, "group 1 with its rule and port 1", 5*time.Second, func() (bool, string) {
		acls := c.nbctl(t, "acl-list", pg)
		members := c.nbctl(t, "get", "Port_Group", pg, "ports")
		lsp := c.nbctl(t, "get", "Logical_Switch_Port", port1, "_uuid")
		return strings.Contains(acls, "tcp.dst == 22") && strings.Contains(members, lsp), acls + "\n" + members
	})
	dhcp := c.nbctl(t, "dhcp-options-list")
	if dhcp == "" {
		t.Fatal("no DHCP options for subnet 1")
	}
	if got := c.nbctl(t, "lsp-get-dhcpv4-options", port1); !strings.Contains(got, dhcp) {
		t.Errorf("port 1 dhcpv4 options %q, want %s", got, dhcp)
	}
	if got := c.nbctl(t, "dhcp-options-get-options", dhcp); !strings.Contains(got, "router=10.0.0.1") {
		t.Errorf("dhcp options %q", got)
	}

	c.dropPort(t, port1, sub1, "10.0.0.10")
	_, err := c.groups.Handle(c.ctx, grp1, secgroup.Delete{At: time.Now()}, meta())
	must(t, err)
	c.dropNetwork(t, net1, sub1)
	eventually(t, "no row with a Keel id left", 10*time.Second, func() (bool, string) {
		rows := c.keelRows(t)
		return rows == "", rows
	})
	if got := c.nbctl(t, "--bare", "--columns=ports", "list", "Port_Group", "keel_drop"); got != "" {
		t.Errorf("keel_drop keeps members: %s", got)
	}
}

// A row deleted or altered behind Keel's back comes back at the next
// reconcile, which counts it; a switch without Keel's ids is left alone.
func TestReconcileRestoresRowsChangedBehindKeelsBack(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	a := c.start(t, "a", 500*time.Millisecond)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	c.port(t, port2, net1, sub1, "fa:16:3e:00:00:02", "10.0.0.11")
	eventually(t, "port 2", 10*time.Second, c.hasPort(t, net1, port2, "fa:16:3e:00:00:02 10.0.0.11"))

	c.nbctl(t, "lsp-del", port1)
	c.nbctl(t, "lsp-set-addresses", port2, "fa:16:3e:00:00:02 10.0.0.99")
	c.nbctl(t, "ls-add", "foreign")
	c.nbctl(t, "lsp-add", "foreign", "foreign-port")
	eventually(t, "port 1 back", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
	eventually(t, "port 2 repaired", 5*time.Second, c.hasPort(t, net1, port2, "fa:16:3e:00:00:02 10.0.0.11"))
	if n := testutil.ToFloat64(a.metrics.Repaired.WithLabelValues(ovn.KindPort)); n < 2 {
		t.Errorf("keel_ovn_reconcile_repaired_total{kind=port} = %v, want at least 2", n)
	}
	if got := c.nbctl(t, "lsp-list", "foreign"); !strings.Contains(got, "foreign-port") {
		t.Errorf("foreign switch touched: %q", got)
	}
}

// An adapter that was down while commits landed converges when it starts
// again: what was made is made, what was deleted is gone.
func TestRestartAfterMissedCommitsConverges(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	a := c.start(t, "a", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	eventually(t, "port 1", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
	a.stop()

	c.dropPort(t, port1, sub1, "10.0.0.10")
	c.port(t, port2, net1, sub1, "fa:16:3e:00:00:02", "10.0.0.11")
	c.network(t, net2, sub2, "10.1.0.0/24")
	c.port(t, port3, net2, sub2, "fa:16:3e:00:00:03", "10.1.0.10")
	if got := c.nbctl(t, "lsp-list", "keel-"+net1); strings.Contains(got, port2) || !strings.Contains(got, port1) {
		t.Fatalf("the stopped adapter wrote: %s", got)
	}

	c.start(t, "a", time.Hour)
	eventually(t, "port 2", 10*time.Second, c.hasPort(t, net1, port2, "fa:16:3e:00:00:02 10.0.0.11"))
	eventually(t, "port 3 on network 2", 10*time.Second, c.hasPort(t, net2, port3, "fa:16:3e:00:00:03 10.1.0.10"))
	eventually(t, "port 1 gone", 5*time.Second, func() (bool, string) {
		got := c.nbctl(t, "lsp-list", "keel-"+net1)
		return !strings.Contains(got, port1), got
	})
}

// Two adapters: only the lease holder writes the NB; when it stops, the
// other takes over at once (the lease is released) and writes.
func TestOneActiveAdapterAndTakeoverOnStop(t *testing.T) {
	c := newCloud(t, 2*time.Second)
	a := c.start(t, "a", time.Hour)
	eventually(t, "a active", 5*time.Second, func() (bool, string) { return a.active(), "" })
	b := c.start(t, "b", time.Hour)
	for i := range 3 {
		id := fmt.Sprintf("9%d000000-0000-4000-8000-000000000001", i)
		if i == 0 {
			c.network(t, net1, sub1, "10.0.0.0/24")
		}
		c.port(t, id, net1, sub1, fmt.Sprintf("fa:16:3e:00:01:%02x", i), fmt.Sprintf("10.0.0.%d", 20+i))
		eventually(t, "port "+id, 10*time.Second, c.hasPort(t, net1, id, fmt.Sprintf("fa:16:3e:00:01:%02x 10.0.0.%d", i, 20+i)))
	}
	if b.active() || b.nb.Transactions() != 0 {
		t.Fatalf("standby b is active %v and wrote %d transactions", b.active(), b.nb.Transactions())
	}
	if a.nb.Transactions() == 0 {
		t.Fatal("active a wrote nothing")
	}

	stopped := time.Now()
	a.stop()
	eventually(t, "b active", 2*time.Second, func() (bool, string) { return b.active(), "" })
	t.Logf("b took over %v after a stopped", time.Since(stopped).Round(time.Millisecond))
	c.port(t, port3, net1, sub1, "fa:16:3e:00:00:03", "10.0.0.30")
	eventually(t, "port 3 written by b", 10*time.Second, c.hasPort(t, net1, port3, "fa:16:3e:00:00:03 10.0.0.30"))
	if b.nb.Transactions() == 0 {
		t.Error("b is active but wrote nothing")
	}
}

// A holder that dies without releasing the lease keeps the other out until
// the lease's TTL runs out; then the other takes over and catches up.
func TestTakeoverAfterTheHolderDies(t *testing.T) {
	ttl := 2 * time.Second
	c := newCloud(t, ttl)
	// A process that took the lease and died: nobody renews it.
	if _, ok, err := c.leases.Acquire(c.ctx, nbsync.LeaseName, "dead"); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	died := time.Now()
	b := c.start(t, "b", time.Hour)
	c.network(t, net1, sub1, "10.0.0.0/24")
	c.port(t, port1, net1, sub1, "fa:16:3e:00:00:01", "10.0.0.10")
	eventually(t, "b takes over", ttl+3*time.Second, func() (bool, string) { return b.active(), "" })
	if waited := time.Since(died); waited < ttl*4/5 {
		t.Errorf("b took over %v after the holder died, before the lease's TTL %v", waited, ttl)
	}
	eventually(t, "port 1 written by b", 10*time.Second, c.hasPort(t, net1, port1, "fa:16:3e:00:00:01 10.0.0.10"))
}
