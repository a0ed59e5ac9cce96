package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"
)

// SnapshotStore is the port to the snapshots of aggregate states
// (adapters/jetstream.Snapshots, a KV bucket; never the event subjects).
// A snapshot is a cache: the event log stays the record, and a missing,
// corrupt or outdated snapshot only costs a full replay.
type SnapshotStore interface {
	// Get returns the last snapshot of one aggregate; found is false when
	// there is none.
	Get(ctx context.Context, aggregateType, id string) (data []byte, found bool, err error)
	// Put replaces the snapshot of one aggregate.
	Put(ctx context.Context, aggregateType, id string, data []byte) error
}

// DefaultSnapshotEvery is how many commits an aggregate gets between two
// snapshots. Below it, a replay of the whole subject is fast enough.
const DefaultSnapshotEvery = 500

// snapshotFormat is the layout of a snapshot (the fields of snapshot).
// Bump it also when an Evolve changes what old events fold into: snapshots
// taken before would keep the old fold.
const snapshotFormat = 1

// snapshot is what an aggregate's snapshot holds: everything an entry
// holds, so that a handler restored from it decides exactly as one that
// replayed the whole subject, including recognising retried commands.
type snapshot struct {
	Format   int             `json:"format"`
	Type     string          `json:"type"`  // the decider's aggregate type
	Shape    string          `json:"shape"` // fingerprint of the State type
	Version  uint64          `json:"version"`
	LastSeq  uint64          `json:"last_seq"`
	State    json.RawMessage `json:"state"`
	Commands []seenCommand   `json:"commands"` // oldest first
}

type seenCommand struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// snapshotter takes snapshots in the background, a few at a time: a
// snapshot never delays or fails a command.
type snapshotter struct {
	store SnapshotStore
	every uint64
	shape string
	slots chan struct{} // bounds the snapshots in flight
	wg    sync.WaitGroup
	log   *slog.Logger
}

// maxSnapshotsInFlight bounds the background writes of one handler; when
// all are busy, the aggregate is snapshotted at its next commit instead.
const maxSnapshotsInFlight = 4

// UseSnapshots makes every handler of the app restore long-lived aggregates
// from s and snapshot them every DefaultSnapshotEvery commits. Call it
// before the handlers are used.
func (a *App) UseSnapshots(s SnapshotStore, log *slog.Logger) {
	UseSnapshots(a.Flavors, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Images, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Servers, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Operations, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Hosts, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Groups, s, DefaultSnapshotEvery, log)
	UseSnapshots(a.Aggregates, s, DefaultSnapshotEvery, log)
}

// WaitSnapshots waits for the snapshots being written by every handler.
func (a *App) WaitSnapshots() {
	a.Flavors.WaitSnapshots()
	a.Images.WaitSnapshots()
	a.Servers.WaitSnapshots()
	a.Operations.WaitSnapshots()
	a.Hosts.WaitSnapshots()
	a.Groups.WaitSnapshots()
	a.Aggregates.WaitSnapshots()
}

// UseSnapshots makes h restore its aggregates from s and snapshot each
// aggregate every `every` commits (0: DefaultSnapshotEvery). log receives
// failed snapshot writes (nil: slog.Default). Call it before h is used.
func UseSnapshots[S any, C any](h *Handler[S, C], s SnapshotStore, every int, log *slog.Logger) {
	if every <= 0 {
		every = DefaultSnapshotEvery
	}
	if log == nil {
		log = slog.Default()
	}
	h.snaps = &snapshotter{store: s, every: uint64(every), shape: typeShape(reflect.TypeFor[S]()),
		slots: make(chan struct{}, maxSnapshotsInFlight), log: log}
}

// WaitSnapshots waits for the snapshots in flight (tests and shutdown).
func (h *Handler[S, C]) WaitSnapshots() {
	if h.snaps != nil {
		h.snaps.wg.Wait()
	}
}

// restore returns the entry of a snapshot of aggregate id, or nil when
// there is no usable one: none, unreadable, or taken by another shape of
// the state or another format. It never fails; the caller replays instead.
func (h *Handler[S, C]) restore(ctx context.Context, id string) *entry[S] {
	if h.snaps == nil {
		return nil
	}
	data, found, err := h.snaps.store.Get(ctx, h.decider.Type, id)
	if err != nil {
		h.snaps.log.Warn("read snapshot; replaying instead", "aggregate", h.decider.Type, "id", id, "err", err)
		return nil
	}
	if !found {
		return nil
	}
	e, err := h.decodeSnapshot(data)
	if err != nil {
		h.snaps.log.Warn("unusable snapshot; replaying instead", "aggregate", h.decider.Type, "id", id, "err", err)
		return nil
	}
	return e
}

func (h *Handler[S, C]) decodeSnapshot(data []byte) (*entry[S], error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Format != snapshotFormat || s.Type != h.decider.Type || s.Shape != h.snaps.shape {
		return nil, fmt.Errorf("snapshot of format %d, type %q, shape %s; want %d, %q, %s",
			s.Format, s.Type, s.Shape, snapshotFormat, h.decider.Type, h.snaps.shape)
	}
	if s.Version == 0 || s.LastSeq == 0 {
		return nil, fmt.Errorf("snapshot without a commit (version %d, sequence %d)", s.Version, s.LastSeq)
	}
	var state S
	if err := json.Unmarshal(s.State, &state); err != nil {
		return nil, fmt.Errorf("decode snapshot state: %w", err)
	}
	e := &entry[S]{state: state, version: s.Version, lastSeq: s.LastSeq, snapVersion: s.Version, commands: newRecent()}
	for _, c := range s.Commands {
		e.commands.add(c.ID, c.Seq)
	}
	return e, nil
}

// maybeSnapshot starts a background snapshot of e when the aggregate has
// had `every` commits since its last one. Call it under the aggregate's
// lock, with e already in the cache.
func (h *Handler[S, C]) maybeSnapshot(id string, e *entry[S]) {
	sn := h.snaps
	if sn == nil || e.version < e.snapVersion+sn.every {
		return
	}
	select {
	case sn.slots <- struct{}{}:
	default:
		return // busy: try again at the next commit
	}
	// States are never changed in place (Evolve returns a new one), so the
	// state can be encoded in the background; the command ids are shared
	// with later entries and are copied now, under the lock.
	s := snapshot{Format: snapshotFormat, Type: h.decider.Type, Shape: sn.shape,
		Version: e.version, LastSeq: e.lastSeq, Commands: e.commands.list()}
	state := e.state
	e.snapVersion = e.version
	sn.wg.Add(1)
	go func() {
		defer sn.wg.Done()
		defer func() { <-sn.slots }()
		if err := sn.write(h.decider.Type, id, state, s); err != nil {
			sn.log.Warn("snapshot not written", "aggregate", h.decider.Type, "id", id, "version", s.Version, "err", err)
		}
	}()
}

func (sn *snapshotter) write(typ, id string, state any, s snapshot) error {
	raw, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	s.State = raw
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sn.store.Put(ctx, typ, id, data)
}

func marshals(t reflect.Type) bool {
	m := reflect.TypeFor[json.Marshaler]()
	return t.Implements(m) || reflect.PointerTo(t).Implements(m)
}

// typeShape fingerprints a type's structure (field names, types and JSON
// tags, recursively), so that a snapshot of an older State is not taken
// for a newer one.
func typeShape(t reflect.Type) string {
	var b strings.Builder
	describe(&b, t, map[reflect.Type]bool{})
	f := fnv.New64a()
	f.Write([]byte(b.String()))
	return fmt.Sprintf("%016x", f.Sum64())
}

func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	b.WriteString(t.PkgPath() + "." + t.Name() + ":" + t.Kind().String())
	if seen[t] || marshals(t) {
		return // a type that encodes itself (time.Time) is known by its name
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, "%s %q ", f.Name, f.Tag.Get("json"))
			describe(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	case reflect.Map:
		b.WriteString("[")
		describe(b, t.Key(), seen)
		b.WriteString("]")
		describe(b, t.Elem(), seen)
	case reflect.Slice, reflect.Array, reflect.Pointer:
		b.WriteString("<")
		describe(b, t.Elem(), seen)
		b.WriteString(">")
	}
}

// MemorySnapshots is a SnapshotStore in memory, for tests and simulations.
type MemorySnapshots struct {
	mu   sync.Mutex
	data map[string][]byte
	puts int
}

// Get returns the stored snapshot.
func (m *MemorySnapshots) Get(_ context.Context, aggregateType, id string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.data[aggregateType+"\x00"+id]
	return append([]byte(nil), d...), ok, nil
}

// Put stores a snapshot.
func (m *MemorySnapshots) Put(_ context.Context, aggregateType, id string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	m.data[aggregateType+"\x00"+id] = append([]byte(nil), data...)
	m.puts++
	return nil
}

// Puts returns how many snapshots were written.
func (m *MemorySnapshots) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}
