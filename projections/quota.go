package projections

import (
	"encoding/json"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
)

// QuotaHolds is the quota_holds table: each quota reservation still held,
// by project and key. The quota sweep (sagas/monitors) reads it to find
// reservations whose server never came to be; the quotas shown to users
// come from the project aggregate's counters, not from here.
var QuotaHolds = Projection{Name: "quota_holds", Version: 1, Tables: []string{"quota_holds"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		qh := t.T("quota_holds")
		for _, ev := range events {
			switch e := ev.(type) {
			case *project.QuotaReserved:
				amounts, err := json.Marshal(e.Amounts)
				if err != nil {
					return err
				}
				w.Exec(env.AggregateID, `INSERT INTO `+qh+` (project_id, key, amounts, reserved_at, seq) VALUES ($1,$2,$3,$4,$5)
					ON CONFLICT (project_id, key) DO NOTHING`, env.AggregateID, e.Key, amounts, e.At, env.Sequence)
			case *project.QuotaReleased:
				w.Exec(env.AggregateID, `DELETE FROM `+qh+` WHERE project_id=$1 AND key=$2`, env.AggregateID, e.Key)
			case *project.Deleted:
				w.Exec(env.AggregateID, `DELETE FROM `+qh+` WHERE project_id=$1`, env.AggregateID)
			}
		}
		return nil
	}}
