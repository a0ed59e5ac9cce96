package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/lease"
)

// LeaseBucket is the KV bucket of leases (lease.Store): one key per lease,
// its value the holder, every entry aging out after the bucket's TTL
// (its MaxAge), so a lease whose holder died frees itself.
const LeaseBucket = "KEEL_LEASES"

// DefaultLeaseTTL is the TTL of a new lease bucket.
const DefaultLeaseTTL = 15 * time.Second

// Leases is lease.Store on the KEEL_LEASES bucket. A hold is the key's
// latest revision: Acquire creates the key (only when it is absent, deleted
// or aged out), Renew updates it at that revision (a new message, whose age
// starts again), Release deletes it at that revision.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

var _ lease.Store = (*Leases)(nil)

// OpenLeases opens the lease bucket, or creates it with TTL ttl and the
// given replicas. An existing bucket keeps its own TTL, which every
// replica then uses: two replicas must not count with different ones.
func OpenLeases(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Leases, error) {
	kv, err := js.KeyValue(ctx, LeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: LeaseBucket, Description: "Keel leases: one active instance across replicas",
			TTL: ttl, Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // made meanwhile by another replica
			kv, err = js.KeyValue(ctx, LeaseBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", LeaseBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("kv %s status: %w", LeaseBucket, err)
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("kv %s has no TTL: a lease would never expire", LeaseBucket)
	}
	return &Leases{kv: kv, ttl: st.TTL()}, nil
}

// TTL implements lease.Store.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Acquire implements lease.Store.
func (l *Leases) Acquire(ctx context.Context, name, holder string) (uint64, bool, error) {
	rev, err := l.kv.Create(ctx, name, []byte(holder))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return rev, true, nil
}

// Renew implements lease.Store.
func (l *Leases) Renew(ctx context.Context, name, holder string, rev uint64) (uint64, error) {
	next, err := l.kv.Update(ctx, name, []byte(holder), rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("renew lease %s: %w", name, lease.ErrLost)
	}
	if err != nil {
		return 0, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return next, nil
}

// Release implements lease.Store.
func (l *Leases) Release(ctx context.Context, name string, rev uint64) error {
	err := l.kv.Delete(ctx, name, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release lease %s: %w", name, lease.ErrLost)
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
