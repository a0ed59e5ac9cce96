package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/sagas/monitors"
)

// Router as read, with its gateway (nil without one) and interfaces.
type Router struct {
	ID         string
	ProjectID  string
	Name       string
	Gateway    *router.Gateway
	Interfaces []router.Interface
	CreatedAt  time.Time
}

// FloatingIP as read; the association fields are nil while it points
// nowhere.
type FloatingIP struct {
	ID        string
	ProjectID string
	NetworkID string
	SubnetID  string
	IP        string
	PortID    *string
	FixedIP   *string
	RouterID  *string
	CreatedAt time.Time
}

// RouterFilter filters the router list.
type RouterFilter struct {
	Scope
	Name string
}

const routerCols = `SELECT id::text, project_id::text, name, gateway, interfaces, created_at FROM routers`

// Routers lists routers.
func (r *ReadModel) Routers(ctx context.Context, f RouterFilter, p Page) ([]Router, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	return list(ctx, r.Pool, routerCols, w, p, "created_at", pgx.RowToStructByPos[Router], func(x Router) (time.Time, string) { return x.CreatedAt, x.ID })
}

// Router returns one router.
func (r *ReadModel) Router(ctx context.Context, id string) (Router, error) {
	return one(ctx, r.Pool, routerCols+` WHERE id=$1`, pgx.RowToStructByPos[Router], id)
}

// FloatingIPFilter filters the floating IP list.
type FloatingIPFilter struct {
	Scope
	Network, Port, IP string
}

const floatingIPCols = `SELECT id::text, project_id::text, network_id::text, subnet_id::text, ip, port_id::text, fixed_ip, router_id::text, created_at FROM floating_ips`

// FloatingIPs lists floating IPs.
func (r *ReadModel) FloatingIPs(ctx context.Context, f FloatingIPFilter, p Page) ([]FloatingIP, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Network != "" {
		w.add("network_id = ?::uuid", f.Network)
	}
	if f.Port != "" {
		w.add("port_id = ?::uuid", f.Port)
	}
	if f.IP != "" {
		w.add("ip = ?", f.IP)
	}
	return list(ctx, r.Pool, floatingIPCols, w, p, "created_at", pgx.RowToStructByPos[FloatingIP], func(x FloatingIP) (time.Time, string) { return x.CreatedAt, x.ID })
}

// FloatingIP returns one floating IP.
func (r *ReadModel) FloatingIP(ctx context.Context, id string) (FloatingIP, error) {
	return one(ctx, r.Pool, floatingIPCols+` WHERE id=$1`, pgx.RowToStructByPos[FloatingIP], id)
}

// ExternalNetworks lists the ids of the external networks named name, of
// any project: every project may use them.
func (r *ReadModel) ExternalNetworks(ctx context.Context, name string, n int) ([]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id::text FROM networks WHERE external AND name = $1 ORDER BY created_at, id LIMIT $2`, name, n)
	if err != nil {
		return nil, fmt.Errorf("query external networks: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// OrphanedAssociations implements monitors.AssociationFinder: floating
// IPs associated, before a time, with a port the read model does not show.
func (r *ReadModel) OrphanedAssociations(ctx context.Context, before time.Time, n int) ([]monitors.Association, error) {
	rows, err := r.Pool.Query(ctx, `SELECT f.id::text, f.port_id::text FROM floating_ips f
		WHERE f.port_id IS NOT NULL AND f.created_at < $1 AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.id = f.port_id)
		ORDER BY f.created_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query floating ip associations: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.Association])
}

// StaleRouterFloatingIPs implements monitors.AssociationFinder: floating
// IPs a router has listed since before a time without the floating IP
// being associated through that router (or existing at all).
func (r *ReadModel) StaleRouterFloatingIPs(ctx context.Context, before time.Time, n int) ([]monitors.RouterFloatingIP, error) {
	rows, err := r.Pool.Query(ctx, `SELECT x.router_id::text, x.floating_ip_id::text, x.seq FROM router_floating_ips x
		LEFT JOIN floating_ips f ON f.id = x.floating_ip_id
		WHERE x.attached_at < $1 AND (f.id IS NULL OR f.router_id IS DISTINCT FROM x.router_id)
		ORDER BY x.attached_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query router floating ips: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.RouterFloatingIP])
}

// OrphanedRouterPorts implements monitors.RouterPortFinder: ports a router
// owns, made before a time, that no router the read model shows lists.
func (r *ReadModel) OrphanedRouterPorts(ctx context.Context, before time.Time, n int) ([]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT p.id::text FROM ports p
		WHERE p.device_owner IN ('network:router_interface', 'network:router_gateway') AND p.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM routers r WHERE r.id::text = p.device_id
			AND (r.gateway->>'port_id' = p.id::text OR r.interfaces @> jsonb_build_array(jsonb_build_object('port_id', p.id::text))))
		ORDER BY p.created_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query router ports: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// FloatingIPsOfPort names the floating IPs associated with a port, of any
// project.
func (r *ReadModel) FloatingIPsOfPort(ctx context.Context, portID string) ([]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id::text FROM floating_ips WHERE port_id = $1::uuid`, portID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
