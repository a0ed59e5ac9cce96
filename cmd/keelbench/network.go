package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	ovsdbclient "github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// netWorkers are the concurrent API clients of the network figure.
const netWorkers = 16

// runNetwork times port creates through Keel, from POST /v1/ports to the
// logical switch port in the OVN Northbound database (the API, the port's
// quota, its address from the subnet, its commit, the network adapter's
// transaction), against raw libovsdb transactions that insert an
// equivalent switch port into a switch of their own, on the same private
// ovsdb-server, in the same run. Ratio = Keel's rate / the raw rate.
func runNetwork(ctx context.Context, e *benchEnv, res *results) error {
	srv, stop, err := ovntest.StartServers("")
	if err != nil {
		return err
	}
	e.defer_(stop)
	url, _, err := e.database(ctx, "bench_network")
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, node.Config{AdminPassword: adminPassword, Limits: httpapi.Limits{Rate: -1, ProjectOperations: -1},
		DataDir: filepath.Join(e.dir, "node-network"), Listen: "127.0.0.1:0", DatabaseURL: url, Log: e.log,
		OVN: node.OVNConfig{NB: srv.NB, Reconcile: time.Hour}})
	if err != nil {
		return err
	}
	e.defer_(func() error { n.Close(); return nil })
	c, err := newClient(ctx, n.URL, netWorkers)
	if err != nil {
		return err
	}
	ports := e.cfg.NetworkPorts
	if _, err := c.api.Do(ctx, api.Request{Method: http.MethodPut, Path: api.Path(api.Projects, "admin", "quotas"),
		Body: api.QuotasBody{Limits: map[string]int{"ports": ports + 10}}}, nil); err != nil {
		return fmt.Errorf("raise the ports quota: %w", err)
	}
	if _, _, err := api.Create[api.Network](ctx, c.api, api.Networks, api.NetworkBody{Name: "bench"}, api.Opts{}); err != nil {
		return err
	}
	_, sub, err := api.Create[api.Subnet](ctx, c.api, api.Subnets, api.SubnetBody{Network: "bench", CIDR: "10.64.0.0/16"}, api.Opts{})
	if err != nil {
		return err
	}
	nb, err := rawNB(ctx, srv.NB)
	if err != nil {
		return err
	}
	defer nb.Close()
	if out, err := exec.Command("ovn-nbctl", "--db="+srv.NB, "ls-add", "raw").CombinedOutput(); err != nil {
		return fmt.Errorf("ovn-nbctl ls-add raw: %w: %s", err, out)
	}
	// The network's switch is in the NB before the clock starts.
	if err := waitLSPs(ctx, 0, func() bool { return len(switches(nb, "raw")) == 1 && keelSwitches(nb) == 1 }); err != nil {
		return err
	}
	rawSwitch := switches(nb, "raw")[0]

	start := time.Now()
	for i := range ports {
		if err := rawLSP(ctx, nb, rawSwitch, i); err != nil {
			return err
		}
	}
	raw := float64(ports) / time.Since(start).Seconds()
	logf("raw libovsdb: %d switch ports in %s: %.0f/s", ports, time.Since(start).Round(time.Millisecond), raw)

	start = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, netWorkers)
	for range netWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(ports) {
				if _, _, err := api.Create[api.Port](ctx, c.api, api.Ports, api.PortBody{Network: "bench"}, api.Opts{MinSequence: sub.Sequence}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("create a port through Keel: %w", err)
	}
	answered := time.Since(start)
	if err := waitLSPs(ctx, 2*time.Minute, func() bool { return keelLSPs(nb) >= ports }); err != nil {
		return err
	}
	took := time.Since(start)
	keel := float64(ports) / took.Seconds()
	logf("through Keel (%d clients): %d ports answered in %s, all in the NB after %s: %.0f/s", netWorkers, ports,
		answered.Round(time.Millisecond), took.Round(time.Millisecond), keel)
	res.add("network_port_create_per_s", keel, "ports/s", 0, keel/raw)
	res.add("raw_libovsdb_lsp_insert_per_s", raw, "ports/s", 0, none)
	return nil
}

// rawNB is a libovsdb client of the NB with a quiet logger (the default
// logs every operation) that monitors the switches and their ports.
func rawNB(ctx context.Context, endpoint string) (ovsdbclient.Client, error) {
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	quiet := logr.FromSlogHandler(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler())
	c, err := ovsdbclient.NewOVSDBClient(dbModel, ovsdbclient.WithEndpoint(endpoint), ovsdbclient.WithLogger(&quiet))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	if _, err := c.Monitor(ctx, c.NewMonitor(ovsdbclient.WithTable(&nbdb.LogicalSwitch{}), ovsdbclient.WithTable(&nbdb.LogicalSwitchPort{}))); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// rawLSP inserts a switch port with addresses and port security into the
// switch in one transaction: the least one port costs.
func rawLSP(ctx context.Context, c ovsdbclient.Client, lsUUID string, i int) error {
	addr := fmt.Sprintf("fa:16:3f:%02x:%02x:%02x 10.65.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff, i>>8&0xff, i&0xff)
	lsp := &nbdb.LogicalSwitchPort{UUID: "new", Name: fmt.Sprintf("raw-%08d", i), Addresses: []string{addr},
		PortSecurity: []string{addr}, ExternalIDs: map[string]string{"bench": "raw"}}
	ops, err := c.Create(lsp)
	if err != nil {
		return err
	}
	ls := &nbdb.LogicalSwitch{UUID: lsUUID}
	mut, err := c.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"new"}})
	if err != nil {
		return err
	}
	ops = append(ops, mut...)
	r, err := c.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(r, ops)
	}
	return err
}

// switches are the UUIDs of the switches named name.
func switches(c ovsdbclient.Client, name string) []string {
	var ls []nbdb.LogicalSwitch
	_ = c.WhereCache(func(s *nbdb.LogicalSwitch) bool { return s.Name == name }).List(context.Background(), &ls)
	out := make([]string, len(ls))
	for i, s := range ls {
		out[i] = s.UUID
	}
	return out
}

// keelSwitches counts the switches Keel wrote.
func keelSwitches(c ovsdbclient.Client) int {
	var ls []nbdb.LogicalSwitch
	_ = c.WhereCache(func(s *nbdb.LogicalSwitch) bool { return s.ExternalIDs[ovn.KeyNetwork] != "" }).List(context.Background(), &ls)
	return len(ls)
}

// keelLSPs counts the switch ports Keel wrote.
func keelLSPs(c ovsdbclient.Client) int {
	var lsps []nbdb.LogicalSwitchPort
	_ = c.WhereCache(func(p *nbdb.LogicalSwitchPort) bool { return p.ExternalIDs[ovn.KeyPort] != "" }).List(context.Background(), &lsps)
	return len(lsps)
}

// waitLSPs polls done every 5 ms until it holds or limit passes (0: a
// minute).
func waitLSPs(ctx context.Context, limit time.Duration, done func() bool) error {
	if limit == 0 {
		limit = time.Minute
	}
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("the NB did not get there within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
