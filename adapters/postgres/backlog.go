package postgres

import (
	"context"
	"fmt"
)

// BusyServers counts the servers with a task in progress: work the API
// accepted that the saga and the hosts have not finished.
func (r *ReadModel) BusyServers(ctx context.Context) (int, error) {
	return r.busy(ctx, "")
}

// BusyServersOf counts the servers of one project with an operation under way.
func (r *ReadModel) BusyServersOf(ctx context.Context, project string) (int, error) {
	return r.busy(ctx, project)
}

func (r *ReadModel) busy(ctx context.Context, project string) (int, error) {
	if project != "" {
		var n int
		if err := r.Pool.QueryRow(ctx, `SELECT count(*) FROM servers WHERE task IS NOT NULL AND project_id = $1::uuid`, project).Scan(&n); err != nil {
			return 0, fmt.Errorf("count busy servers of project %s: %w", project, err)
		}
		return n, nil
	}
	var n int
	if err := r.Pool.QueryRow(ctx, `SELECT count(*) FROM servers WHERE task IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count busy servers: %w", err)
	}
	return n, nil
}
