package commands_test

import (
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
)

// An aggregate's owner is the project of its first command's tag here:
// "p1:..." belongs to p1.
func ownerOf(s counterState) string {
	if len(s.Applied) == 0 {
		return ""
	}
	p, _, _ := strings.Cut(s.Applied[0], ":")
	return p
}

// A scoped command on an aggregate another project owns is refused as not
// found and writes nothing; the owner's and an unscoped one (a cloud
// admin's, a saga's) are accepted; each commit names the owner.
func TestScopedCommandsActOnlyOnTheirProject(t *testing.T) {
	s := openStore(t)
	h := newCounter(s)
	h.Owner = ownerOf
	ctx := ctxT(t)
	m := meta("c-1")
	m.Scope = "p1"
	if _, err := h.Handle(ctx, "a", inc{Tag: "p1:first"}, m); err != nil {
		t.Fatal(err)
	}
	before := head(t, s)
	m = meta("c-2")
	m.Scope = "p2"
	_, err := h.Handle(ctx, "a", inc{Tag: "p2:intrude"}, m)
	if domain.KindOf(err) != domain.NotFound || !strings.Contains(err.Error(), "counter a not found") {
		t.Fatalf("another project's command: %v, want not found", err)
	}
	if head(t, s) != before {
		t.Fatal("a refused command wrote a commit")
	}
	for i, sc := range []string{"p1", ""} {
		m = meta("c-ok-" + sc)
		m.Scope = sc
		if _, err := h.Handle(ctx, "a", inc{Tag: "again"}, m); err != nil {
			t.Fatalf("command %d scoped %q: %v", i, sc, err)
		}
	}
	for _, env := range history(t, s, "counter", "a") {
		if env.Project != "p1" {
			t.Fatalf("commit %d names project %q, want p1", env.Version, env.Project)
		}
	}
	// Without an owner the aggregate is no project's: scopes do not apply.
	free := newCounter(s)
	m = meta("c-free")
	m.Scope = "p2"
	if _, err := free.Handle(ctx, "b", inc{Tag: "x"}, m); err != nil {
		t.Fatal(err)
	}
	m = meta("c-free-2")
	m.Scope = "p3"
	if _, err := free.Handle(ctx, "b", inc{Tag: "y"}, m); err != nil {
		t.Fatalf("an unowned aggregate refused a scoped command: %v", err)
	}
	if envs := history(t, s, "counter", "b"); envs[0].Project != "" {
		t.Fatalf("an unowned aggregate's commit names project %q", envs[0].Project)
	}
}
