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
