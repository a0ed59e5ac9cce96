package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// syncDomains is how many domains the libvirt-sync figure's host holds.
const syncDomains = 1000

// runLibvirtSync times one full observed-state sync of a host holding
// 1,000 servers (the agent reads the host's claims and each server from
// the log, lists and reads every domain from libvirt, and finds nothing to
// report) against the libvirt calls alone (list every domain, read each
// one's state) on the same connection, and measures the heap the agent
// holds for it. The host is libvirt's test driver on a private libvirtd:
// 1,000 real guests do not fit on 2 cores; the event log is the in-memory
// one, reached through the host link over an embedded NATS (as the agent
// reaches keel serve), so the figure is the agent's and the link's cost.
func runLibvirtSync(ctx context.Context, e *benchEnv, res *results) error {
	d, stop, err := lvtest.StartDaemon("")
	if err != nil {
		return fmt.Errorf("a private libvirtd (needs root and libvirt; make deps): %w", err)
	}
	defer func() { _ = stop() }()
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.Socket)))
	if err := l.ConnectToURI(golibvirt.TestDefault); err != nil {
		return err
	}
	defer func() { _ = l.Disconnect() }()
	// The figure spawns nothing through the image cache.
	noImages := func(context.Context, string) (io.ReadCloser, error) { return nil, errors.New("no images here") }
	drv, err := libvirt.New(libvirt.Config{Conn: l, Dir: d.Dir, DomainType: "test", Fetch: noImages})
	if err != nil {
		return err
	}
	log := memlog.New()
	app := commands.NewApp(log)
	// The agent reaches the log through the host link, over an embedded
	// NATS, as it does against keel serve.
	natsDir, err := os.MkdirTemp("", "keelbench-sync-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(natsDir)
	ns, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: natsDir})
	if err != nil {
		return err
	}
	defer ns.Close()
	lctx, cancelLink := context.WithCancel(ctx)
	defer cancelLink()
	local, err := hostlink.StartLocal(lctx, ns.Conn, nil, app, log, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	creds, err := local.Keys.Issue(ctx, "sync-bench") // a libvirt node has credentials of its own
	if err != nil {
		return err
	}
	link := hostlink.NewClient(ns.Conn, creds, slog.New(slog.DiscardHandler))
	m := func(id string) commands.Meta { return commands.Meta{CommandID: id, Actor: domain.Actor{User: "bench"}} }
	fl, err := app.CreateFlavor(ctx, flavor.Spec{Name: "tiny", VCPUs: 1, RAMMiB: 1, DiskGiB: 1}, m("flavor"))
	if err != nil {
		return err
	}
	im, err := app.CreateImage(ctx, image.Spec{Name: "img", DiskFormat: "raw"}, m("image"))
	if err != nil {
		return err
	}
	if _, err := app.Images.Handle(ctx, string(im.State.ID), image.RecordUpload{Object: "o", Size: 1, SHA256: "ab", At: time.Now()}, m("upload")); err != nil {
		return err
	}
	const name = "sync-bench"
	h := agent.Host{Info: agent.HostInfo{Name: name, Driver: "libvirt", VCPUs: 100000, RAMMiB: 100000, DiskGiB: 100000}, Driver: drv}
	ag := &agent.Agent{Name: "bench", Link: link, Hosts: []agent.Host{h}, Log: slog.New(slog.DiscardHandler)}
	if err := ag.Register(ctx); err != nil {
		return err
	}
	start := time.Now()
	for i := range syncDomains {
		res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: fmt.Sprintf("s-%d", i), FlavorID: string(fl.State.ID), ImageID: string(im.State.ID)}, m(fmt.Sprint("create-", i)))
		if err != nil {
			return err
		}
		sid := string(res.State.ID)
		steps := []func() error{
			func() error {
				_, err := app.Hosts.Handle(ctx, commands.HostID(name), host.Claim{Server: sid, Resources: host.Resources{VCPUs: 1, RAMMiB: 1, DiskGiB: 1}, Operation: opID, At: time.Now()}, m("claim-"+sid))
				return err
			},
			func() error {
				_, err := app.Servers.Handle(ctx, sid, server.Schedule{Host: name, Operation: opID, At: time.Now()}, m("schedule-"+sid))
				return err
			},
			func() error {
				_, err := app.Servers.Handle(ctx, sid, server.Report{Host: name, Kind: server.ReportSpawned, At: time.Now()}, m("spawned-"+sid))
				return err
			},
			func() error {
				x, err := libvirt.DomainXML(libvirt.DomainSpec{ID: sid, Name: sid, Type: "test", VCPUs: 1, RAMMiB: 16})
				if err != nil {
					return err
				}
				dom, err := l.DomainDefineXMLFlags(x, 0)
				if err != nil {
					return err
				}
				return l.DomainCreate(dom)
			},
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return fmt.Errorf("server %d: %w", i, err)
			}
		}
	}
	logf("%d servers recorded and their domains running on the test driver in %s", syncDomains, time.Since(start).Round(time.Millisecond))

	var direct, full []time.Duration
	var heap uint64
	for round := range max(e.cfg.Rounds, 3) {
		t0 := time.Now()
		doms, _, err := l.ConnectListAllDomains(1, 0)
		if err != nil {
			return err
		}
		for _, dom := range doms {
			if _, _, err := l.DomainGetState(dom, 0); err != nil {
				return err
			}
		}
		direct = append(direct, time.Since(t0))
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 = time.Now()
		if err := ag.Sync(ctx, h); err != nil {
			return err
		}
		full = append(full, time.Since(t0))
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = max(heap, after.HeapInuse)
		logf("round %d: libvirt calls %s, full sync %s (%d domains)", round+1, direct[round].Round(time.Millisecond), full[round].Round(time.Millisecond), len(doms))
	}
	// A sync that found drift would have written commits: none expected.
	dm, fm := median(direct), median(full)
	res.add("libvirt_full_sync_1000_ms", ms(fm), "ms", 0, float64(fm)/float64(dm))
	res.add("libvirt_list_states_1000_ms", ms(dm), "ms", 0, none)
	// The whole keelbench process's heap after the sync (the in-memory log
	// of 4,000 commits included): an upper bound of the agent's.
	res.add("libvirt_sync_heap_inuse_mib", float64(heap)/(1<<20), "MiB", 1, none)
	return nil
}
