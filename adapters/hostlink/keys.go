package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/commands"
)

// KeysBucket holds the public keys of the credentials issued to hosts, by
// host id. The seeds are never kept: they are in the file given to the
// host's operator only.
const KeysBucket = "KEEL_HOST_KEYS"

// issued is one host's record in KeysBucket. A revoked record keeps the
// host known as a real host (its work is never sealed to the fleet) with
// no keys: nobody connects as it, and nothing is sealed to it.
type issued struct {
	Host    string     `json:"host"`
	User    string     `json:"user"` // NATS user public key; "" once revoked
	Seal    string     `json:"seal"` // curve public key; "" once revoked
	Issued  time.Time  `json:"issued"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Keys are the credentials issued to hosts, followed live from KeysBucket
// (so that every keel serve sharing the bucket admits a host at once), and
// the fleet's.
type Keys struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	access *Access // nil on an external NATS, which Keel does not police
	log    *slog.Logger

	mu        sync.RWMutex
	hosts     map[string]issued // host id → its credentials' public keys
	fleetSeal string
	seen      map[string]uint64 // host id → last KV revision applied
}

// OpenKeys opens the credentials registry, admits the hosts it holds
// through access (nil: nobody is policed), and follows the registry until
// ctx ends. fleet's seal key is the one simulated hosts' passwords are
// sealed to (nil: none); admitting the fleet is the caller's choice
// (Access.AdmitFleet).
func OpenKeys(ctx context.Context, js jetstream.JetStream, replicas int, access *Access, fleet *Credentials, log *slog.Logger) (*Keys, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: KeysBucket, Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", KeysBucket, err)
	}
	k := &Keys{js: js, kv: kv, access: access, log: log, hosts: map[string]issued{}, seen: map[string]uint64{}}
	if fleet != nil {
		user, seal, err := fleet.Public()
		if err != nil {
			return nil, err
		}
		if fleet.Seal == nil {
			seal = ""
		}
		k.fleetSeal = seal
		_ = user
	}
	if err := ensureStreams(ctx, js, replicas); err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", KeysBucket, err)
	}
	for e := range w.Updates() {
		if e == nil {
			break // what the bucket held at start is applied
		}
		k.apply(e)
	}
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e != nil {
				k.apply(e)
			}
		}
	}()
	return k, nil
}

func (k *Keys) apply(e jetstream.KeyValueEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e.Revision() <= k.seen[e.Key()] {
		return
	}
	k.seen[e.Key()] = e.Revision()
	if e.Operation() != jetstream.KeyValuePut {
		delete(k.hosts, e.Key())
		if k.access != nil {
			k.access.RevokeHost(e.Key())
		}
		return
	}
	var rec issued
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		k.log.Warn("unreadable host credentials record ignored", "host_id", e.Key(), "err", err)
		return
	}
	k.hosts[e.Key()] = rec
	if k.access == nil {
		return
	}
	if rec.User == "" {
		k.access.RevokeHost(e.Key())
		return
	}
	k.access.AdmitHost(e.Key(), rec.User)
}

// Issue makes new credentials for the host called name, replacing any it
// had (the earlier ones no longer connect), and makes its work queue.
func (k *Keys) Issue(ctx context.Context, name string) (*Credentials, error) {
	c, err := NewCredentials(name)
	if err != nil {
		return nil, err
	}
	user, seal, err := c.Public()
	if err != nil {
		return nil, err
	}
	id := commands.HostID(name)
	data, err := json.Marshal(issued{Host: name, User: user, Seal: seal, Issued: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	rev, err := k.kv.Put(ctx, id, data)
	if err != nil {
		return nil, fmt.Errorf("record the credentials of host %s: %w", name, err)
	}
	k.applyNow(ctx, id, rev) // admitted now, not when the watch gets there
	k.log.Info("host credentials issued", "host", name, "user", user)
	return c, nil
}

// applyNow applies revision rev of host id's record, which this process
// just wrote, unless a later one is there already.
func (k *Keys) applyNow(ctx context.Context, id string, rev uint64) {
	if e, err := k.kv.Get(ctx, id); err == nil && e.Revision() == rev {
		k.apply(e)
	}
}

// ErrNoCredentials is Revoke's error for a host that holds no credentials.
var ErrNoCredentials = errors.New("no credentials")

// Revoke takes host name's credentials away: its agent's connections are
// closed at once (on every keel serve sharing the bucket) and it connects
// no more; its work waits, and no admin password is sealed for it, until
// new credentials are issued. A host with none, or revoked already, is
// ErrNoCredentials.
func (k *Keys) Revoke(ctx context.Context, name string) error {
	id := commands.HostID(name)
	e, err := k.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("host %s: %w", name, ErrNoCredentials)
	}
	if err != nil {
		return fmt.Errorf("read the credentials of host %s: %w", name, err)
	}
	var rec issued
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return fmt.Errorf("read the credentials of host %s: %w", name, err)
	}
	if rec.User == "" {
		return fmt.Errorf("host %s: %w (revoked at %s)", name, ErrNoCredentials, rec.Revoked.Format(time.RFC3339))
	}
	now := time.Now().UTC()
	data, err := json.Marshal(issued{Host: rec.Host, Issued: rec.Issued, Revoked: &now})
	if err != nil {
		return err
	}
	// At the revision read: a credentials issue racing with this one wins
	// or loses whole.
	rev, err := k.kv.Update(ctx, id, data, e.Revision())
	if err != nil {
		return fmt.Errorf("revoke the credentials of host %s: %w", name, err)
	}
	k.applyNow(ctx, id, rev) // out now, not when the watch gets there
	k.log.Info("host credentials revoked", "host", name, "user", rec.User)
	return nil
}

// Own tells whether host hostID holds credentials of its own (a real
// host), rather than running under the fleet's (a simulated one).
func (k *Keys) Own(hostID string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.hosts[hostID]
	return ok
}

// sealKey is the curve key that admin passwords for host hostID are sealed
// to, and whether the host is simulated.
func (k *Keys) sealKey(hostID string) (pub string, sim bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if rec, ok := k.hosts[hostID]; ok {
		return rec.Seal, false
	}
	return k.fleetSeal, true
}

// ensureStreams makes the work streams: work queues (each piece read once,
// by keel serve's Forwarder), one for real hosts and one for simulated
// ones.
func ensureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range []jetstream.StreamConfig{
		{Name: WorkStream, Description: "Keel: the work of real hosts", Subjects: []string{realSpace.work + "*"}},
		{Name: SimWorkStream, Description: "Keel: the work of simulated hosts", Subjects: []string{simSpace.work + "*"}},
	} {
		cfg.Retention, cfg.Storage, cfg.Replicas, cfg.Duplicates = jetstream.WorkQueuePolicy, jetstream.FileStorage, max(replicas, 1), 2*time.Minute
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("open stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// workAckWait is how long a piece of work may go without news before it is
// handed out again; agents say "in progress" well within it.
const workAckWait = 30 * time.Second
