package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
)

// runColdLoad measures the load of one long-lived host aggregate by a
// process that has never seen it (a restart): its commits are claims and
// releases (about 200 claims live at a time). The baseline is the full
// replay of the subject by an App without snapshots; the figure is the load
// by an App that restores the KEEL_SNAPSHOTS snapshot and reads the commits
// after it. Both read the same log in the same run; each value is the
// median of several loads, each by a new App.
func runColdLoad(ctx context.Context, e *benchEnv, res *results) error {
	store, err := e.eventStore(ctx, "coldload-jetstream")
	if err != nil {
		return err
	}
	snaps, err := keeljs.OpenSnapshots(ctx, store.JS, 1)
	if err != nil {
		return err
	}
	withSnapshots := func() *commands.App {
		a := newApp(store)
		a.UseSnapshots(snaps, e.log)
		return a
	}
	n := e.cfg.ColdCommits
	id := commands.HostID("coldload-host")
	writer := withSnapshots()
	start := time.Now()
	if err := fillHost(ctx, writer, id, 0, n); err != nil {
		return err
	}
	writer.WaitSnapshots()
	logf("appended %d commits to one host in %s", n, time.Since(start).Round(time.Millisecond))

	name := fmt.Sprintf("host_cold_load_%d", n)
	replay, err := timeLoads(ctx, func() *commands.App { return newApp(store) }, id, n)
	if err != nil {
		return err
	}
	res.add(name+"_replay_ms", replay, "ms", 2, none)
	snap, err := timeLoads(ctx, withSnapshots, id, n)
	if err != nil {
		return err
	}
	res.add(name+"_ms", snap, "ms", 2, snap/replay)

	// The worst case: the most commits after the last snapshot.
	tail := commands.DefaultSnapshotEvery - 1
	if err := fillHost(ctx, writer, id, n, n+tail); err != nil {
		return err
	}
	writer.WaitSnapshots()
	replay, err = timeLoads(ctx, func() *commands.App { return newApp(store) }, id, n+tail)
	if err != nil {
		return err
	}
	logf("full replay of %d commits: %.2f ms", n+tail, replay)
	snap, err = timeLoads(ctx, withSnapshots, id, n+tail)
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("%s_tail%d_ms", name, tail), snap, "ms", 2, snap/replay)
	return nil
}

// fillHost registers host id (at commit 0) and appends claims and releases
// until it has `to` commits.
func fillHost(ctx context.Context, app *commands.App, id string, from, to int) error {
	meta := func(i int) commands.Meta {
		return commands.Meta{CommandID: fmt.Sprintf("coldload/%d", i), Actor: domain.Actor{User: "keelbench"}}
	}
	res := host.Resources{VCPUs: 1, RAMMiB: 512, DiskGiB: 1}
	for i := from; i < to; i++ {
		var cmd host.Command
		switch {
		case i == 0:
			cmd = host.Register{ID: id, Spec: host.Spec{Name: "coldload-host", Driver: "fake", VCPUs: 1 << 20, RAMMiB: 1 << 30, DiskGiB: 1 << 30}, At: time.Now().UTC()}
		case i%2 == 1 || i < 200: // claim server i
			cmd = host.Claim{Server: fmt.Sprintf("s-%d", i), Resources: res, Operation: "op", At: time.Now().UTC()}
		default: // release the server claimed 200 commits ago
			cmd = host.Release{Server: fmt.Sprintf("s-%d", i-199), Reason: "deleted", At: time.Now().UTC()}
		}
		if _, err := app.Hosts.Handle(ctx, id, cmd, meta(i)); err != nil {
			return fmt.Errorf("commit %d: %w", i, err)
		}
	}
	return nil
}

// timeLoads returns the median time, in ms, of loading host id by a new App.
func timeLoads(ctx context.Context, newApp func() *commands.App, id string, version int) (float64, error) {
	var ms []float64
	for range 7 {
		app := newApp()
		start := time.Now()
		_, v, err := app.Hosts.Load(ctx, id)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if v != uint64(version) {
			return 0, fmt.Errorf("loaded version %d, want %d", v, version)
		}
		ms = append(ms, float64(took.Microseconds())/1000)
	}
	slices.Sort(ms)
	return ms[len(ms)/2], nil
}
