package ovn_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/domain/subnet"
)

// BenchmarkPortCreate measures EnsurePort for new ports (LSP with
// addresses, port security, DHCP options, keel_drop membership: cache
// reads, then one transaction) against raw libovsdb transactions that
// insert an equivalent LSP into a switch, b.N of each, alternating, on the
// same ovsdb-server. It reports both rates and the ratio of their times
// (keel/raw: above 1 is what the adapter costs beyond the bare write).
func BenchmarkPortCreate(b *testing.B) {
	srv := ovntest.Start(b)
	ctx := context.Background()
	c, err := ovn.Dial(ctx, srv.NB, ovn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.EnsureNetwork(ctx, net(netA, "p1"), []subnet.State{sub(subA, netA, "p1", "10.0.0.0/16", "10.0.0.1")}); err != nil {
		b.Fatal(err)
	}
	// The baseline writes to a switch of its own, so that both switches
	// grow alike; the two alternate, so both see the same server state.
	srv.NBCtl(b, "ls-add", "raw")
	raw := rawClient(b, srv.NB)
	var ls []nbdb.LogicalSwitch
	if err := raw.WhereCache(func(s *nbdb.LogicalSwitch) bool { return s.Name == "raw" }).List(ctx, &ls); err != nil || len(ls) != 1 {
		b.Fatalf("find the raw switch: %v (%d)", err, len(ls))
	}

	b.ResetTimer()
	var keel, base time.Duration
	for i := range b.N {
		p := vmPort(fmt.Sprintf("keel-%08d", i), netA, subA, macOf(i), ipOf(i))
		start := time.Now()
		if err := c.EnsurePort(ctx, p); err != nil {
			b.Fatal(err)
		}
		keel += time.Since(start)
		start = time.Now()
		rawInsert(b, raw, ls[0].UUID, i)
		base += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/keel.Seconds(), "ensure/s")
	b.ReportMetric(float64(b.N)/base.Seconds(), "raw/s")
	b.ReportMetric(keel.Seconds()/base.Seconds(), "ratio")
}

func rawClient(b *testing.B, endpoint string) client.Client {
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		b.Fatal(err)
	}
	// A quiet logger, as the adapter's: libovsdb's default logs every
	// operation and would make the baseline slow.
	quiet := logr.FromSlogHandler(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler())
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&quiet))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Monitor(context.Background(), c.NewMonitor(client.WithTable(&nbdb.LogicalSwitch{}))); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// rawInsert creates an LSP like EnsurePort's (no DHCP, no port group) and
// adds it to the switch: the least one port costs.
func rawInsert(b *testing.B, c client.Client, lsUUID string, i int) {
	addr := macOf(i+1<<20) + " " + ipOf(i)
	lsp := &nbdb.LogicalSwitchPort{UUID: "new", Name: fmt.Sprintf("raw-%08d", i), Addresses: []string{addr},
		PortSecurity: []string{addr}, ExternalIDs: map[string]string{"bench": "raw"}}
	ops, err := c.Create(lsp)
	if err != nil {
		b.Fatal(err)
	}
	ls := &nbdb.LogicalSwitch{UUID: lsUUID}
	mut, err := c.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"new"}})
	if err != nil {
		b.Fatal(err)
	}
	ops = append(ops, mut...)
	res, err := c.Transact(context.Background(), ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func macOf(i int) string {
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
}

func ipOf(i int) string { return fmt.Sprintf("10.0.%d.%d", (i+2)>>8&0xff, (i+2)&0xff) }
