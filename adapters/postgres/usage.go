package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/billing"
)

// Usage returns how long each server of project ran within [from, to), by
// server and flavor, in whole seconds (the sum of its intervals, each
// clipped to the window, rounded once per line). An interval still open
// counts up to now (never beyond to). Servers that did not run within the
// window have no line. Ordered by server name, then id.
func (r *ReadModel) Usage(ctx context.Context, project string, from, to, now time.Time) ([]billing.Usage, error) {
	rows, err := r.Pool.Query(ctx, `
		SELECT i.resource_type, i.resource_id::text, coalesce(s.name, ''), i.flavor_id, i.flavor_name, i.vcpus, i.ram_mib,
			round(sum(extract(epoch FROM greatest(least(coalesce(i.ended_at, $4), $3) - greatest(i.started_at, $2), interval '0'))))::bigint AS secs
		FROM usage_intervals i LEFT JOIN usage_servers s ON s.id = i.resource_id
		WHERE i.project_id = $1 AND i.started_at < $3 AND (i.ended_at IS NULL OR i.ended_at > $2)
		GROUP BY i.resource_type, i.resource_id, s.name, i.flavor_id, i.flavor_name, i.vcpus, i.ram_mib
		HAVING sum(extract(epoch FROM greatest(least(coalesce(i.ended_at, $4), $3) - greatest(i.started_at, $2), interval '0'))) > 0
		ORDER BY coalesce(s.name, ''), i.resource_id, i.flavor_name`, project, from, to, now)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Usage, error) {
		var u billing.Usage
		err := row.Scan(&u.ResourceType, &u.ResourceID, &u.Name, &u.Flavor.ID, &u.Flavor.Name, &u.Flavor.VCPUs, &u.Flavor.RAMMiB, &u.Seconds)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	return out, nil
}
