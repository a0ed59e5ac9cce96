package nbsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/subnet"
)

// commit is the envelope of events on one aggregate at sequence seq.
func commit(t *testing.T, seq uint64, typ, id string, events ...domain.Event) domain.Envelope {
	t.Helper()
	raw, err := domain.Encode(events)
	if err != nil {
		t.Fatal(err)
	}
	return domain.Envelope{Sequence: seq, AggregateType: typ, AggregateID: id, Events: raw}
}

func TestModelFoldsLiveResourcesAndDropsDeletedOnes(t *testing.T) {
	at := time.Unix(1, 0)
	m := nbsync.NewModel()
	err := m.Apply([]domain.Envelope{
		commit(t, 1, network.AggregateType, "n1", &network.Created{ID: "n1", Project: "p", Kind: network.Overlay, MTU: 1442, CreatedAt: at},
			&network.SubnetAdded{Subnet: "s1", At: at}, &network.SubnetAdded{Subnet: "s2", At: at}),
		commit(t, 2, "server", "x"), // another aggregate: skipped
		commit(t, 3, subnet.AggregateType, "s1", &subnet.Created{ID: "s1", Network: "n1", Project: "p", CIDR: "10.0.0.0/24", DHCP: true, CreatedAt: at}),
		commit(t, 4, port.AggregateType, "p1", &port.Created{ID: "p1", Network: "n1", Project: "p", MAC: "fa:16:3e:00:00:01", CreatedAt: at}),
		commit(t, 5, port.AggregateType, "p2", &port.Created{ID: "p2", Network: "n1", Project: "p", MAC: "fa:16:3e:00:00:02",
			DeviceOwner: port.OwnerRouterInterface, CreatedAt: at}),
		commit(t, 6, router.AggregateType, "r1", &router.Created{ID: "r1", Project: "p", At: at},
			&router.InterfaceAdded{Interface: router.Interface{Subnet: "s1", CIDR: "10.0.0.0/24", Port: "p2", IP: "10.0.0.1"}, At: at}),
		commit(t, 7, port.AggregateType, "p1", &port.Deleted{At: at}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Sequence() != 7 {
		t.Errorf("sequence %d, want 7", m.Sequence())
	}
	n, ok := m.Network("n1")
	if !ok {
		t.Fatal("network n1 missing")
	}
	// s2 was added to the network but never made: only s1 is a subnet.
	if subs := m.SubnetsOf(n); len(subs) != 1 || subs[0].ID != "s1" {
		t.Errorf("subnets of n1 = %+v, want s1 only", subs)
	}
	if _, ok := m.Port("p1"); ok {
		t.Error("deleted port p1 still in the model")
	}
	d := m.Desired(ovn.RouterOptions{GatewayChassis: "gw1"})
	if len(d.Networks) != 1 || len(d.Subnets) != 1 || len(d.Ports) != 1 || len(d.Routers) != 1 {
		t.Fatalf("desired = %+v", d)
	}
	if r := d.Routers[0]; len(r.Ports) != 1 || r.Ports[0].ID != "p2" || r.Options.GatewayChassis != "gw1" {
		t.Errorf("router = %+v, want its interface port p2 and the options", r)
	}
	// A batch handed over again changes nothing.
	if err := m.Apply([]domain.Envelope{commit(t, 4, port.AggregateType, "p1", &port.Created{ID: "p1", Network: "n1", Project: "p", CreatedAt: at})}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Port("p1"); ok {
		t.Error("a commit handed over twice brought p1 back")
	}
}

func TestModelRefusesUndecodableCommitsAndWaits(t *testing.T) {
	m := nbsync.NewModel()
	bad := domain.Envelope{Sequence: 1, AggregateType: port.AggregateType, AggregateID: "p",
		Events: []domain.RawEvent{{Type: "port.exploded", Schema: 1, Data: []byte(`{}`)}}}
	if err := m.Apply([]domain.Envelope{bad}); err == nil {
		t.Fatal("unknown event type folded without an error")
	}
	if m.Sequence() != 0 {
		t.Errorf("sequence moved past a commit it could not fold: %d", m.Sequence())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.WaitFor(ctx, 1); err == nil {
		t.Error("WaitFor(1) returned before commit 1 was folded")
	}
	next := commit(t, 1, "server", "x")
	go func() { _ = m.Apply([]domain.Envelope{next}) }()
	if err := m.WaitFor(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}
