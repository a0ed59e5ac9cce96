package projections

import (
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// Usage records when each server ran, for billing: usage_servers keeps
// what server.created said of a server (project, name, flavor), and
// usage_intervals one row per interval in which its power was RUNNING.
//
// An interval starts at spawned, started, rebooted, or a power observation
// of RUNNING, and ends at stopped, failed, lost, deleted, or a power
// observation of anything else. Its times are the events' own (their At),
// never this process's clock, so a rebuild from the log gives the same
// rows. Later events do not carry the flavor: an interval's start copies
// it from usage_servers within its INSERT ... SELECT (a read inside the
// statement, not in Apply). A start while an interval is open does
// nothing (usage_intervals_open, a unique index on the open interval), nor
// does an end when none is open.
var Usage = Projection{Name: "usage", Version: 1, Tables: []string{"usage_servers", "usage_intervals"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != server.AggregateType {
			return nil
		}
		u := usageWriter{w: w, servers: t.T("usage_servers"), intervals: t.T("usage_intervals"), env: env}
		for i, ev := range events {
			switch e := ev.(type) {
			case *server.Created:
				u.created(e)
			case *server.Spawned:
				u.start(i, e.At)
			case *server.Started:
				u.start(i, e.At)
			case *server.Rebooted:
				u.start(i, e.At)
			case *server.PowerObserved:
				if e.Power == server.Running {
					u.start(i, e.At)
				} else {
					u.end(e.At)
				}
			case *server.Stopped:
				u.end(e.At)
			case *server.Failed:
				u.end(e.At)
			case *server.Lost:
				u.end(e.At)
			case *server.Deleted:
				u.end(e.At)
			}
		}
		return nil
	}}

// usageWriter writes one server commit's usage rows. Its statements are
// never folded (Exec): each reads the rows the one before it wrote.
type usageWriter struct {
	w                  *Writer
	servers, intervals string
	env                domain.Envelope
}

func (u usageWriter) created(e *server.Created) {
	project := e.Project
	if project == "" {
		project = u.env.Project
	}
	u.w.Exec(u.env.AggregateID, `INSERT INTO `+u.servers+` (id, project_id, name, flavor_id, flavor_name, vcpus, ram_mib, created_at, seq)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING`,
		u.env.AggregateID, nullable(project), e.Name, e.Flavor.ID, e.Flavor.Name, e.Flavor.VCPUs, e.Flavor.RAMMiB, e.CreatedAt, u.env.Sequence)
}

// start opens an interval at the idx-th event of the commit, unless one is
// open (the conflict on usage_intervals_open).
func (u usageWriter) start(idx int, at time.Time) {
	u.w.Exec(u.env.AggregateID, `INSERT INTO `+u.intervals+` (resource_type, resource_id, start_seq, start_idx, project_id,
			flavor_id, flavor_name, vcpus, ram_mib, started_at)
		SELECT 'server', id, $2, $3, project_id, flavor_id, flavor_name, vcpus, ram_mib, $4 FROM `+u.servers+` WHERE id=$1
		ON CONFLICT DO NOTHING`,
		u.env.AggregateID, u.env.Sequence, idx, at)
}

// end closes the open interval, if there is one.
func (u usageWriter) end(at time.Time) {
	u.w.Exec(u.env.AggregateID, `UPDATE `+u.intervals+` SET ended_at=greatest($2, started_at), end_seq=$3
		WHERE resource_type='server' AND resource_id=$1 AND ended_at IS NULL`,
		u.env.AggregateID, at, u.env.Sequence)
}
