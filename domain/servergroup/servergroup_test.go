package servergroup_test

import (
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/servergroup"
)

func group(policy string, max int, members ...[2]string) servergroup.State {
	evs := []domain.Event{&servergroup.Created{ID: "g", Spec: servergroup.Spec{Name: "web", Policy: policy, MaxPerHost: max}}}
	for _, m := range members {
		evs = append(evs, &servergroup.MemberAdded{Server: m[0], Host: m[1]})
	}
	return servergroup.Decider.Fold(servergroup.Decider.Initial("g"), evs)
}

func TestPolicies(t *testing.T) {
	cases := []struct {
		name   string
		s      servergroup.State
		add    servergroup.AddMember
		refuse string
	}{
		{"anti-affinity on a free host", group("anti-affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "b", Host: "h2"}, ""},
		{"anti-affinity on a taken host", group("anti-affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "b", Host: "h1"}, "already has a member on host h1"},
		{"anti-affinity: a member may move", group("anti-affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "a", Host: "h2"}, ""},
		{"affinity: first member anywhere", group("affinity", 0), servergroup.AddMember{Server: "a", Host: "h3"}, ""},
		{"affinity: next on the same host", group("affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "b", Host: "h1"}, ""},
		{"affinity: not elsewhere", group("affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "b", Host: "h2"}, "members on another host"},
		{"soft anti-affinity allows sharing", group("soft-anti-affinity", 0, [2]string{"a", "h1"}), servergroup.AddMember{Server: "b", Host: "h1"}, ""},
		{"max per host", group("soft-anti-affinity", 2, [2]string{"a", "h1"}, [2]string{"b", "h1"}), servergroup.AddMember{Server: "c", Host: "h1"}, "its maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := servergroup.Decide(c.s, c.add)
			if c.refuse == "" {
				if err != nil || len(evs) != 1 {
					t.Fatalf("got %v, %v", evs, err)
				}
				return
			}
			if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), c.refuse) {
				t.Fatalf("got %v, want a conflict mentioning %q", err, c.refuse)
			}
		})
	}
}

func TestCreateAndDelete(t *testing.T) {
	if _, err := servergroup.Decide(servergroup.State{}, servergroup.Create{ID: "g", Spec: servergroup.Spec{Name: "x", Policy: "sometimes"}}); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("bad policy: %v", err)
	}
	if _, err := servergroup.Decide(group("affinity", 0, [2]string{"a", "h1"}), servergroup.Delete{}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete with members: %v", err)
	}
	s := servergroup.Decider.Fold(group("affinity", 0, [2]string{"a", "h1"}), []domain.Event{&servergroup.MemberRemoved{Server: "a"}})
	if evs, err := servergroup.Decide(s, servergroup.Delete{}); err != nil || len(evs) != 1 {
		t.Fatalf("delete of an empty group: %v %v", evs, err)
	}
	if evs, err := servergroup.Decide(s, servergroup.RemoveMember{Server: "a"}); err != nil || evs != nil {
		t.Fatalf("removing a member twice: %v %v", evs, err)
	}
}

func TestMaxPerHostIsBounded(t *testing.T) {
	_, err := servergroup.Decide(servergroup.State{}, servergroup.Create{ID: "g", Spec: servergroup.Spec{Name: "x", Policy: "soft-affinity", MaxPerHost: 1 << 31}})
	if domain.KindOf(err) != domain.Invalid {
		t.Fatalf("huge max_per_host: %v", err)
	}
}
