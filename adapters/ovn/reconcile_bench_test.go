package ovn_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/domain/port"
)

var reconcilePorts = flag.Int("reconcile-ports", 10000, "ports in BenchmarkReconcile's desired state (100 per network)")

// portsPerNetwork spreads the ports over networks of this size, as a cloud
// would (a switch's ports column is resent whole on every change).
const portsPerNetwork = 100

// BenchmarkReconcile measures a full Reconcile over -reconcile-ports ports
// (default 10,000; networks of 100 ports, each with a /24 subnet with DHCP;
// every port with port security, so in keel_drop) on a private
// ovsdb-server. The first Reconcile, from an empty NB, is the setup and is
// reported as cold_s. Then each op times: a clean Reconcile (everything in
// place: no transaction), a Reconcile after 1 % of the LSPs were deleted
// behind Keel's back (it repairs them), and the baseline: reading every
// LSP from a raw libovsdb cache and comparing its addresses with a map,
// the least a check of every port costs. Ratios are against the baseline.
func BenchmarkReconcile(b *testing.B) {
	n := *reconcilePorts
	srv := ovntest.Start(b)
	ctx := context.Background()
	c, err := ovn.Dial(ctx, srv.NB, ovn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	d := benchDesired(n)
	began := time.Now()
	if rep, err := c.Reconcile(ctx, d); err != nil || rep.Repaired[ovn.KindPort] != n {
		b.Fatalf("cold reconcile: %v, %+v", err, rep)
	}
	cold := time.Since(began)
	raw := rawLSPClient(b, srv.NB)
	want := map[string]string{}
	for _, p := range d.Ports {
		want[string(p.ID)] = p.MAC + " " + p.FixedIPs[0].IP
	}
	drift := max(n/100, 1)

	b.ResetTimer()
	var clean, repair, base time.Duration
	for i := range b.N {
		began = time.Now()
		rep, err := c.Reconcile(ctx, d)
		clean += time.Since(began)
		if err != nil || rep.Changed() {
			b.Fatalf("clean reconcile: %v, %+v", err, rep)
		}
		b.StopTimer()
		deleteLSPs(b, raw, d.Ports, i, drift)
		b.StartTimer()
		began = time.Now()
		rep, err = c.Reconcile(ctx, d)
		repair += time.Since(began)
		if err != nil || rep.Repaired[ovn.KindPort] != drift {
			b.Fatalf("repair reconcile: %v, %+v, want %d ports repaired", err, rep, drift)
		}
		began = time.Now()
		checkLSPs(b, raw, want)
		base += time.Since(began)
	}
	b.StopTimer()
	ops := float64(b.N)
	b.ReportMetric(cold.Seconds(), "cold_s")
	b.ReportMetric(clean.Seconds()/ops, "clean_s")
	b.ReportMetric(repair.Seconds()/ops, "repair_s")
	b.ReportMetric(base.Seconds()/ops, "baseline_s")
	b.ReportMetric(clean.Seconds()/base.Seconds(), "clean_ratio")
}

// benchDesired is n ports on networks of portsPerNetwork.
func benchDesired(n int) ovn.Desired {
	var d ovn.Desired
	for i := range n {
		k := i / portsPerNetwork
		netID, subID := fmt.Sprintf("bnet-%04d", k), fmt.Sprintf("bsub-%04d", k)
		if i%portsPerNetwork == 0 {
			nw := net(netID, "p1")
			nw.Subnets = []string{subID}
			d.Networks = append(d.Networks, nw)
			d.Subnets = append(d.Subnets, sub(subID, netID, "p1", fmt.Sprintf("10.%d.%d.0/24", k/256, k%256), fmt.Sprintf("10.%d.%d.1", k/256, k%256)))
		}
		ip := fmt.Sprintf("10.%d.%d.%d", k/256, k%256, 10+i%portsPerNetwork)
		d.Ports = append(d.Ports, vmPort(fmt.Sprintf("bport-%06d", i), netID, subID, macOf(i), ip))
	}
	return d
}

func rawLSPClient(b *testing.B, endpoint string) client.Client {
	c := rawClient(b, endpoint)
	if _, err := c.Monitor(context.Background(), c.NewMonitor(client.WithTable(&nbdb.LogicalSwitchPort{}))); err != nil {
		b.Fatal(err)
	}
	return c
}

// deleteLSPs removes count of the ports' LSPs from their switches (the NB
// drops the rows), in one raw transaction: drift behind Keel's back.
func deleteLSPs(b *testing.B, c client.Client, ports []port.State, round, count int) {
	ctx := context.Background()
	var ops []ovsdb.Operation
	for j := range count {
		p := ports[(round*count+j*97)%len(ports)]
		lsp := &nbdb.LogicalSwitchPort{Name: string(p.ID)}
		if err := c.Get(ctx, lsp); err != nil {
			b.Fatalf("get %s: %v", p.ID, err)
		}
		var switches []nbdb.LogicalSwitch
		err := c.WhereCache(func(ls *nbdb.LogicalSwitch) bool { return slices.Contains(ls.Ports, lsp.UUID) }).List(ctx, &switches)
		if err != nil || len(switches) != 1 {
			b.Fatalf("switch of %s: %v (%d)", p.ID, err, len(switches))
		}
		ls := &switches[0]
		mut, err := c.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{lsp.UUID}})
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, mut...)
	}
	res, err := c.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil {
		b.Fatal(err)
	}
	// Wait until the adapter's cache could have seen it too: ours has.
	for j := range count {
		p := ports[(round*count+j*97)%len(ports)]
		for c.Get(ctx, &nbdb.LogicalSwitchPort{Name: string(p.ID)}) == nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// checkLSPs reads every LSP from the cache and compares its addresses.
func checkLSPs(b *testing.B, c client.Client, want map[string]string) {
	var lsps []nbdb.LogicalSwitchPort
	if err := c.List(context.Background(), &lsps); err != nil {
		b.Fatal(err)
	}
	found := 0
	for _, l := range lsps {
		if w, ok := want[l.Name]; ok && len(l.Addresses) == 1 && l.Addresses[0] == w {
			found++
		}
	}
	if found != len(want) {
		b.Fatalf("baseline found %d of %d ports in place", found, len(want))
	}
}
