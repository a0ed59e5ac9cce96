// Package commands turns commands into commits: it loads an aggregate (cache
// first, then its subject), calls the pure decider, and appends the decided
// events with optimistic concurrency, retrying a bounded number of times
// when another writer moved the aggregate on. Nothing else writes events.
//
// It must not read the Postgres read model: decisions rest on the event log
// alone.
package commands

import (
	"context"
	"fmt"
	"hash/fnv"
	"reflect"
	"sync"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
)

// EventStore is the port to the event log.
type EventStore = eventlog.Store

// ErrConcurrency is eventlog.ErrConcurrency, the store's own error for a
// lost optimistic race: a handler returns it (wrapped) when it gave up
// after MaxAttempts.
var ErrConcurrency = eventlog.ErrConcurrency

// Meta is what travels with a command besides its data.
type Meta struct {
	CommandID     string
	Actor         domain.Actor
	RequestID     string
	CorrelationID string
	CausationID   string
	// Scope, when set, is the one project the command may act in: an
	// aggregate another project owns answers "not found", as if it were
	// not there (a caller learns nothing of other projects). "" is a cloud
	// admin's, a saga's or an agent's command: any aggregate. Aggregates
	// no project owns (handlers without Owner: users, tokens, flavors,
	// hosts) are not scoped; who may command them is the API's policy and
	// its handlers' business (a user revokes only their own tokens).
	Scope string
	// IfVersion, when not 0, is the aggregate version the command is based
	// on (an HTTP If-Match): the command is refused with a *StaleError if
	// the aggregate is at another version.
	IfVersion uint64
}

// StaleError refuses a command whose IfVersion is not the aggregate's version.
type StaleError struct {
	Type, ID      string
	Want, Current uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s %s is at version %d, not %d", e.Type, e.ID, e.Current, e.Want)
}

// Result is the outcome of a command that was accepted.
type Result[S any] struct {
	Seq       uint64 // stream sequence of the commit (or of the aggregate's last commit for a no-op)
	Version   uint64 // aggregate version after the commit
	State     S      // state after the commit
	Duplicate bool   // the command id had already landed; nothing new was written
	// Events are the events this command decided, when it wrote them now
	// (nil for a duplicate or a no-op): in a batched commit, its own part.
	Events []domain.Event
}

// MaxAttempts bounds the retries when another writer moved the aggregate on.
const MaxAttempts = 6

// Handler handles the commands of one aggregate type.
type Handler[S any, C any] struct {
	store   EventStore
	decider domain.Decider[S, C]
	cache   *cache[S]
	locks   [256]sync.Mutex
	// Now stamps envelopes; tests may replace it.
	Now func() time.Time
	// FreshFor lets Load answer from the cache without asking the store when
	// the aggregate was checked this recently (0: always ask). Commands do
	// not depend on it: appends check the subject's last sequence.
	FreshFor time.Duration
	checked  sync.Map // id -> time.Time of the last check against the store
	queues   sync.Map // id -> *batchQueue, for HandleBatched
	// Metrics counts appended and refused commands (nil: not counted).
	Metrics *metrics.Set
	snaps   *snapshotter // nil: no snapshots (see UseSnapshots)
	// Owner returns the project that owns an aggregate ("" for the cloud's
	// own). Set, it scopes commands (Meta.Scope) and stamps each commit's
	// Envelope.Project; nil: the aggregate belongs to no project.
	Owner func(S) string
}

// New returns a handler for one aggregate. cacheSize bounds the cached states.
func New[S any, C any](store EventStore, d domain.Decider[S, C], cacheSize int) *Handler[S, C] {
	return &Handler[S, C]{store: store, decider: d, cache: newCache[S](cacheSize), Now: time.Now}
}

// Load returns the current state of one aggregate and its version. It
// checks the subject for commits made elsewhere (another replica) since the
// cached state, with one direct get.
func (h *Handler[S, C]) Load(ctx context.Context, id string) (S, uint64, error) {
	return h.load(ctx, id, h.FreshFor)
}

// LoadLatest is Load without FreshFor: it always asks the store for
// commits newer than the cached state, so it sees every commit made before
// it was called, by any replica.
func (h *Handler[S, C]) LoadLatest(ctx context.Context, id string) (S, uint64, error) {
	return h.load(ctx, id, 0)
}

func (h *Handler[S, C]) load(ctx context.Context, id string, freshFor time.Duration) (S, uint64, error) {
	// The common case, a cached aggregate with nothing new, asks the store
	// without holding the aggregate's lock, so readers of a hot aggregate
	// (the flavor every create names) do not queue behind each other.
	if e, ok := h.cache.get(id); ok {
		if freshFor > 0 {
			if at, ok := h.checked.Load(id); ok && time.Since(at.(time.Time)) < freshFor {
				return e.state, e.version, nil
			}
		}
		envs, err := h.store.Load(ctx, h.decider.Type, id, e.lastSeq)
		if err == nil && len(envs) == 0 {
			h.markChecked(id)
			return e.state, e.version, nil
		}
	}
	mu := &h.locks[stripe(id)]
	mu.Lock()
	defer mu.Unlock()
	e, err := h.fresh(ctx, id)
	if err != nil {
		var zero S
		return zero, 0, err
	}
	h.markChecked(id)
	return e.state, e.version, nil
}

// markChecked records a check against the store, for handlers with
// FreshFor (flavors and images: small sets).
func (h *Handler[S, C]) markChecked(id string) {
	if h.FreshFor > 0 {
		h.checked.Store(id, time.Now())
	}
}

// Create is Handle for a command that makes a new aggregate (its id fresh,
// derived from the command id): it decides against the initial state
// without reading the subject first. If the subject has commits after all
// (a retry, or another replica), the append is refused and it falls back to
// Handle's path: catch up, recognise the command id, or decide again.
func (h *Handler[S, C]) Create(ctx context.Context, id string, cmd C, meta Meta) (Result[S], error) {
	return h.handle(ctx, id, cmd, meta, true)
}

// Handle decides cmd against aggregate id and appends the result.
func (h *Handler[S, C]) Handle(ctx context.Context, id string, cmd C, meta Meta) (Result[S], error) {
	return h.handle(ctx, id, cmd, meta, false)
}

func (h *Handler[S, C]) handle(ctx context.Context, id string, cmd C, meta Meta, assumeNew bool) (Result[S], error) {
	o := h.commit(ctx, id, []C{cmd}, []Meta{meta}, assumeNew)[0]
	return o.res, o.err
}

// errNotInScope counts a command refused because another project owns
// its aggregate.
var errNotInScope = domain.NotFoundf("not in scope")

// refused counts a decider's refusal by its kind.
func (h *Handler[S, C]) refused(cmd C, err error) {
	reason := "other"
	switch domain.KindOf(err) {
	case domain.Invalid:
		reason = "invalid"
	case domain.Conflict:
		reason = "conflict"
	case domain.NotFound:
		reason = "not_found"
	}
	h.Metrics.CommandRefused(h.decider.Type, commandName(cmd), reason)
}

// commandName is the command's type name (server.Create gives "Create"):
// a closed set, fit for a metric label.
func commandName(cmd any) string {
	t := reflect.TypeOf(cmd)
	if t == nil {
		return "unknown"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// fresh returns the state with every commit on the subject folded in.
func (h *Handler[S, C]) fresh(ctx context.Context, id string) (*entry[S], error) {
	if e, ok := h.cache.get(id); ok {
		return h.catchUp(ctx, id, e)
	}
	return h.entry(ctx, id)
}

// entry returns the cached state, or loads it: from its snapshot and the
// commits after it when there is a usable one, else from the whole subject.
func (h *Handler[S, C]) entry(ctx context.Context, id string) (*entry[S], error) {
	if e, ok := h.cache.get(id); ok {
		return e, nil
	}
	if snap := h.restore(ctx, id); snap != nil {
		envs, err := h.store.Load(ctx, h.decider.Type, id, snap.lastSeq)
		if err != nil {
			return nil, err
		}
		// The commits after a snapshot continue its version; anything else
		// means the snapshot does not belong to this log: replay instead.
		if len(envs) == 0 || envs[0].Version == snap.version+1 {
			next, err := h.foldIn(id, snap, envs)
			if err != nil {
				return nil, err
			}
			h.cache.put(id, next)
			h.maybeSnapshot(id, next)
			return next, nil
		}
		h.snaps.log.Warn("snapshot does not match the log; replaying instead", "aggregate", h.decider.Type, "id", id,
			"snapshot_version", snap.version, "next_version", envs[0].Version)
	}
	return h.catchUp(ctx, id, &entry[S]{state: h.decider.Initial(id), commands: newRecent()})
}

// catchUp folds the commits after e.lastSeq into a new entry.
func (h *Handler[S, C]) catchUp(ctx context.Context, id string, e *entry[S]) (*entry[S], error) {
	envs, err := h.store.Load(ctx, h.decider.Type, id, e.lastSeq)
	if err != nil {
		return nil, err
	}
	if len(envs) == 0 && e.lastSeq > 0 {
		return e, nil // nothing new: keep the cached entry as it is
	}
	next, err := h.foldIn(id, e, envs)
	if err != nil {
		return nil, err
	}
	h.cache.put(id, next)
	h.maybeSnapshot(id, next)
	return next, nil
}

// foldIn returns a new entry with the commits envs folded into e.
func (h *Handler[S, C]) foldIn(id string, e *entry[S], envs []domain.Envelope) (*entry[S], error) {
	next := e.copy()
	for _, env := range envs {
		events, err := h.decider.Registry.DecodeAll(env.Events)
		if err != nil {
			return nil, fmt.Errorf("load %s %s: %w", h.decider.Type, id, err)
		}
		next = next.apply(h.decider, events, env.Sequence, env.CommandIDs()...)
		next.version = env.Version
	}
	return next, nil
}

func stripe(id string) int {
	f := fnv.New32a()
	f.Write([]byte(id))
	return int(f.Sum32() % 256)
}

// StateAt folds the commits of aggregate id made at or before at: its state
// as it was then, its version and the time of its last commit then.
// existed is false when it had no commit yet. It reads the whole subject
// (no cache, no snapshot): for looking back, not for deciding.
func (h *Handler[S, C]) StateAt(ctx context.Context, id string, at time.Time) (state S, version uint64, last time.Time, existed bool, err error) {
	envs, err := h.store.Load(ctx, h.decider.Type, id, 0)
	if err != nil {
		return state, 0, last, false, err
	}
	state = h.decider.Initial(id)
	for _, env := range envs {
		if env.OccurredAt.After(at) {
			break
		}
		events, err := h.decider.Registry.DecodeAll(env.Events)
		if err != nil {
			return state, 0, last, false, fmt.Errorf("load %s %s: %w", h.decider.Type, id, err)
		}
		state = h.decider.Fold(state, events)
		version, last, existed = env.Version, env.OccurredAt, true
	}
	return state, version, last, existed, nil
}
