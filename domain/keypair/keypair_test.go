package keypair_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/keypair"
)

const kid = keypair.ID("kp-1")

var (
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1    = t0.Add(time.Hour)
	alice = keypair.Spec{Name: "alice", Type: "ssh-ed25519",
		PublicKey:   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0r2iHJKGMaAUABUbV1qDof3YMRyKZr3YlLWDJEH980 alice@laptop",
		Fingerprint: "SHA256:Ktbt0mXjPtWXuT0sBf0jWLpmFDycXf60j3y3hq+qusM"}

	none    []domain.Event
	created = []domain.Event{&keypair.Created{ID: kid, Spec: alice, CreatedAt: t0}}
	deleted = append(append([]domain.Event{}, created...), &keypair.Deleted{ID: kid, DeletedAt: t0})
)

func spec(f func(s *keypair.Spec)) keypair.Spec {
	s := alice
	f(&s)
	return s
}

func TestDecide(t *testing.T) {
	create := func(s keypair.Spec) keypair.Create { return keypair.Create{ID: kid, Spec: s, At: t1} }
	cases := []struct {
		name  string
		given []domain.Event
		when  keypair.Command
		want  []domain.Event
		kind  domain.ErrorKind
		msg   string
	}{
		{"create", none, create(alice), []domain.Event{&keypair.Created{ID: kid, Spec: alice, CreatedAt: t1}}, 0, ""},
		{"empty name", none, create(spec(func(s *keypair.Spec) { s.Name = "" })), nil, domain.Invalid, "name must not be empty"},
		{"uuid name", none, create(spec(func(s *keypair.Spec) { s.Name = "3f2504e0-4f89-11d3-9a0c-0305e82c3301" })), nil, domain.Invalid, "must not be a UUID"},
		{"escape in name", none, create(spec(func(s *keypair.Spec) { s.Name = "a\x1b[2J" })), nil, domain.Invalid, "control characters"},
		{"no key", none, create(spec(func(s *keypair.Spec) { s.PublicKey = "" })), nil, domain.Invalid, "public_key must not be empty"},
		{"newline in key", none, create(spec(func(s *keypair.Spec) { s.PublicKey += "\nssh-ed25519 AAAA" })), nil, domain.Invalid, "control characters"},
		{"key over 16 KiB", none, create(spec(func(s *keypair.Spec) { s.PublicKey += strings.Repeat("x", keypair.MaxPublicKey) })),
			nil, domain.Invalid, "the limit is 16384"},
		{"key not of its type", none, create(spec(func(s *keypair.Spec) { s.Type = "ssh-rsa" })), nil, domain.Invalid, `must begin with its type "ssh-rsa"`},
		{"no fingerprint", none, create(spec(func(s *keypair.Spec) { s.Fingerprint = "" })), nil, domain.Invalid, "SHA256 fingerprint"},
		{"exists", created, create(alice), nil, domain.Conflict, "keypair kp-1 already exists"},
		{"deleted id is not reused", deleted, create(alice), nil, domain.Conflict, "already exists"},
		{"delete", created, keypair.Delete{At: t1}, []domain.Event{&keypair.Deleted{ID: kid, DeletedAt: t1}}, 0, ""},
		{"delete twice", deleted, keypair.Delete{At: t1}, nil, domain.NotFound, "keypair kp-1 not found"},
		{"delete unknown", none, keypair.Delete{At: t1}, nil, domain.NotFound, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			decidertest.Decide(t, keypair.Decider, "", c.given, c.when, decidertest.Expect(c.want, c.kind, c.msg))
		})
	}
}

func TestEvolve(t *testing.T) {
	s := keypair.Decider.Fold(keypair.State{}, deleted)
	if !reflect.DeepEqual(s, keypair.State{ID: kid, Exists: true, Deleted: true, Spec: alice, CreatedAt: t0}) {
		t.Fatalf("after deleted: %+v", s)
	}
}
