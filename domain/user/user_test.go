package user_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/user"
)

const hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"

var (
	t0      = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	created = []domain.Event{&user.Created{ID: "u-1", Name: "alice", PasswordHash: hash, CreatedAt: t0}}
	member  = dt.Plus(created, &user.RoleGranted{ID: "u-1", Project: "p-1", Role: user.Member, At: t0})
	gone    = dt.Plus(created, &user.Deleted{ID: "u-1", DeletedAt: t0})
)

func TestDecide(t *testing.T) {
	dt.Run(t, user.Decider, "u-1", []dt.Case[user.Command]{
		{Name: "create", When: user.Create{ID: "u-1", Name: "alice", PasswordHash: hash, At: t0}, Then: dt.Then(created...)},
		{Name: "a clear password is refused", When: user.Create{ID: "u-1", Name: "alice", PasswordHash: "hunter2", At: t0},
			Then: dt.Refused(domain.Invalid, "argon2id hash")},
		{Name: "create twice", Given: created, When: user.Create{ID: "u-1", Name: "alice", PasswordHash: hash, At: t0}, Then: dt.Refused(domain.Conflict, "already exists")},
		{Name: "grant", Given: created, When: user.Grant{Project: "p-1", Role: user.Member, At: t0},
			Then: dt.Then(&user.RoleGranted{ID: "u-1", Project: "p-1", Role: user.Member, At: t0})},
		{Name: "grant again is nothing new", Given: member, When: user.Grant{Project: "p-1", Role: user.Member, At: t0}, Then: dt.Then()},
		{Name: "grant another role replaces", Given: member, When: user.Grant{Project: "p-1", Role: user.Reader, At: t0},
			Then: dt.Then(&user.RoleGranted{ID: "u-1", Project: "p-1", Role: user.Reader, At: t0})},
		{Name: "unknown role", Given: created, When: user.Grant{Project: "p-1", Role: "owner", At: t0}, Then: dt.Refused(domain.Invalid, `not "owner"`)},
		{Name: "revoke", Given: member, When: user.Revoke{Project: "p-1", At: t0}, Then: dt.Then(&user.RoleRevoked{ID: "u-1", Project: "p-1", At: t0})},
		{Name: "revoke what was not granted", Given: created, When: user.Revoke{Project: "p-1", At: t0}, Then: dt.Refused(domain.NotFound, "no role in project p-1")},
		{Name: "set password", Given: created, When: user.SetPassword{PasswordHash: hash + "x", At: t0},
			Then: dt.Then(&user.PasswordChanged{ID: "u-1", PasswordHash: hash + "x", ChangedAt: t0})},
		{Name: "delete", Given: created, When: user.Delete{At: t0}, Then: dt.Then(&user.Deleted{ID: "u-1", DeletedAt: t0})},
		{Name: "nothing on a deleted user", Given: gone, When: user.Grant{Project: "p-1", Role: user.Member, At: t0}, Then: dt.Refused(domain.NotFound, "user u-1 not found")},
		{Name: "the bootstrap admin stays", Given: []domain.Event{&user.Created{ID: "u-1", Name: user.AdminName, PasswordHash: hash, CreatedAt: t0}},
			When: user.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "cannot be deleted")},
	})
}

func TestEvolveKeepsEarlierStatesIntact(t *testing.T) {
	before := dt.Fold(user.Decider, "u-1", member)
	after := user.Decider.Fold(before, []domain.Event{&user.RoleRevoked{ID: "u-1", Project: "p-1", At: t0}})
	if before.Roles["p-1"] != user.Member || len(after.Roles) != 0 {
		t.Fatalf("before %v, after %v: a cached state was changed in place", before.Roles, after.Roles)
	}
	if !reflect.DeepEqual(user.Roles, []user.Role{user.Reader, user.Member, user.Admin}) || user.Admin.Rank() <= user.Member.Rank() || user.Role("x").Rank() != 0 {
		t.Fatal("roles are not ordered reader < member < admin")
	}
}
