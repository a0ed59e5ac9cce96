package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
)

// slowAppends makes every append take a while, as on a busy disk, so that
// commands pile up behind one another.
type slowAppends struct{ *counted }

func (s slowAppends) Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (uint64, bool, error) {
	time.Sleep(20 * time.Millisecond)
	return s.counted.Append(ctx, env, expectedSeq)
}

func newProject(t *testing.T, h *commands.Handler[project.State, project.Command], id string, servers int) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := h.Handle(ctx, id, project.Create{ID: project.ID(id), Name: "p-" + id}, meta("create-"+id)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, id, project.SetQuotas{Limits: map[string]int{project.QuotaServers: servers}}, meta("quota-"+id)); err != nil {
		t.Fatal(err)
	}
}

func reserveOne(key string) project.Reserve {
	return project.Reserve{Key: key, Amounts: map[string]int{project.QuotaServers: 1, project.QuotaVCPUs: 2}}
}

// 100 callers reserve at once against a limit of 10: exactly 10 get it,
// the others a quota error of their own; the reservations went into far
// fewer commits than callers; a retried command id (on this handler, or on
// a fresh one that reads the batches from the log) reserves nothing more.
func TestBatchedReservationsHoldTheLimit(t *testing.T) {
	s := openStore(t)
	c := newCounted(s)
	h := commands.New[project.State, project.Command](slowAppends{c}, project.Decider, 100)
	newProject(t, h, "p1", 10)
	ctx := ctxT(t)

	const callers = 100
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.HandleBatched(ctx, "p1", reserveOne(fmt.Sprint("s", i)), meta(fmt.Sprint("r", i)))
		}()
	}
	wg.Wait()
	var ok []int
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, i)
		case domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "quota exceeded"):
			t.Fatalf("caller %d: %v; want success or quota exceeded", i, err)
		}
	}
	if len(ok) != 10 {
		t.Fatalf("%d reservations succeeded against a limit of 10", len(ok))
	}
	envs := history(t, s, project.AggregateType, "p1")
	reservationCommits := len(envs) - 2
	if reservationCommits >= 10 {
		t.Fatalf("10 reservations took %d commits; want them batched", reservationCommits)
	}
	st, _, err := h.Load(ctx, "p1")
	if err != nil || st.Used[project.QuotaServers] != 10 || st.Used[project.QuotaVCPUs] != 20 {
		t.Fatalf("use = %v (%v); want 10 servers, 20 vcpus", st.Used, err)
	}

	// Retries of accepted commands: the same handler, Handle and a fresh
	// handler (a restart) all know them.
	before := head(t, s)
	again := fmt.Sprint("r", ok[len(ok)-1])
	for name, retry := range map[string]func() (commands.Result[project.State], error){
		"batched": func() (commands.Result[project.State], error) {
			return h.HandleBatched(ctx, "p1", reserveOne("x"), meta(again))
		},
		"fresh handler": func() (commands.Result[project.State], error) {
			return commands.New[project.State, project.Command](s, project.Decider, 100).HandleBatched(ctx, "p1", reserveOne("x"), meta(again))
		},
		"fresh handler, unbatched": func() (commands.Result[project.State], error) {
			return commands.New[project.State, project.Command](s, project.Decider, 100).Handle(ctx, "p1", reserveOne("x"), meta(again))
		},
	} {
		res, err := retry()
		if err != nil || !res.Duplicate || res.State.Used[project.QuotaServers] != 10 {
			t.Fatalf("%s retry of %s = %+v, %v; want a duplicate with 10 servers used", name, again, res, err)
		}
	}
	if after := head(t, s); after != before {
		t.Fatalf("retries wrote %d commits", after-before)
	}

	// Releases batch the same way and give everything back.
	for _, i := range ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.HandleBatched(ctx, "p1", project.Release{Key: fmt.Sprint("s", i), Amounts: reserveOne("").Amounts}, meta(fmt.Sprint("rel", i)))
		}()
	}
	wg.Wait()
	for _, i := range ok {
		if errs[i] != nil {
			t.Fatalf("release %d: %v", i, errs[i])
		}
	}
	st, _, err = commands.New[project.State, project.Command](s, project.Decider, 100).Load(ctx, "p1")
	if err != nil || st.Used[project.QuotaServers] != 0 || st.Used[project.QuotaVCPUs] != 0 {
		t.Fatalf("use after releases = %v (%v); want none", st.Used, err)
	}
}

// One command id sent twice into the same batch is reserved once.
func TestBatchedRepeatWithinABatch(t *testing.T) {
	s := openStore(t)
	h := commands.New[project.State, project.Command](slowAppends{newCounted(s)}, project.Decider, 100)
	newProject(t, h, "p2", 100)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	results := make([]commands.Result[project.State], 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.HandleBatched(ctx, "p2", reserveOne(fmt.Sprint("k", i%10)), meta(fmt.Sprint("same", i%10)))
		}()
	}
	wg.Wait()
	dups := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if results[i].Duplicate {
			dups++
		}
	}
	st, _, _ := h.LoadLatest(ctx, "p2")
	if st.Used[project.QuotaServers] != 10 || dups != 10 {
		t.Fatalf("10 commands sent twice each: use %v, %d answered as duplicates; want 10 servers and 10 duplicates", st.Used, dups)
	}
}

// Two handlers (two replicas) batch against one project at once: their
// commits race, the losers retry, and the limit holds across both; the
// use counted equals the reservations granted.
func TestBatchedReservationsAcrossReplicas(t *testing.T) {
	s := openStore(t)
	a := commands.New[project.State, project.Command](slowAppends{newCounted(s)}, project.Decider, 100)
	b := commands.New[project.State, project.Command](s, project.Decider, 100)
	newProject(t, a, "p3", 30)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, exceeded := 0, 0
	for i := range 60 {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.HandleBatched(ctx, "p3", reserveOne(fmt.Sprint("k", i)), meta(fmt.Sprint("x", i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted++
			case strings.Contains(err.Error(), "quota exceeded"):
				exceeded++
			case errors.Is(err, commands.ErrConcurrency):
				// gave up after MaxAttempts lost races: nothing reserved
			default:
				t.Errorf("caller %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	st, _, err := commands.New[project.State, project.Command](s, project.Decider, 100).Load(ctx, "p3")
	if err != nil {
		t.Fatal(err)
	}
	if granted > 30 || st.Used[project.QuotaServers] != granted || (exceeded > 0 && granted != 30) {
		t.Fatalf("granted %d, refused for quota %d, use %v; want at most 30, use = granted, and refusals only once full", granted, exceeded, st.Used)
	}
}

// Each caller of a batch gets its own events in Result.Events (what tells
// a port which address the subnet gave it), none of the others'; a retry
// of a landed command gets none.
func TestBatchedResultsCarryEachCommandsOwnEvents(t *testing.T) {
	s := openStore(t)
	h := commands.New[project.State, project.Command](slowAppends{newCounted(s)}, project.Decider, 100)
	newProject(t, h, "p3", 100)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	results := make([]commands.Result[project.State], 30)
	errs := make([]error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.HandleBatched(ctx, "p3", reserveOne(fmt.Sprint("k", i)), meta(fmt.Sprint("ev", i)))
		}()
	}
	wg.Wait()
	seqs := map[uint64]bool{}
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		seqs[res.Seq] = true
		if len(res.Events) != 1 || res.Events[0].(*project.QuotaReserved).Key != fmt.Sprint("k", i) {
			t.Fatalf("caller %d got events %v; want its own reservation only", i, res.Events)
		}
	}
	if len(seqs) >= 30 {
		t.Fatalf("30 reservations in %d commits; want them batched", len(seqs))
	}
	res, err := h.HandleBatched(ctx, "p3", reserveOne("k0"), meta("ev0"))
	if err != nil || !res.Duplicate || res.Events != nil {
		t.Fatalf("retry = %+v, %v; want a duplicate without events", res, err)
	}
}
