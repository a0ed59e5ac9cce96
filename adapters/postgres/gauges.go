package postgres

import (
	"context"
	"fmt"
)

// HostCounts returns the registered hosts that are up and down and the
// claims they hold, for the metrics collector.
func (r *ReadModel) HostCounts(ctx context.Context) (up, down, claims int, err error) {
	err = r.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FILTER (WHERE NOT down) FROM hosts),
		(SELECT count(*) FILTER (WHERE down) FROM hosts),
		(SELECT count(*) FROM host_claims)`).Scan(&up, &down, &claims)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count hosts and claims: %w", err)
	}
	return up, down, claims, nil
}
