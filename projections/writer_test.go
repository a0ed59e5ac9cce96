package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/projections"
)

// oneByOne hands the log over one commit per batch: nothing can fold.
type oneByOne struct{ eventlog.Follower }

func (o oneByOne) Follow(ctx context.Context, from, to uint64, fn func([]domain.Envelope) error) error {
	return o.Follower.Follow(ctx, from, to, func(batch []domain.Envelope) error {
		for i := range batch {
			if err := fn(batch[i : i+1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Within a batch the Writer folds each row's writes into one statement
// (a server built in one batch is one INSERT, a host's claims one UPDATE of
// its counters). The read model must be the one the commits give applied
// one at a time, whatever the story: builds, failures, rewinds, stops,
// failed actions, deletes, claims and releases, a host removed and
// registered again.
func TestFoldedBatchesGiveTheReadModelOfSingleCommits(t *testing.T) {
	w := newWorld(t)
	w.servers("fold", 30)
	ctx := ctxT(t)
	w.failedActions(ctx)
	w.hostStory(ctx)
	w.interfaceStory(ctx)

	batched := newDB(t)
	r := w.runner(batched)
	stop := start(t, r)
	h := w.caughtUp(r)
	must(t, stop())
	if h < 250 {
		t.Fatalf("only %d commits: too few to fold much", h)
	}

	single := newDB(t)
	r1 := &projections.Runner{Pool: single, Events: oneByOne{w.store}, Projections: projections.All(), Log: quietLog()}
	stop1 := start(t, r1)
	ok, err := r1.WaitFor(ctx, h, 40*time.Second)
	must(t, err)
	if !ok {
		t.Fatalf("one-by-one runner did not reach %d", h)
	}
	must(t, stop1())
	sameTables(t, dump(t, batched), dump(t, single))

	// The story did reach the rows folding touches.
	if n := count(t, batched, `SELECT count(*) FROM hosts WHERE name='h2' AND used_vcpus=4 AND claims=2 AND ratio_cpu=8 AND NOT down`); n != 1 {
		t.Errorf("host h2 is not at 2 claims of 2 vCPUs with ratio 8 and up: %s", dump(t, batched)["hosts"])
	}
	if n := count(t, batched, `SELECT count(*) FROM servers WHERE name='if-1' AND task IS NULL AND reason='no' AND jsonb_array_length(nics)=2
		AND nics->0->>'port_id'='p-0' AND nics->1->>'port_id'='p-b'`); n != 1 {
		t.Errorf("server if-1 does not have the NICs p-0 and p-b: %s", dump(t, batched)["servers"])
	}
	for name, status := range map[string]string{"fa-run": "ACTIVE", "fa-stop": "STOPPED"} {
		if n := count(t, batched, `SELECT count(*) FROM servers WHERE name=$1 AND status=$2 AND reason='hypervisor said no' AND task IS NULL`, name, status); n != 1 {
			t.Errorf("server %s is not %s with the failed action's reason", name, status)
		}
	}
}

// failedActions records a stop that failed on a running server and a start
// that failed on a stopped one.
func (w *world) failedActions(ctx context.Context) {
	w.t.Helper()
	a := w.app
	m := func(what string) commands.Meta {
		return commands.Meta{CommandID: "fa-" + what, Actor: domain.Actor{User: "test"}}
	}
	now := time.Now().UTC()
	for _, name := range []string{"fa-run", "fa-stop"} {
		res, opID, err := a.CreateServer(ctx, commands.CreateServerRequest{Name: name, FlavorID: w.flavorID, ImageID: w.imageID}, m(name+"-create"))
		must(w.t, err)
		sid := string(res.State.ID)
		_, err = a.Servers.Handle(ctx, sid, server.Schedule{Host: "h1", Operation: opID, At: now}, m(name+"-schedule"))
		must(w.t, err)
		_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportSpawned, At: now}, m(name+"-spawned"))
		must(w.t, err)
		action := commands.ActionStop
		if name == "fa-stop" {
			_, _, err = a.ActOnServer(ctx, sid, commands.ActionStop, m(name+"-stop"))
			must(w.t, err)
			_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportStopped, At: now}, m(name+"-stopped"))
			must(w.t, err)
			action = commands.ActionStart
		}
		_, _, err = a.ActOnServer(ctx, sid, action, m(name+"-act"))
		must(w.t, err)
		_, err = a.Servers.Handle(ctx, sid, server.Report{Host: "h1", Kind: server.ReportActionFailed, Reason: "hypervisor said no", At: now}, m(name+"-failed"))
		must(w.t, err)
	}
}

// interfaceStory builds a server with a NIC, attaches two interfaces,
// detaches the first, and fails a third attach.
func (w *world) interfaceStory(ctx context.Context) {
	w.t.Helper()
	a := w.app
	n := 0
	do := func(sid string, c server.Command) {
		w.t.Helper()
		n++
		_, err := a.Servers.Handle(ctx, sid, c, commands.Meta{CommandID: fmt.Sprintf("if-%d", n), Actor: domain.Actor{User: "test"}})
		must(w.t, err)
	}
	now := time.Now().UTC()
	id := commands.DeriveID("if-1")
	opID := func(name string) string { return commands.DeriveID("if-1", name) } // operation ids are UUIDs
	do(id, server.Create{ID: server.ID(id), Name: "if-1", Flavor: server.Flavor{ID: w.flavorID, VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, ImageID: w.imageID,
		Operation: opID("create"), Networks: []string{"net-1"}, At: now})
	do(id, server.SetNICs{Operation: opID("create"), NICs: []server.NIC{{Port: "p-0", Network: "net-1", MAC: "fa:16:3e:00:00:00", IPs: []string{"10.0.0.2"}}}, At: now})
	do(id, server.Schedule{Host: "h1", Operation: opID("create"), At: now})
	do(id, server.Report{Host: "h1", Kind: server.ReportSpawned, At: now})
	attach := func(op, port string, kind server.ReportKind) {
		do(id, server.AttachInterface{Operation: opID(op), Network: "net-2", At: now})
		do(id, server.SetInterfacePort{Operation: opID(op), NIC: server.NIC{Port: port, Network: "net-2", MAC: "fa:16:3e:00:00:0" + port[2:], IPs: []string{"10.0.1.2"}}, At: now})
		do(id, server.Report{Host: "h1", Kind: kind, Port: port, Reason: "no", At: now})
	}
	attach("op-a", "p-a", server.ReportInterfaceAttached)
	attach("op-b", "p-b", server.ReportInterfaceAttached)
	do(id, server.DetachInterface{Operation: opID("op-d"), Port: "p-a", At: now})
	do(id, server.Report{Host: "h1", Kind: server.ReportInterfaceDetached, Port: "p-a", At: now})
	attach("op-c", "p-c", server.ReportInterfaceFailed)
}

// hostStory registers h2, claims and releases on it and changes its state;
// h3 is registered, removed and registered again.
func (w *world) hostStory(ctx context.Context) {
	w.t.Helper()
	n := 0
	do := func(name string, c host.Command) {
		w.t.Helper()
		n++
		id := commands.DeriveID("host", name)
		_, err := w.app.Hosts.Handle(ctx, id, c, commands.Meta{CommandID: fmt.Sprintf("story-%d", n), Actor: domain.Actor{User: "test"}})
		must(w.t, err)
	}
	now := time.Now().UTC()
	reg := func(name string) host.Register {
		return host.Register{ID: commands.DeriveID("host", name), Spec: host.Spec{Name: name, Driver: "fake", VCPUs: 16, RAMMiB: 65536, DiskGiB: 500}, At: now}
	}
	two := host.Resources{VCPUs: 2, RAMMiB: 1024, DiskGiB: 10}
	do("h2", reg("h2"))
	for i := range 3 {
		do("h2", host.Claim{Server: commands.DeriveID("story", fmt.Sprint(i)), Resources: two, Operation: "op", At: now})
	}
	do("h2", host.Disable{Reason: "firmware", At: now})
	do("h2", host.Release{Server: commands.DeriveID("story", "1"), Reason: "done", At: now})
	do("h2", host.Enable{At: now})
	do("h2", host.SetMaintenance{On: true, Reason: "disk", At: now})
	do("h2", host.SetMaintenance{On: false, At: now})
	cpu := 8.0
	do("h2", host.SetRatios{Ratios: host.RatiosPatch{CPU: &cpu}, At: now})
	do("h2", host.MarkDown{LastSeen: now, At: now})
	do("h2", host.MarkUp{At: now})
	do("h3", reg("h3"))
	do("h3", host.Claim{Server: commands.DeriveID("story", "h3"), Resources: two, Operation: "op", At: now})
	do("h3", host.Release{Server: commands.DeriveID("story", "h3"), Reason: "done", At: now})
	do("h3", host.Remove{At: now})
	do("h3", reg("h3"))
	do("h3", host.Claim{Server: commands.DeriveID("story", "h3b"), Resources: two, Operation: "op", At: now})
}
