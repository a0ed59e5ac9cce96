package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/token"
)

var (
	t0     = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	spec   = token.Spec{User: "u-1", Project: "p-1", Name: "login", SecretSHA256: strings.Repeat("ab", 32), ExpiresAt: t0.Add(12 * time.Hour)}
	issued = []domain.Event{&token.Issued{ID: "t-1", Spec: spec, CreatedAt: t0}}
)

func with(f func(*token.Spec)) token.Spec {
	s := spec
	f(&s)
	return s
}

func TestDecide(t *testing.T) {
	issue := func(s token.Spec) token.Issue { return token.Issue{ID: "t-1", Spec: s, At: t0} }
	dt.Run(t, token.Decider, "t-1", []dt.Case[token.Command]{
		{Name: "issue", When: issue(spec), Then: dt.Then(issued...)},
		{Name: "issue twice", Given: issued, When: issue(spec), Then: dt.Refused(domain.Conflict, "already exists")},
		{Name: "a clear secret is refused", When: issue(with(func(s *token.Spec) { s.SecretSHA256 = "kt_secret" })), Then: dt.Refused(domain.Invalid, "64 lowercase hex")},
		{Name: "no project", When: issue(with(func(s *token.Spec) { s.Project = "" })), Then: dt.Refused(domain.Invalid, "a user and a project")},
		{Name: "already expired", When: issue(with(func(s *token.Spec) { s.ExpiresAt = t0 })), Then: dt.Refused(domain.Invalid, "expire after")},
		{Name: "too long", When: issue(with(func(s *token.Spec) { s.ExpiresAt = t0.Add(token.MaxLifetime + time.Hour) })), Then: dt.Refused(domain.Invalid, "at most 366 days")},
		{Name: "revoke", Given: issued, When: token.Revoke{At: t0}, Then: dt.Then(&token.Revoked{ID: "t-1", RevokedAt: t0})},
		{Name: "revoke twice is nothing new", Given: dt.Plus(issued, &token.Revoked{ID: "t-1", RevokedAt: t0}), When: token.Revoke{At: t0}, Then: dt.Then()},
		{Name: "revoke unknown", When: token.Revoke{At: t0}, Then: dt.Refused(domain.NotFound, "token t-1 not found")},
	})
}

func TestValidAt(t *testing.T) {
	s := dt.Fold(token.Decider, "t-1", issued)
	if !s.ValidAt(t0.Add(time.Hour)) || s.ValidAt(spec.ExpiresAt) || s.ValidAt(spec.ExpiresAt.Add(time.Second)) {
		t.Fatal("a token is valid exactly until it expires")
	}
	if r := dt.Fold(token.Decider, "t-1", dt.Plus(issued, &token.Revoked{ID: "t-1", RevokedAt: t0})); r.ValidAt(t0.Add(time.Hour)) {
		t.Fatal("a revoked token is still valid")
	}
}
