package project_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/project"
)

var (
	t0      = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	created = []domain.Event{&project.Created{ID: "p-1", Name: "web", Description: "the web team", CreatedAt: t0}}
	admin   = []domain.Event{&project.Created{ID: "p-1", Name: project.AdminName, CreatedAt: t0}}
)

func TestDecide(t *testing.T) {
	dt.Run(t, project.Decider, "p-1", []dt.Case[project.Command]{
		{Name: "create", When: project.Create{ID: "p-1", Name: "web", Description: "the web team", At: t0}, Then: dt.Then(created...)},
		{Name: "create twice", Given: created, When: project.Create{ID: "p-1", Name: "web", At: t0}, Then: dt.Refused(domain.Conflict, "already exists")},
		{Name: "empty name", When: project.Create{ID: "p-1", At: t0}, Then: dt.Refused(domain.Invalid, "name must not be empty")},
		{Name: "control characters", When: project.Create{ID: "p-1", Name: "a\x1b[2J", At: t0}, Then: dt.Refused(domain.Invalid, "control characters")},
		{Name: "delete", Given: created, When: project.Delete{At: t0}, Then: dt.Then(&project.Deleted{ID: "p-1", DeletedAt: t0})},
		{Name: "delete unknown", When: project.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "project p-1 not found")},
		{Name: "delete twice", Given: dt.Plus(created, &project.Deleted{ID: "p-1", DeletedAt: t0}), When: project.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
		{Name: "the admin project stays", Given: admin, When: project.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "cannot be deleted")},
	})
}

func TestQuotas(t *testing.T) {
	q := dt.Plus(created, &project.QuotasSet{Limits: map[string]int{project.QuotaServers: 2, project.QuotaVCPUs: 4}, At: t0})
	one := dt.Plus(q, &project.QuotaReserved{Key: "s1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: t0})
	two := dt.Plus(one, &project.QuotaReserved{Key: "s2", Amounts: map[string]int{"servers": 1, "vcpus": 1}, At: t0})
	reserve := func(key string, servers, vcpus int) project.Reserve {
		return project.Reserve{Key: key, Amounts: map[string]int{"servers": servers, "vcpus": vcpus}, At: t0}
	}
	dt.Run(t, project.Decider, "p-1", []dt.Case[project.Command]{
		{Name: "set", Given: created, When: project.SetQuotas{Limits: map[string]int{"servers": 2, "vcpus": 4}, At: t0},
			Then: dt.Then(&project.QuotasSet{Limits: map[string]int{"servers": 2, "vcpus": 4, "networks": 100, "ports": 500, "security_groups": 10, "routers": 10, "floating_ips": 50}, At: t0})},
		{Name: "a new project's networks are bounded; removing a default", Given: created, When: project.SetQuotas{Limits: map[string]int{"ports": -1}, At: t0},
			Then: dt.Then(&project.QuotasSet{Limits: map[string]int{"networks": 100, "security_groups": 10, "routers": 10, "floating_ips": 50}, At: t0})},
		{Name: "unknown quota", Given: created, When: project.SetQuotas{Limits: map[string]int{"gpus": 1}, At: t0}, Then: dt.Refused(domain.Invalid, `no quota named "gpus"`)},
		{Name: "a negative limit removes it", Given: q, When: project.SetQuotas{Limits: map[string]int{"vcpus": -1}, At: t0},
			Then: dt.Then(&project.QuotasSet{Limits: map[string]int{"servers": 2}, At: t0})},
		{Name: "the same limits are nothing new", Given: q, When: project.SetQuotas{Limits: map[string]int{"servers": 2}, At: t0}, Then: dt.Then()},
		{Name: "reserve within", Given: q, When: reserve("s1", 1, 2), Then: dt.Then(&project.QuotaReserved{Key: "s1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: t0})},
		{Name: "past the server limit", Given: two, When: reserve("s3", 1, 0), Then: dt.Refused(domain.Conflict, "quota exceeded", "uses 2 of its 2 servers and asks for 1 more")},
		{Name: "past the vCPU limit", Given: one, When: reserve("s3", 1, 3), Then: dt.Refused(domain.Conflict, "uses 2 of its 4 vcpus and asks for 3 more")},
		{Name: "unlimited without a quota", Given: created, When: reserve("s9", 100, 400), Then: dt.Then(&project.QuotaReserved{Key: "s9", Amounts: map[string]int{"servers": 100, "vcpus": 400}, At: t0})},
		{Name: "release", Given: two, When: project.Release{Key: "s1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: t0},
			Then: dt.Then(&project.QuotaReleased{Key: "s1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: t0})},
		{Name: "release without amounts", Given: q, When: project.Release{Key: "s1", At: t0}, Then: dt.Refused(domain.Invalid, "needs a key and amounts")},
		{Name: "delete while reservations hold servers", Given: two, When: project.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "still holds 2 servers; delete them first")},
		{Name: "reserve on a deleted project", Given: dt.Plus(created, &project.Deleted{ID: "p-1", DeletedAt: t0}), When: reserve("s1", 1, 1), Then: dt.Refused(domain.NotFound, "not found")},
	})
	before := dt.Fold(project.Decider, "p-1", two)
	after := project.Decider.Fold(before, []domain.Event{&project.QuotaReleased{Key: "s1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: t0}})
	if after.Used["servers"] != 1 || after.Used["vcpus"] != 1 {
		t.Fatalf("use after a release: %v", after.Used)
	}
	if floor := project.Decider.Fold(after, []domain.Event{&project.QuotaReleased{Key: "x", Amounts: map[string]int{"servers": 5}, At: t0}}); floor.Used["servers"] != 0 {
		t.Fatalf("a release past the use left %d", floor.Used["servers"])
	}
	if before.Used["servers"] != 2 {
		t.Fatalf("a release changed the earlier (cached) state in place: %v", before.Used)
	}
}
