package postgres

import (
	"context"
	"fmt"
)

// BusyServers counts the servers with a task in progress: work the API
// accepted that the saga and the hosts have not finished.
func (r *ReadModel) BusyServers(ctx context.Context) (int, error) {
	var n int
	if err := r.Pool.QueryRow(ctx, `SELECT count(*) FROM servers WHERE task IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count busy servers: %w", err)
	}
	return n, nil
}
