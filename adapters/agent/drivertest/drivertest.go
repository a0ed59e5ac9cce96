// Package drivertest is the contract every agent.Driver passes: the fake
// driver of simulated hosts and the libvirt driver run the same suite, so
// that what the agent relies on holds for both.
package drivertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
)

// Harness is what the suite needs of a driver under test.
type Harness struct {
	// New returns a driver of an empty host (cleaned up by t.Cleanup).
	New func(t *testing.T) agent.Driver
	// Spec returns a spawnable server with the given id.
	Spec func(t *testing.T, id string) agent.ServerSpec
	// Settle is how long a power change may take to be observed (default 10 s).
	Settle time.Duration
}

// Run runs the contract against h.
func Run(t *testing.T, h Harness) {
	if h.Settle == 0 {
		h.Settle = 10 * time.Second
	}
	t.Run("SpawnRunsAndIsIdempotent", func(t *testing.T) {
		d, ctx := h.New(t), ctxT(t)
		s := h.Spec(t, uuid.NewString())
		must(t, d.Spawn(ctx, s))
		h.await(t, d, s.ID, agent.Running)
		must(t, d.Spawn(ctx, s)) // a retried spawn finds it done
		h.await(t, d, s.ID, agent.Running)
		if n := count(t, d, s.ID); n != 1 {
			t.Fatalf("a spawn done twice left %d servers with id %s", n, s.ID)
		}
	})
	t.Run("PowerOffOnAndReboot", func(t *testing.T) {
		d, ctx := h.New(t), ctxT(t)
		s := h.Spec(t, uuid.NewString())
		must(t, d.Spawn(ctx, s))
		must(t, d.PowerOff(ctx, s.ID))
		h.await(t, d, s.ID, agent.Shutoff)
		must(t, d.PowerOff(ctx, s.ID)) // already off
		h.await(t, d, s.ID, agent.Shutoff)
		must(t, d.PowerOn(ctx, s.ID))
		h.await(t, d, s.ID, agent.Running)
		must(t, d.PowerOn(ctx, s.ID)) // already on
		must(t, d.Reboot(ctx, s.ID, false))
		h.await(t, d, s.ID, agent.Running)
		must(t, d.Reboot(ctx, s.ID, true))
		h.await(t, d, s.ID, agent.Running)
		must(t, d.PowerOff(ctx, s.ID))
		h.await(t, d, s.ID, agent.Shutoff)
		must(t, d.Reboot(ctx, s.ID, false)) // a stopped server is started
		h.await(t, d, s.ID, agent.Running)
	})
	t.Run("DestroyLeavesNothingAndIsIdempotent", func(t *testing.T) {
		d, ctx := h.New(t), ctxT(t)
		s := h.Spec(t, uuid.NewString())
		other := h.Spec(t, uuid.NewString())
		must(t, d.Spawn(ctx, s))
		must(t, d.Spawn(ctx, other))
		must(t, d.Destroy(ctx, s.ID))
		if n := count(t, d, s.ID); n != 0 {
			t.Fatalf("destroyed server %s still observed", s.ID)
		}
		must(t, d.Destroy(ctx, s.ID))             // again
		must(t, d.Destroy(ctx, uuid.NewString())) // never there
		h.await(t, d, other.ID, agent.Running)    // the other one is untouched
	})
	t.Run("NICsAttachAndDetachIdempotently", func(t *testing.T) { h.nics(t) })
	t.Run("CallsOnAMissingServerSaySo", func(t *testing.T) {
		d, ctx := h.New(t), ctxT(t)
		id := uuid.NewString()
		nic := agent.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:01"}
		for name, call := range map[string]func(context.Context, string) error{
			"PowerOn": d.PowerOn, "PowerOff": d.PowerOff,
			"Reboot":    func(ctx context.Context, id string) error { return d.Reboot(ctx, id, false) },
			"AttachNIC": func(ctx context.Context, id string) error { return d.AttachNIC(ctx, id, nic) },
			"DetachNIC": func(ctx context.Context, id string) error { return d.DetachNIC(ctx, id, nic) },
		} {
			if err := call(ctx, id); !errors.Is(err, agent.ErrNoServer) {
				t.Errorf("%s of a missing server = %v; want agent.ErrNoServer", name, err)
			}
		}
	})
}

// nics: a NIC attached to a running server is in its definition, once
// however often it is attached; one attached to a stopped server is there
// after it starts; a detached one is gone, however often it is detached.
func (h Harness) nics(t *testing.T) {
	d, ctx := h.New(t), ctxT(t)
	lister, ok := d.(agent.NICLister)
	if !ok {
		t.Fatalf("%T does not list NICs (agent.NICLister)", d)
	}
	s := h.Spec(t, uuid.NewString())
	must(t, d.Spawn(ctx, s))
	h.await(t, d, s.ID, agent.Running)
	a := agent.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0a"}
	b := agent.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0b"}
	want := func(want ...agent.NIC) {
		t.Helper()
		got, err := lister.NICs(ctx, s.ID)
		must(t, err)
		if !slices.Equal(got, want) {
			t.Fatalf("NICs %+v; want %+v", got, want)
		}
	}
	must(t, d.AttachNIC(ctx, s.ID, a))
	must(t, d.AttachNIC(ctx, s.ID, a)) // a retry
	want(a)
	must(t, d.PowerOff(ctx, s.ID))
	h.await(t, d, s.ID, agent.Shutoff)
	must(t, d.AttachNIC(ctx, s.ID, b))
	want(a, b)
	must(t, d.PowerOn(ctx, s.ID))
	h.await(t, d, s.ID, agent.Running)
	want(a, b)
	must(t, d.DetachNIC(ctx, s.ID, a))
	must(t, d.DetachNIC(ctx, s.ID, a)) // a retry
	want(b)
	must(t, d.PowerOff(ctx, s.ID))
	h.await(t, d, s.ID, agent.Shutoff)
	must(t, d.DetachNIC(ctx, s.ID, b))
	want()
}

// await waits until d observes server id in power state p.
func (h Harness) await(t *testing.T, d agent.Driver, id string, p agent.Power) {
	t.Helper()
	deadline := time.Now().Add(h.Settle)
	var last []agent.Observed
	for {
		obs, err := d.Observe(ctxT(t))
		must(t, err)
		for _, o := range obs {
			if o.ID == id && o.Power == p {
				return
			}
		}
		last = obs
		if time.Now().After(deadline) {
			t.Fatalf("server %s not %s within %s; observed %+v", id, p, h.Settle, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func count(t *testing.T, d agent.Driver, id string) int {
	t.Helper()
	obs, err := d.Observe(ctxT(t))
	must(t, err)
	n := 0
	for _, o := range obs {
		if o.ID == id {
			n++
		}
	}
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
