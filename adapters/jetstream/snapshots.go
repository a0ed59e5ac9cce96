package jetstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotsBucket is the KV bucket that holds snapshots of long-lived
// aggregates' states (commands.SnapshotStore). It is a cache of the event
// log, never a record: the event subjects hold no snapshots, and losing the
// bucket costs only full replays.
const SnapshotsBucket = "KEEL_SNAPSHOTS"

// Snapshots keeps one snapshot per aggregate, under the key
// <aggregate type>.<id>.
type Snapshots struct{ kv jetstream.KeyValue }

// OpenSnapshots opens (or creates) the snapshots bucket with the stream's
// replicas. It keeps only the last snapshot of each aggregate.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, replicas int) (*Snapshots, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: SnapshotsBucket, Description: "Keel aggregate snapshots (a cache of KEEL_EVENTS)",
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", SnapshotsBucket, err)
	}
	return &Snapshots{kv: kv}, nil
}

// Get returns the snapshot of one aggregate; found is false when there is none.
func (s *Snapshots) Get(ctx context.Context, aggregateType, id string) ([]byte, bool, error) {
	e, err := s.kv.Get(ctx, snapshotKey(aggregateType, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get snapshot of %s %s: %w", aggregateType, id, err)
	}
	return e.Value(), true, nil
}

// Put replaces the snapshot of one aggregate.
func (s *Snapshots) Put(ctx context.Context, aggregateType, id string, data []byte) error {
	if _, err := s.kv.Put(ctx, snapshotKey(aggregateType, id), data); err != nil {
		return fmt.Errorf("put snapshot of %s %s: %w", aggregateType, id, err)
	}
	return nil
}

var plainID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// snapshotKey is <type>.<id> for ids that are valid key tokens (UUIDs,
// names), else <type>.=<base64url of the id>: KV keys allow fewer
// characters than ids, and no plain id starts with '='.
func snapshotKey(aggregateType, id string) string {
	if plainID.MatchString(id) {
		return aggregateType + "." + id
	}
	return aggregateType + ".=" + base64.RawURLEncoding.EncodeToString([]byte(id))
}
