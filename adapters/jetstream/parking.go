package jetstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/eventlog"
)

// ParkedBucket is the KV bucket of parked commits (eventlog.ParkingLot):
// commits whose reaction kept failing, acknowledged so that later commits
// of their key go on, kept here until an operator retries or skips them.
// Unlike KEEL_SNAPSHOTS it is a record, not a cache: losing it loses the
// reactions that were parked.
const ParkedBucket = "KEEL_PARKED"

// ParkingLot is eventlog.ParkingLot on the KEEL_PARKED bucket, one key per
// commit: <subscription>.<sequence>.
type ParkingLot struct{ kv jetstream.KeyValue }

var _ eventlog.ParkingLot = (*ParkingLot)(nil)

// ParkingLot opens the parked-commits bucket, or creates it with the
// stream's replicas. An existing bucket is left as it is: an agent attached
// to the log must not change what keel serve made.
func (s *Store) ParkingLot(ctx context.Context) (*ParkingLot, error) {
	if kv, err := s.JS.KeyValue(ctx, ParkedBucket); err == nil {
		return &ParkingLot{kv: kv}, nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open kv %s: %w", ParkedBucket, err)
	}
	kv, err := s.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: ParkedBucket, Description: "Keel commits whose reaction kept failing, parked for an operator",
		Storage: jetstream.FileStorage, Replicas: max(s.Replicas, 1), History: 1,
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // made meanwhile by another process
		kv, err = s.JS.KeyValue(ctx, ParkedBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", ParkedBucket, err)
	}
	return &ParkingLot{kv: kv}, nil
}

// subscriptionToken is the subscription's name when it is a valid key token
// (Keel's durable names are), else '=' and its base64url: no plain name
// starts with '='.
func subscriptionToken(sub string) string {
	if plainID.MatchString(sub) {
		return sub
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(sub))
}

func parkedKey(sub string, seq uint64) string {
	return subscriptionToken(sub) + "." + strconv.FormatUint(seq, 10)
}

// Park implements eventlog.ParkingLot.
func (l *ParkingLot) Park(ctx context.Context, pc eventlog.ParkedCommit) error {
	data, err := json.Marshal(pc)
	if err != nil {
		return fmt.Errorf("encode parked commit: %w", err)
	}
	if _, err := l.kv.Put(ctx, parkedKey(pc.Subscription, pc.Sequence), data); err != nil {
		return fmt.Errorf("park %s %d: %w", pc.Subscription, pc.Sequence, err)
	}
	return nil
}

// Get implements eventlog.ParkingLot.
func (l *ParkingLot) Get(ctx context.Context, sub string, seq uint64) (eventlog.ParkedCommit, error) {
	pc, _, err := l.get(ctx, parkedKey(sub, seq))
	if err != nil {
		return pc, fmt.Errorf("parked %s %d: %w", sub, seq, err)
	}
	return pc, nil
}

// get reads one record and its revision; eventlog.ErrNotParked when absent.
func (l *ParkingLot) get(ctx context.Context, key string) (eventlog.ParkedCommit, uint64, error) {
	var pc eventlog.ParkedCommit
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return pc, 0, eventlog.ErrNotParked
	}
	if err != nil {
		return pc, 0, err
	}
	if err := json.Unmarshal(e.Value(), &pc); err != nil {
		return pc, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return pc, e.Revision(), nil
}

// List implements eventlog.ParkingLot. It reads every record of the
// subscription (or of all): the lot is small.
func (l *ParkingLot) List(ctx context.Context, sub, after string, limit int) ([]eventlog.ParkedCommit, string, error) {
	filter := ">"
	if sub != "" {
		filter = subscriptionToken(sub) + ".*"
	}
	keys, err := l.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", ParkedBucket, err)
	}
	defer func() { _ = keys.Stop() }()
	var all []eventlog.ParkedCommit
	for key := range keys.Keys() {
		pc, _, err := l.get(ctx, key)
		if errors.Is(err, eventlog.ErrNotParked) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		all = append(all, pc)
	}
	return eventlog.PageParked(all, sub, after, limit)
}

// Retry implements eventlog.ParkingLot. It updates the record it read, so a
// retry loop that parked it again meanwhile is not overwritten.
func (l *ParkingLot) Retry(ctx context.Context, sub string, seq uint64) error {
	key := parkedKey(sub, seq)
	pc, rev, err := l.get(ctx, key)
	if err != nil {
		return fmt.Errorf("retry %s %d: %w", sub, seq, err)
	}
	pc.State = eventlog.StateRetry
	data, err := json.Marshal(pc)
	if err != nil {
		return fmt.Errorf("encode parked commit: %w", err)
	}
	if _, err := l.kv.Update(ctx, key, data, rev); err != nil {
		return fmt.Errorf("retry %s %d: %w", sub, seq, err)
	}
	return nil
}

// Remove implements eventlog.ParkingLot.
func (l *ParkingLot) Remove(ctx context.Context, sub string, seq uint64) error {
	key := parkedKey(sub, seq)
	if _, _, err := l.get(ctx, key); err != nil {
		return fmt.Errorf("remove %s %d: %w", sub, seq, err)
	}
	if err := l.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("remove %s %d: %w", sub, seq, err)
	}
	return nil
}
