package jetstream_test

import (
	"context"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/lease/leasetest"
)

// The KV lease passes the contract: a hold not renewed ages out of the
// bucket after its TTL.
func TestLeasesContract(t *testing.T) {
	_, s := jstest.Store(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := keeljs.OpenLeases(ctx, s.JS, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	leasetest.RunStore(t, l)
	// A second open keeps the bucket's TTL.
	again, err := keeljs.OpenLeases(ctx, s.JS, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if again.TTL() != time.Second {
		t.Errorf("reopened with TTL %v, want the bucket's 1s", again.TTL())
	}
}
