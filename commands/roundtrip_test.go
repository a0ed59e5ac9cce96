package commands

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// Every aggregate's state survives a snapshot exactly: random states, and
// states folded from random histories of the aggregate's registered events
// (decoded from JSON, as a replay does), come back deeply equal and decide
// the next command alike. It reads each State and event type by reflection,
// so a new field or event is covered without a change here; the commands
// listed are the ones decided after each restore.
func TestSnapshotRoundTripEveryAggregate(t *testing.T) {
	t.Run("flavor", func(t *testing.T) {
		roundTrip(t, flavor.Decider, []flavor.Command{flavor.Create{}, flavor.Delete{}})
	})
	t.Run("image", func(t *testing.T) {
		roundTrip(t, image.Decider, []image.Command{image.Create{}, image.RecordUpload{}, image.Delete{}})
	})
	t.Run("server", func(t *testing.T) {
		roundTrip(t, server.Decider, []server.Command{server.Create{}, server.Schedule{}, server.Start{}, server.Stop{}, server.Reboot{},
			server.Report{}, server.Fail{}, server.AbortTask{}, server.Delete{}, server.ForceDelete{}, server.SetNICs{}})
	})
	t.Run("operation", func(t *testing.T) {
		roundTrip(t, operation.Decider, []operation.Command{operation.Begin{}, operation.CompleteStep{}, operation.FailStep{},
			operation.ExpireStep{}, operation.Rewind{}, operation.Finish{}})
	})
	t.Run("host", func(t *testing.T) {
		roundTrip(t, host.Decider, []host.Command{host.Register{}, host.Claim{}, host.Release{}, host.Enable{}, host.Disable{},
			host.SetMaintenance{}, host.SetRatios{}, host.MarkDown{}, host.MarkUp{}, host.Remove{}})
	})
	t.Run("servergroup", func(t *testing.T) {
		roundTrip(t, servergroup.Decider, []servergroup.Command{servergroup.Create{}, servergroup.AddMember{}, servergroup.RemoveMember{}, servergroup.Delete{}})
	})
	t.Run("hostaggregate", func(t *testing.T) {
		roundTrip(t, hostaggregate.Decider, []hostaggregate.Command{hostaggregate.Create{}, hostaggregate.SetMetadata{},
			hostaggregate.AddHost{}, hostaggregate.RemoveHost{}, hostaggregate.Delete{}})
	})
}

func roundTrip[S any, C any](t *testing.T, d domain.Decider[S, C], cmds []C) {
	rng := rand.New(rand.NewPCG(1, uint64(len(d.Type))))
	h := New[S, C](nil, d, 10)
	UseSnapshots(h, &MemorySnapshots{}, 1, nil)
	check := func(what string, s S) {
		t.Helper()
		back := snapshotAndRestore(t, h, s)
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("%s: state changed through a snapshot:\nbefore %#v\nafter  %#v", what, s, back)
		}
		for _, c := range cmds {
			cmd := reflect.New(reflect.TypeOf(c)).Elem()
			fill(t, rng, cmd, "command")
			c := cmd.Interface().(C)
			ev1, err1 := decide(d, s, c)
			ev2, err2 := decide(d, back, c)
			// Refusals are compared by kind: a message may name one of
			// several wrong map entries, picked in map order.
			if !reflect.DeepEqual(ev1, ev2) || (err1 == nil) != (err2 == nil) || domain.KindOf(err1) != domain.KindOf(err2) {
				t.Fatalf("%s: %T decided %v %v before a snapshot, %v %v after", what, c, ev1, err1, ev2, err2)
			}
		}
	}
	for i := range 200 {
		var s S
		fill(t, rng, reflect.ValueOf(&s).Elem(), "State")
		check(fmt.Sprintf("random state %d", i), s)
	}
	types := make([]string, 0, len(d.Registry))
	for typ := range d.Registry {
		types = append(types, typ)
	}
	for i := range 100 {
		s := d.Initial("agg-1")
		for step := range 1 + rng.IntN(30) {
			ev := randomEvent(t, rng, d.Registry, types[rng.IntN(len(types))])
			next, ok := evolve(d, s, ev)
			if !ok {
				break // a random event this state can not take; the history ends
			}
			s = next
			check(fmt.Sprintf("history %d, step %d (%s)", i, step, ev.EventType()), s)
		}
	}
}

// snapshotAndRestore writes s through the handler's snapshot path and reads it back.
func snapshotAndRestore[S any, C any](t *testing.T, h *Handler[S, C], s S) S {
	t.Helper()
	e := &entry[S]{state: s, version: 1, lastSeq: 1, commands: newRecent()}
	h.maybeSnapshot("agg-1", e)
	h.WaitSnapshots()
	back := h.restore(context.Background(), "agg-1")
	if back == nil {
		t.Fatalf("no snapshot restored for %#v", s)
	}
	return back.state
}

// randomEvent fills an event of type typ and passes it through JSON, as
// the store does.
func randomEvent(t *testing.T, rng *rand.Rand, reg domain.Registry, typ string) domain.Event {
	ev := reg[typ]()
	fill(t, rng, reflect.ValueOf(ev).Elem(), typ)
	raw, err := domain.Encode([]domain.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	out, err := reg.DecodeAll(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func evolve[S any, C any](d domain.Decider[S, C], s S, ev domain.Event) (next S, ok bool) {
	defer func() { ok = recover() == nil && ok }()
	return d.Evolve(s, ev), true
}

func decide[S any, C any](d domain.Decider[S, C], s S, c C) (evs []domain.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return d.Decide(s, c)
}

var words = []string{"a", "b", "c", "host-1", "ünï", "x y"}

// fill sets v to a random value. Maps and slices are nil or non-empty, as
// JSON-decoded events make them; times are in UTC, as commands stamp them.
// A field a snapshot can not carry (unexported, an interface, a func)
// fails the test: the state would not survive a restart.
func fill(t *testing.T, rng *rand.Rand, v reflect.Value, path string) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(1e18)))
		v.Set(reflect.ValueOf(at))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s is unexported: a snapshot (JSON) would lose it", path, f.Name)
			}
			fill(t, rng, v.Field(i), path+"."+f.Name)
		}
	case reflect.String:
		v.SetString(words[rng.IntN(len(words))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.IntN(8)) - 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(rng.IntN(8)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(rng.Float64() * 4)
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(t, rng, v.Elem(), path)
		}
	case reflect.Slice:
		if n := rng.IntN(4); n > 0 {
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(t, rng, v.Index(i), path+"[]")
			}
		}
	case reflect.Map:
		if n := rng.IntN(4); n > 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				fill(t, rng, k, path+"[key]")
				fill(t, rng, e, path+"[]")
				v.SetMapIndex(k, e)
			}
		}
	default:
		t.Fatalf("%s is a %s: a snapshot (JSON) can not carry it", path, v.Kind())
	}
}
