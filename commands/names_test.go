package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/image"
)

// kvNames adapts the real KEEL_NAMES bucket to commands.NameStore, as
// cmd/internal/node does. age is added to the age of every entry: it lets a
// test see a reservation as older than it is, since the grace period of
// reservations cannot be configured.
type kvNames struct {
	kv  *keeljs.KV
	age *atomic.Int64 // nanoseconds
}

func (n kvNames) Create(ctx context.Context, key string, v []byte) error {
	return nameErr(n.kv.Create(ctx, key, v))
}

func (n kvNames) Update(ctx context.Context, key string, v []byte, rev uint64) error {
	return nameErr(n.kv.Update(ctx, key, v, rev))
}

func (n kvNames) Delete(ctx context.Context, key string) error { return n.kv.Delete(ctx, key) }

func (n kvNames) GetEntry(ctx context.Context, key string) ([]byte, uint64, time.Time, bool, error) {
	e, err := n.kv.GetEntry(ctx, key)
	if err != nil || e == nil {
		return nil, 0, time.Time{}, false, err
	}
	return e.Value, e.Revision, e.Created.Add(-time.Duration(n.age.Load())), true, nil
}

func nameErr(err error) error {
	if errors.Is(err, keeljs.ErrKeyExists) {
		return commands.ErrNameTaken
	}
	return err
}

// newApp builds an App (one replica) on the real store and names bucket.
func newApp(t *testing.T, store commands.EventStore, js *keeljs.Store, age *atomic.Int64) *commands.App {
	t.Helper()
	kv, err := keeljs.OpenKV(context.Background(), js.JS, keeljs.NamesBucket, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := commands.NewApp(store)
	a.Names = kvNames{kv: kv, age: age}
	return a
}

var small = flavor.Spec{Name: "m1.small", VCPUs: 1, RAMMiB: 1024, DiskGiB: 10}

func TestFlavorNamesAreUnique(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	age := &atomic.Int64{}
	a, b := newApp(t, s, s, age), newApp(t, s, s, age) // two replicas

	// Two creates of one name at once, on two replicas: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ids := make([]string, 2)
	for i, app := range []*commands.App{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := app.CreateFlavor(ctx, small, meta("create-"+string(rune('a'+i))))
			errs[i], ids[i] = err, string(r.State.ID)
		}()
	}
	wg.Wait()
	var winner string
	conflicts := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = ids[i]
		case domain.KindOf(err) == domain.Conflict, errors.Is(err, commands.ErrBusy):
			// Busy when the winner had not committed yet: a retry conflicts.
			conflicts++
		default:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if winner == "" || conflicts != 1 {
		t.Fatalf("concurrent creates of one name: %v; want one success and one Conflict or busy", errs)
	}
	// Later creates of the name, on either replica, conflict.
	if _, err := b.CreateFlavor(ctx, small, meta("create-c")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("create of a taken name: %v; want Conflict", err)
	}
	// A retry of the winning command is not a conflict (same id, same answer).
	winnerCmd, winnerApp := "create-a", a
	if ids[1] == winner {
		winnerCmd, winnerApp = "create-b", b
	}
	if r, err := b.CreateFlavor(ctx, small, meta(winnerCmd)); err != nil || !r.Duplicate || string(r.State.ID) != winner {
		t.Fatalf("retry of the winning create = %+v, %v; want a duplicate of %s", r, err, winner)
	}
	// Another name is free.
	other := small
	other.Name = "m1.other"
	if _, err := a.CreateFlavor(ctx, other, meta("create-other")); err != nil {
		t.Fatal(err)
	}

	// Deleting the flavor frees its name. (Deleted through the replica that
	// created it: the loser's cache may hold the state it saw while the
	// winner had not committed yet, see TestHandlerDoesNotRefuseOnAStaleCache.)
	if _, err := winnerApp.DeleteFlavor(ctx, winner, meta("delete")); err != nil {
		t.Fatal(err)
	}
	r, err := b.CreateFlavor(ctx, small, meta("create-d"))
	if err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if string(r.State.ID) == winner || !r.State.Exists {
		t.Fatalf("create after delete = %+v", r.State)
	}
	if _, err := a.CreateFlavor(ctx, small, meta("create-e")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("create of the reused name: %v; want Conflict", err)
	}

	// A replica died between a delete's commit and freeing the name: the
	// reservation of a deleted flavor is taken over.
	if _, err := b.Flavors.Handle(ctx, string(r.State.ID), flavor.Delete{}, meta("delete-no-release")); err != nil {
		t.Fatal(err)
	}
	r2, err := newApp(t, s, s, age).CreateFlavor(ctx, small, meta("create-f"))
	if err != nil {
		t.Fatalf("create over the reservation of a deleted flavor: %v", err)
	}
	if string(r2.State.ID) == string(r.State.ID) || !r2.State.Exists {
		t.Fatalf("create over a deleted holder = %+v", r2.State)
	}
}

// brokenStore reads through to the real store but every append fails, as when the
// replica that took a reservation dies before its first commit.
type brokenStore struct{ *keeljs.Store }

func (brokenStore) Append(context.Context, *domain.Envelope, uint64) (uint64, bool, error) {
	return 0, false, errors.New("replica died")
}

func TestAbandonedNameReservation(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	age := &atomic.Int64{}
	dead := newApp(t, brokenStore{s}, s, age)
	live := newApp(t, s, s, age)

	if _, err := dead.CreateFlavor(ctx, small, meta("doomed")); err == nil {
		t.Fatal("create on the broken replica succeeded")
	}
	// Within the grace period the creator might still commit: refused as
	// busy (a transient answer, 503 at the API, so a retry tries again).
	_, err := live.CreateFlavor(ctx, small, meta("live-1"))
	if !errors.Is(err, commands.ErrBusy) || !strings.Contains(err.Error(), "being created") {
		t.Fatalf("create while another holds a fresh reservation: %v; want ErrBusy (being created)", err)
	}
	// The grace (30s, a constant) is over: the reservation is taken over.
	age.Store(int64(31 * time.Second))
	r, err := live.CreateFlavor(ctx, small, meta("live-2"))
	if err != nil {
		t.Fatalf("create after the grace period: %v", err)
	}
	if !r.State.Exists || r.State.Spec.Name != small.Name {
		t.Fatalf("create after the grace period = %+v", r.State)
	}
	// The old creator, retried, now finds the name taken.
	if _, err := newApp(t, s, s, age).CreateFlavor(ctx, small, meta("doomed")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("retry of the abandoned create: %v; want Conflict", err)
	}
}

// Two replicas with their own caches: what one replica recorded must be
// seen by the other, whose cache still holds the aggregate's older state.
// Here an image is created on replica A, its upload recorded on replica B,
// and a server created from it on replica A.
func TestCreateServerSeesUploadRecordedByAnotherReplica(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	age := &atomic.Int64{}
	a, b := newApp(t, s, s, age), newApp(t, s, s, age)

	fl, err := a.CreateFlavor(ctx, small, meta("flavor"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := a.CreateImage(ctx, image.Spec{Name: "debian", DiskFormat: "raw"}, meta("image"))
	if err != nil {
		t.Fatal(err)
	}
	imageID := string(im.State.ID)
	if _, err := b.Images.Handle(ctx, imageID, image.RecordUpload{Object: "o", Size: 10, SHA256: "abc", At: time.Now()}, meta("upload")); err != nil {
		t.Fatal(err)
	}
	res, _, err := a.CreateServer(ctx, commands.CreateServerRequest{Name: "web", FlavorID: string(fl.State.ID), ImageID: imageID}, meta("server"))
	if err != nil {
		t.Fatalf("create server on replica A after the upload was recorded on replica B: %v", err)
	}
	if !res.State.Exists {
		t.Fatalf("server = %+v", res.State)
	}
}

// The same staleness through a plain handler: replica A looked at a flavor
// before it existed; replica B created it; A is asked to delete it.
func TestHandlerDoesNotRefuseOnAStaleCache(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	a := commands.New(s, flavor.Decider, 100)
	b := commands.New(s, flavor.Decider, 100)
	if st, _, err := a.Load(ctx, "f1"); err != nil || st.Exists {
		t.Fatalf("Load = %+v, %v", st, err)
	}
	if _, err := b.Handle(ctx, "f1", flavor.Create{ID: "f1", Spec: small}, meta("create")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Handle(ctx, "f1", flavor.Delete{}, meta("delete")); err != nil {
		t.Fatalf("delete on replica A of a flavor created on replica B: %v", err)
	}
}

// A name resolves from the reservations and the holder's stream the moment
// its create returns, with no read model at all; a deleted one does not.
func TestLookupNameIsConsistent(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	a := newApp(t, s, s, &atomic.Int64{})
	if _, found, err := a.LookupName(ctx, commands.KindFlavor, "", small.Name); err != nil || found {
		t.Fatalf("lookup before create: found %v, %v", found, err)
	}
	r, err := a.CreateFlavor(ctx, small, meta("create"))
	if err != nil {
		t.Fatal(err)
	}
	id, found, err := a.LookupName(ctx, commands.KindFlavor, "", small.Name)
	if err != nil || !found || id != string(r.State.ID) {
		t.Fatalf("lookup right after create = %q, %v, %v; want %s", id, found, err, r.State.ID)
	}
	if _, found, _ := a.LookupName(ctx, commands.KindImage, "", small.Name); found {
		t.Fatal("a flavor's name resolved as an image")
	}
	if _, err := a.DeleteFlavor(ctx, id, meta("delete")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := a.LookupName(ctx, commands.KindFlavor, "", small.Name); err != nil || found {
		t.Fatalf("lookup after delete: found %v, %v", found, err)
	}
}
