package jetstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ImageBucket is the object store bucket that holds image bytes.
const ImageBucket = "KEEL_IMAGES"

// IdempotencyBucket is the key-value bucket that remembers the first answer
// to each Idempotency-Key.
const IdempotencyBucket = "KEEL_IDEMPOTENCY"

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 72 * time.Hour

// Images stores image bytes in the JetStream object store, so that every
// replica and every host agent can fetch them.
type Images struct{ os jetstream.ObjectStore }

// OpenImages opens (or creates) the image bucket.
func OpenImages(ctx context.Context, js jetstream.JetStream, replicas int) (*Images, error) {
	os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ImageBucket, Description: "Keel image bytes", Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", ImageBucket, err)
	}
	return &Images{os: os}, nil
}

// AttachImages binds to the image bucket keel serve created (host agents:
// they read images and never configure the bucket).
func AttachImages(ctx context.Context, js jetstream.JetStream) (*Images, error) {
	os, err := js.ObjectStore(ctx, ImageBucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s (does keel serve run?): %w", ImageBucket, err)
	}
	return &Images{os: os}, nil
}

// Put streams r into the object name and returns its size and sha256 (hex).
func (im *Images) Put(ctx context.Context, name string, r io.Reader) (int64, string, error) {
	h := sha256.New()
	info, err := im.os.Put(ctx, jetstream.ObjectMeta{Name: name}, io.TeeReader(r, h))
	if err != nil {
		return 0, "", fmt.Errorf("store image object %s: %w", name, err)
	}
	return int64(info.Size), hex.EncodeToString(h.Sum(nil)), nil
}

// Get opens the object for reading; the caller closes it. (Host agents
// will fetch image bytes with it.)
func (im *Images) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	r, err := im.os.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read image object %s: %w", name, err)
	}
	return r, nil
}

// Delete removes an object; a missing one is not an error.
func (im *Images) Delete(ctx context.Context, name string) error {
	err := im.os.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete image object %s: %w", name, err)
	}
	return nil
}

// KV is a small key-value bucket (used for idempotency records).
type KV struct{ kv jetstream.KeyValue }

// ErrKeyExists is returned by Create when the key is already set.
var ErrKeyExists = errors.New("key exists")

// OpenKV opens (or creates) a key-value bucket with a time to live.
func OpenKV(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (*KV, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, TTL: ttl, Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", bucket, err)
	}
	return &KV{kv: kv}, nil
}

// Get returns the value of key, or nil when it is not set.
func (k *KV) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	return e.Value(), nil
}

// Put sets key.
func (k *KV) Put(ctx context.Context, key string, v []byte) error {
	if _, err := k.kv.Put(ctx, key, v); err != nil {
		return fmt.Errorf("kv put: %w", err)
	}
	return nil
}

// Create sets key only if it is not set yet.
func (k *KV) Create(ctx context.Context, key string, v []byte) error {
	_, err := k.kv.Create(ctx, key, v)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrKeyExists
	}
	if err != nil {
		return fmt.Errorf("kv create: %w", err)
	}
	return nil
}

// Entry is a key's value, revision and creation time.
type Entry struct {
	Value    []byte
	Revision uint64
	Created  time.Time
}

// GetEntry returns key's entry, or nil when it is not set.
func (k *KV) GetEntry(ctx context.Context, key string) (*Entry, error) {
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	return &Entry{Value: e.Value(), Revision: e.Revision(), Created: e.Created()}, nil
}

// Update sets key if its revision is still rev; ErrKeyExists otherwise.
func (k *KV) Update(ctx context.Context, key string, v []byte, rev uint64) error {
	_, err := k.kv.Update(ctx, key, v, rev)
	if wrongLast(err) {
		return ErrKeyExists
	}
	if err != nil {
		return fmt.Errorf("kv update: %w", err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (k *KV) Delete(ctx context.Context, key string) error {
	err := k.kv.Delete(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("kv delete: %w", err)
	}
	return nil
}

// NamesBucket holds the unique-name reservations of flavors and images.
const NamesBucket = "KEEL_NAMES"

// Take returns key's value and deletes it, once: of two takers, one gets
// the value and the other nil, as does a taker of a key not set (or
// expired).
func (k *KV) Take(ctx context.Context, key string) ([]byte, error) {
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	err = k.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	if wrongLast(err) {
		return nil, nil // taken by another
	}
	if err != nil {
		return nil, fmt.Errorf("kv delete: %w", err)
	}
	return e.Value(), nil
}

// wrongLast tells the refusal of a write whose expected revision is not the
// key's last.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// ConsoleTokensBucket holds the single-use tokens of console sessions
// (GET /v1/servers/{id}/console), for a minute at most.
const ConsoleTokensBucket = "KEEL_CONSOLE_TOKENS"
