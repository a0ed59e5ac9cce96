package projections_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/billing"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/projections"
)

// script appends server commits with hand-chosen times straight to the
// log, as the saga and the hosts would have.
type script struct {
	t     *testing.T
	store eventlog.Store
	last  map[string]uint64 // aggregate id -> its last commit's sequence
	vers  map[string]uint64
}

func (s *script) commit(id, project string, at time.Time, evs ...domain.Event) {
	s.t.Helper()
	raw, err := domain.Encode(evs)
	must(s.t, err)
	s.vers[id]++
	env := &domain.Envelope{CommandID: uuid.NewString(), AggregateType: server.AggregateType, AggregateID: id,
		Version: s.vers[id], Events: raw, OccurredAt: at, Actor: domain.Actor{User: "test"}, Project: project}
	seq, _, err := s.store.Append(ctxT(s.t), env, s.last[id])
	must(s.t, err)
	s.last[id] = seq
}

func (s *script) created(id, project, name string, f server.Flavor, at time.Time) {
	s.commit(id, project, at, &server.Created{ID: server.ID(id), Project: project, Name: name, Flavor: f,
		ImageID: uuid.NewString(), Operation: uuid.NewString(), CreatedAt: at})
	s.commit(id, project, at, &server.Scheduled{Host: "h1", Operation: uuid.NewString(), At: at})
}

var (
	small = server.Flavor{ID: uuid.NewString(), Name: "m1.small", VCPUs: 1, RAMMiB: 2048, DiskGiB: 10}
	large = server.Flavor{ID: uuid.NewString(), Name: "m1.large", VCPUs: 4, RAMMiB: 8192, DiskGiB: 40}
	// prices has m1.small by name; m1.large is priced by its vCPUs and RAM:
	// 4 × 0.01 + 8 GiB × 0.005 = 0.08 an hour.
	prices = billing.Prices{Currency: "EUR", Flavors: map[string]float64{"m1.small": 0.012}, VCPUHour: 0.01, RAMGiBHour: 0.005}
)

// A scripted day of one project, and a server of another project:
//
//	web (m1.small): created 00:00, running 01:00-05:30, stopped, started
//	  10:00, rebooted 14:00-14:01 (still running: no new interval), deleted 22:15:
//	  4.5 h + 12.25 h = 16.75 h, at 0.012 = 0.201 EUR
//	db (m1.large): created 11:50, running from 12:00 on: 12 h, at 0.08 = 0.96 EUR
//	broken (m1.small): created 03:00, its build failed at 03:10: no line
//	other (another project, m1.large): running 00:30-06:00 and, after its
//	  host found it shut off and then running again (drift), 07:00 on
func scriptedDay(t *testing.T, s *script, day time.Time, project, otherProject string) (web, db, other string) {
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	web, db, broken, other := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	op := uuid.NewString

	s.created(web, project, "web", small, at(0, 0))
	s.commit(web, project, at(1, 0), &server.Spawned{Host: "h1", At: at(1, 0)})
	s.commit(web, project, at(5, 29), &server.StopRequested{Host: "h1", Operation: op(), At: at(5, 29)})
	s.commit(web, project, at(5, 30), &server.Stopped{Host: "h1", At: at(5, 30)})
	s.commit(web, project, at(9, 59), &server.StartRequested{Host: "h1", Operation: op(), At: at(9, 59)})
	s.commit(web, project, at(10, 0), &server.Started{Host: "h1", At: at(10, 0)})
	s.commit(web, project, at(14, 0), &server.RebootRequested{Host: "h1", Operation: op(), At: at(14, 0)})
	s.commit(web, project, at(14, 1), &server.Rebooted{Host: "h1", At: at(14, 1)})

	s.created(other, otherProject, "other", large, at(0, 0))
	s.commit(other, otherProject, at(0, 30), &server.Spawned{Host: "h1", At: at(0, 30)})
	s.commit(other, otherProject, at(6, 0), &server.PowerObserved{Host: "h1", Power: server.Shutoff, Previous: server.Running, At: at(6, 0)})
	s.commit(other, otherProject, at(7, 0), &server.PowerObserved{Host: "h1", Power: server.Running, Previous: server.Shutoff, At: at(7, 0)})

	s.created(broken, project, "broken", small, at(3, 0))
	s.commit(broken, project, at(3, 5), &server.SpawnFailed{Host: "h1", Reason: "no disk", Attempt: 1, At: at(3, 5)})
	s.commit(broken, project, at(3, 10), &server.Failed{Reason: "no valid host", Operation: op(), At: at(3, 10)})

	s.created(db, project, "db", large, at(11, 50))
	s.commit(db, project, at(12, 0), &server.Spawned{Host: "h1", At: at(12, 0)})

	s.commit(web, project, at(22, 14), &server.DeleteRequested{Host: "h1", Operation: op(), At: at(22, 14)})
	s.commit(web, project, at(22, 15), &server.Deleted{Host: "h1", At: at(22, 15)})
	return web, db, other
}

// Billing totals of a scripted day equal the hand-computed ones; windows
// clip intervals, an open interval counts up to now, other projects are
// apart, and a rebuild from the log gives the same bill.
func TestUsageOfAScriptedDay(t *testing.T) {
	_, store := jstest.Store(t, 0)
	s := &script{t: t, store: store, last: map[string]uint64{}, vers: map[string]uint64{}}
	day := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	project, otherProject := uuid.NewString(), uuid.NewString()
	web, db, other := scriptedDay(t, s, day, project, otherProject)

	pool := newDB(t)
	r := &projections.Runner{Pool: pool, Events: store, Projections: projections.All(), Log: quietLog()}
	stop := start(t, r)
	w := &world{t: t, store: store}
	w.caughtUp(r)
	must(t, stop())
	read := &postgres.ReadModel{Pool: pool}
	later := day.Add(48 * time.Hour)
	bill := func(project string, from, to, now time.Time) billing.Bill {
		t.Helper()
		us, err := read.Usage(ctxT(t), project, from, to, now)
		must(t, err)
		return prices.Bill(us)
	}

	wholeDay := bill(project, day, day.Add(24*time.Hour), later)
	want := billing.Bill{Currency: "EUR", Lines: []billing.Line{
		{Usage: billing.Usage{ResourceType: "server", ResourceID: db, Name: "db", Flavor: flavorOf(large), Seconds: 12 * 3600},
			Hours: 12, VCPUHours: 48, RAMGiBHours: 96, Cost: 0.96},
		{Usage: billing.Usage{ResourceType: "server", ResourceID: web, Name: "web", Flavor: flavorOf(small), Seconds: 16*3600 + 45*60},
			Hours: 16.75, VCPUHours: 16.75, RAMGiBHours: 33.5, Cost: 0.201},
	}, Totals: billing.Totals{ServerHours: 28.75, VCPUHours: 64.75, RAMGiBHours: 129.5, Cost: 1.161}}
	sameBill(t, "the whole day", wholeDay, want)

	// A window that ends at 18:00 clips web's second interval and db's.
	morning := bill(project, day, day.Add(18*time.Hour), later)
	if got := hoursOf(morning); !reflect.DeepEqual(got, map[string]float64{"web": 12.5, "db": 6}) {
		t.Errorf("until 18:00: hours %v; want web 12.5 (4.5 + 8), db 6", got)
	}
	// Asked at 23:00, db's open interval counts up to then.
	atEleven := bill(project, day, day.Add(24*time.Hour), day.Add(23*time.Hour))
	if got := hoursOf(atEleven); !reflect.DeepEqual(got, map[string]float64{"web": 16.75, "db": 11}) {
		t.Errorf("asked at 23:00: hours %v; want web 16.75, db 11", got)
	}
	// The other project sees its own server only: 5.5 h, then 17 h after the drift.
	theirs := bill(otherProject, day, day.Add(24*time.Hour), later)
	if len(theirs.Lines) != 1 || theirs.Lines[0].ResourceID != other || theirs.Totals.ServerHours != 22.5 {
		t.Errorf("other project's bill = %+v; want the one line of server %s, 22.5 h", theirs, other)
	}
	// Before anything ran: nothing.
	if b := bill(project, day.Add(-24*time.Hour), day, later); len(b.Lines) != 0 || b.Totals != (billing.Totals{}) {
		t.Errorf("the day before: %+v; want no lines", b)
	}

	before := dump(t, pool)
	_, err := r.Rebuild(ctxT(t), projections.Usage)
	must(t, err)
	sameBill(t, "after a rebuild", bill(project, day, day.Add(24*time.Hour), later), want)
	sameTables(t, dump(t, pool), before)
}

func flavorOf(f server.Flavor) billing.Flavor {
	return billing.Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAMMiB}
}

func hoursOf(b billing.Bill) map[string]float64 {
	out := map[string]float64{}
	for _, l := range b.Lines {
		out[l.Name] += l.Hours
	}
	return out
}

func sameBill(t *testing.T, what string, got, want billing.Bill) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: bill\n got  %+v\n want %+v", what, got, want)
	}
}
