package commands_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
)

func TestHandleAppendsAndCaches(t *testing.T) {
	s := openStore(t)
	cs := newCounted(s)
	h := newCounter(cs)
	ctx := ctxT(t)

	r1, err := h.Handle(ctx, "c1", inc{Tag: "one"}, meta("cmd-1"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Duplicate || r1.Version != 1 || r1.State.N != 1 || r1.Seq == 0 {
		t.Fatalf("first Handle = %+v", r1)
	}
	loadsAfterFirst := cs.loadCount()
	r2, err := h.Handle(ctx, "c1", inc{Tag: "two"}, meta("cmd-2"))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Version != 2 || r2.State.N != 2 || r2.Seq <= r1.Seq || r2.Duplicate {
		t.Fatalf("second Handle = %+v", r2)
	}
	if n := cs.loadCount(); n != loadsAfterFirst {
		t.Fatalf("Handle read the store %d more times for a cached aggregate", n-loadsAfterFirst)
	}
	st, v, err := h.Load(ctx, "c1")
	if err != nil || v != 2 || st.N != 2 || strings.Join(st.Applied, ",") != "one,two" {
		t.Fatalf("Load = %+v v%d %v", st, v, err)
	}
	// Load checks the subject once for commits made by other replicas.
	if n := cs.loadCount(); n != loadsAfterFirst+1 {
		t.Fatalf("Load read the store %d times for a cached aggregate, want 1", n-loadsAfterFirst)
	}

	envs := history(t, s, "counter", "c1")
	if len(envs) != 2 || envs[0].Version != 1 || envs[1].Version != 2 ||
		envs[0].CommandID != "cmd-1" || envs[1].CommandID != "cmd-2" || envs[1].Sequence != r2.Seq ||
		envs[0].Actor.User != "test" || envs[0].OccurredAt.IsZero() {
		t.Fatalf("history = %+v", envs)
	}
}

func TestHandleRepeatedCommandIsDuplicate(t *testing.T) {
	s := openStore(t)
	h := newCounter(s)
	ctx := ctxT(t)
	r1, err := h.Handle(ctx, "c1", inc{Tag: "one"}, meta("cmd-1"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.Handle(ctx, "c1", inc{Tag: "two"}, meta("cmd-2"))
	if err != nil {
		t.Fatal(err)
	}
	before := head(t, s)

	// The same handler: answered from its cache.
	d, err := h.Handle(ctx, "c1", inc{Tag: "one-again"}, meta("cmd-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Duplicate || d.Seq != r1.Seq || d.State.N != 2 {
		t.Fatalf("repeat on the same handler = %+v; want duplicate of seq %d", d, r1.Seq)
	}

	// A fresh handler (another replica, or after a restart): the command id
	// is found in the aggregate's history, for the last and an older commit.
	for _, c := range []struct {
		id  string
		seq uint64
	}{{"cmd-2", r2.Seq}, {"cmd-1", r1.Seq}} {
		cold := newCounter(s)
		d, err := cold.Handle(ctx, "c1", inc{Tag: "again"}, meta(c.id))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Duplicate || d.Seq != c.seq || d.State.N != 2 || d.Version != 2 {
			t.Fatalf("repeat of %s on a cold handler = %+v; want duplicate of seq %d", c.id, d, c.seq)
		}
	}
	if after := head(t, s); after != before {
		t.Fatalf("repeated commands wrote %d commits", after-before)
	}
	if envs := history(t, s, "counter", "c1"); len(envs) != 2 {
		t.Fatalf("aggregate has %d commits, want 2", len(envs))
	}
}

// Two handlers with their own caches (two replicas) act on one aggregate at
// once. Every call ends in success or ErrConcurrency after MaxAttempts; the
// log holds exactly the successful commands, with contiguous versions.
func TestConcurrentHandlersBoundedRetry(t *testing.T) {
	s := openStore(t)
	cs := newCounted(s)
	hs := []*commands.Handler[counterState, inc]{newCounter(cs), newCounter(cs)}
	ctx := ctxT(t)
	const perHandler = 50
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded = map[string]uint64{} // command id -> seq
		failed    []string
		problems  []string
	)
	for i := 0; i < 2*perHandler; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cmd-%03d", i)
			r, err := hs[i%2].Handle(ctx, "hot", inc{Tag: id}, meta(id))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && !r.Duplicate:
				succeeded[id] = r.Seq
			case err == nil:
				problems = append(problems, fmt.Sprintf("%s: reported duplicate of seq %d", id, r.Seq))
			case errors.Is(err, commands.ErrConcurrency):
				failed = append(failed, id)
			default:
				problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("unexpected outcomes: %v", problems)
	}
	envs := history(t, s, "counter", "hot")
	if len(envs) != len(succeeded) {
		t.Fatalf("%d commits for %d successful commands (%d refused with ErrConcurrency)", len(envs), len(succeeded), len(failed))
	}
	seen := map[string]bool{}
	for i, env := range envs {
		if env.Version != uint64(i+1) {
			t.Fatalf("commit %d has version %d; versions must be contiguous from 1", i, env.Version)
		}
		if seen[env.CommandID] {
			t.Fatalf("command %s committed twice", env.CommandID)
		}
		seen[env.CommandID] = true
		if seq, ok := succeeded[env.CommandID]; !ok || seq != env.Sequence {
			t.Fatalf("commit of %s at %d: caller was told seq %d (ok=%v)", env.CommandID, env.Sequence, seq, ok)
		}
	}
	cs.mu.Lock()
	for _, id := range failed {
		if n := cs.appends[id]; n != commands.MaxAttempts {
			t.Errorf("%s gave up after %d appends, want MaxAttempts=%d", id, n, commands.MaxAttempts)
		}
	}
	for id, n := range cs.appends {
		if n > commands.MaxAttempts {
			t.Errorf("%s tried %d appends, more than MaxAttempts=%d", id, n, commands.MaxAttempts)
		}
	}
	cs.mu.Unlock()
	st, v, err := newCounter(s).Load(ctx, "hot")
	if err != nil || st.N != len(succeeded) || v != uint64(len(succeeded)) {
		t.Fatalf("fresh Load = N %d v%d %v; want %d", st.N, v, err, len(succeeded))
	}
	t.Logf("%d succeeded, %d gave up with ErrConcurrency", len(succeeded), len(failed))
}

func TestRefusedDecisionWritesNothing(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	h := commands.New(s, flavor.Decider, 100)
	if _, err := h.Handle(ctx, "f1", flavor.Delete{}, meta("del-missing")); domain.KindOf(err) != domain.NotFound {
		t.Fatalf("delete of a missing flavor: %v; want NotFound", err)
	}
	if _, err := h.Handle(ctx, "f1", flavor.Create{ID: "f1", Spec: flavor.Spec{Name: "", VCPUs: 1, RAMMiB: 1}}, meta("bad")); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("invalid create: %v; want Invalid", err)
	}
	if n := head(t, s); n != 0 {
		t.Fatalf("refused commands wrote %d commits", n)
	}
	spec := flavor.Spec{Name: "small", VCPUs: 1, RAMMiB: 512}
	if _, err := h.Handle(ctx, "f1", flavor.Create{ID: "f1", Spec: spec}, meta("create")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, "f1", flavor.Create{ID: "f1", Spec: spec}, meta("create-again")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("second create: %v; want Conflict", err)
	}
	// A cold handler refuses too, and writes nothing either.
	if _, err := commands.New(s, flavor.Decider, 100).Handle(ctx, "f1", flavor.Create{ID: "f1", Spec: spec}, meta("create-3")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("create on a cold handler: %v; want Conflict", err)
	}
	if n := head(t, s); n != 1 {
		t.Fatalf("stream holds %d commits, want 1", n)
	}
	// The counter refuses the tag "refuse" whatever its state.
	c := newCounter(s)
	if _, err := c.Handle(ctx, "c", inc{Tag: "refuse"}, meta("r")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("refusal: %v", err)
	}
	if n := head(t, s); n != 1 {
		t.Fatalf("stream holds %d commits after a refusal, want 1", n)
	}
}

// A command without a command id can not be recognised as a retry, so the
// handler (which explicitly accepts empty ids) must treat it as new every
// time: each accepted call is one commit.
func TestCommandsWithoutIDAreNeverTakenForDuplicates(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	h1, h2 := newCounter(s), newCounter(s)
	for i, h := range []*commands.Handler[counterState, inc]{h1, h2, h1} {
		r, err := h.Handle(ctx, "c", inc{Tag: fmt.Sprint(i)}, commands.Meta{})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if r.Duplicate {
			t.Errorf("call %d (no command id) reported as a duplicate of seq %d: its event was dropped", i, r.Seq)
		}
	}
	if envs := history(t, s, "counter", "c"); len(envs) != 3 {
		t.Fatalf("3 accepted commands wrote %d commits", len(envs))
	}
}

// IfVersion (an HTTP If-Match) lets a command through only at that version,
// checked against the subject, not a cache another replica made stale; a
// stale one is a *StaleError naming the current version, and writes nothing.
func TestIfVersion(t *testing.T) {
	store, ctx := openStore(t), ctxT(t)
	h, other := newCounter(store), newCounter(store)
	if _, err := h.Handle(ctx, "c-1", inc{Tag: "a"}, meta("v1")); err != nil {
		t.Fatal(err)
	}
	at := func(id string, v uint64) commands.Meta { m := meta(id); m.IfVersion = v; return m }
	res, err := h.Handle(ctx, "c-1", inc{Tag: "b"}, at("v2", 1))
	if err != nil || res.Version != 2 {
		t.Fatalf("at the current version: %+v, %v", res, err)
	}
	// Another replica moves it on: this handler's cache says 2, the subject 3.
	if _, err := other.Handle(ctx, "c-1", inc{Tag: "c"}, meta("v3")); err != nil {
		t.Fatal(err)
	}
	before := head(t, store)
	_, err = h.Handle(ctx, "c-1", inc{Tag: "d"}, at("stale", 2))
	var stale *commands.StaleError
	if !errors.As(err, &stale) || stale.Current != 3 || stale.Want != 2 || !strings.Contains(err.Error(), "counter c-1 is at version 3, not 2") {
		t.Fatalf("stale If-Match: %v", err)
	}
	if head(t, store) != before {
		t.Fatal("a stale If-Match wrote")
	}
	// A version the cache has not seen yet is the subject's: accepted.
	fresh := newCounter(store)
	if _, err := fresh.Handle(ctx, "c-1", inc{Tag: "e"}, at("v4", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, "c-1", inc{Tag: "f"}, at("v5", 4)); err != nil {
		t.Fatalf("behind the subject, at its version: %v", err)
	}
	// The retry of a command that landed is its first answer, whatever the version now.
	if res, err := h.Handle(ctx, "c-1", inc{Tag: "e"}, at("v4", 3)); err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v, %v", res, err)
	}
}
