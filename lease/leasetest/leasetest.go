// Package leasetest is the contract suite of lease.Store: the in-memory
// store and the JetStream one both pass it. It is for tests only.
package leasetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keel-cloud/keel/lease"
)

// RunStore checks s, whose TTL must be short (a second or two): only one
// holder at a time, renew and release by revision, expiry after the TTL.
func RunStore(t *testing.T, s lease.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev, ok, err := s.Acquire(ctx, "one", "a")
	if err != nil || !ok {
		t.Fatalf("first acquire: ok %v, err %v", ok, err)
	}
	if _, ok, err := s.Acquire(ctx, "one", "b"); err != nil || ok {
		t.Fatalf("acquire of a held lease: ok %v, err %v; want false, nil", ok, err)
	}
	if _, ok, err := s.Acquire(ctx, "two", "b"); err != nil || !ok {
		t.Fatalf("acquire of another name: ok %v, err %v", ok, err)
	}
	rev2, err := s.Renew(ctx, "one", "a", rev)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if _, err := s.Renew(ctx, "one", "a", rev); !errors.Is(err, lease.ErrLost) {
		t.Errorf("renew with a stale revision: %v, want ErrLost", err)
	}
	if err := s.Release(ctx, "one", rev2); err != nil {
		t.Fatalf("release: %v", err)
	}
	rev3, ok, err := s.Acquire(ctx, "one", "b")
	if err != nil || !ok {
		t.Fatalf("acquire after a release: ok %v, err %v", ok, err)
	}
	// Not renewed, the hold of b ends after the TTL and a may take it.
	deadline := time.Now().Add(s.TTL() + 5*time.Second)
	for {
		_, ok, err := s.Acquire(ctx, "one", "a")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a hold was still there %v after its last renewal (TTL %v)", s.TTL()+5*time.Second, s.TTL())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Renew(ctx, "one", "b", rev3); !errors.Is(err, lease.ErrLost) {
		t.Errorf("renew of an expired hold taken by another: %v, want ErrLost", err)
	}
}
