package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
	"github.com/keel-cloud/keel/sagas/monitors"
)

// Network as read, with the ids of its subnets.
type Network struct {
	ID              string
	ProjectID       string
	Name            string
	Kind            string
	PhysicalNetwork *string
	VLAN            *int
	External        bool
	MTU             int
	CreatedAt       time.Time
	Subnets         []string
}

// Subnet as read, with how many addresses it has handed out.
type Subnet struct {
	ID        string
	NetworkID string
	ProjectID string
	Name      *string
	CIDR      string
	Gateway   *string
	DHCP      bool
	DNS       []string
	Pools     []subnet.Pool
	Routes    []subnet.Route
	CreatedAt time.Time
	InUse     int
}

// Port as read.
type Port struct {
	ID             string
	NetworkID      string
	ProjectID      string
	Name           *string
	MAC            string
	FixedIPs       []port.FixedIP
	SecurityGroups []string
	PortSecurity   bool
	DeviceOwner    *string
	DeviceID       *string
	Host           *string
	CreatedAt      time.Time
}

// SecurityGroup as read, with its rules.
type SecurityGroup struct {
	ID          string
	ProjectID   string
	Name        string
	Description string
	Default     bool
	Rules       []secgroup.Rule
	CreatedAt   time.Time
}

// NetworkFilter filters the network list.
type NetworkFilter struct {
	Scope
	Name string
}

const networkCols = `SELECT id::text, project_id::text, name, kind, physical_network, vlan, external, mtu, created_at,
	coalesce((SELECT array_agg(s.id::text ORDER BY s.created_at, s.id) FROM subnets s WHERE s.network_id = n.id), '{}') FROM networks n`

// Networks lists networks.
func (r *ReadModel) Networks(ctx context.Context, f NetworkFilter, p Page) ([]Network, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	return list(ctx, r.Pool, networkCols, w, p, "created_at", pgx.RowToStructByPos[Network], func(n Network) (time.Time, string) { return n.CreatedAt, n.ID })
}

// Network returns one network.
func (r *ReadModel) Network(ctx context.Context, id string) (Network, error) {
	return one(ctx, r.Pool, networkCols+` WHERE id=$1`, pgx.RowToStructByPos[Network], id)
}

// SubnetFilter filters the subnet list.
type SubnetFilter struct {
	Scope
	Name, Network string
}

const subnetCols = `SELECT id::text, network_id::text, project_id::text, name, cidr, gateway, dhcp, dns, pools, routes, created_at,
	(SELECT count(*)::int FROM subnet_addresses a WHERE a.subnet_id = s.id) FROM subnets s`

// Subnets lists subnets.
func (r *ReadModel) Subnets(ctx context.Context, f SubnetFilter, p Page) ([]Subnet, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	if f.Network != "" {
		w.add("network_id = ?::uuid", f.Network)
	}
	return list(ctx, r.Pool, subnetCols, w, p, "created_at", pgx.RowToStructByPos[Subnet], func(s Subnet) (time.Time, string) { return s.CreatedAt, s.ID })
}

// Subnet returns one subnet.
func (r *ReadModel) Subnet(ctx context.Context, id string) (Subnet, error) {
	return one(ctx, r.Pool, subnetCols+` WHERE id=$1`, pgx.RowToStructByPos[Subnet], id)
}

// PortFilter filters the port list.
type PortFilter struct {
	Scope
	Name, Network, SecurityGroup string
}

const portCols = `SELECT id::text, network_id::text, project_id::text, name, mac, fixed_ips, security_groups, port_security,
	device_owner, device_id, host, created_at FROM ports`

// Ports lists ports.
func (r *ReadModel) Ports(ctx context.Context, f PortFilter, p Page) ([]Port, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	if f.Network != "" {
		w.add("network_id = ?::uuid", f.Network)
	}
	if f.SecurityGroup != "" {
		w.add("security_groups @> jsonb_build_array(?::text)", f.SecurityGroup)
	}
	return list(ctx, r.Pool, portCols, w, p, "created_at", pgx.RowToStructByPos[Port], func(pt Port) (time.Time, string) { return pt.CreatedAt, pt.ID })
}

// Port returns one port.
func (r *ReadModel) Port(ctx context.Context, id string) (Port, error) {
	return one(ctx, r.Pool, portCols+` WHERE id=$1`, pgx.RowToStructByPos[Port], id)
}

// CountPorts counts the ports of a network, or those in a security group.
func (r *ReadModel) CountPorts(ctx context.Context, f PortFilter) (int, error) {
	w := &where{}
	if f.Network != "" {
		w.add("network_id = ?::uuid", f.Network)
	}
	if f.SecurityGroup != "" {
		w.add("security_groups @> jsonb_build_array(?::text)", f.SecurityGroup)
	}
	var n int
	if err := r.Pool.QueryRow(ctx, `SELECT count(*) FROM ports`+w.sql(), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ports: %w", err)
	}
	return n, nil
}

// SecurityGroupFilter filters the security group list.
type SecurityGroupFilter struct {
	Scope
	Name string
}

const securityGroupCols = `SELECT id::text, project_id::text, name, description, is_default, rules, created_at FROM security_groups`

// SecurityGroups lists security groups.
func (r *ReadModel) SecurityGroups(ctx context.Context, f SecurityGroupFilter, p Page) ([]SecurityGroup, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	return list(ctx, r.Pool, securityGroupCols, w, p, "created_at", pgx.RowToStructByPos[SecurityGroup], func(g SecurityGroup) (time.Time, string) { return g.CreatedAt, g.ID })
}

// SecurityGroup returns one security group.
func (r *ReadModel) SecurityGroup(ctx context.Context, id string) (SecurityGroup, error) {
	return one(ctx, r.Pool, securityGroupCols+` WHERE id=$1`, pgx.RowToStructByPos[SecurityGroup], id)
}

// SuspectAllocations implements monitors.AllocationFinder: addresses handed
// out before a time that no port and no floating IP the read model shows
// holds.
func (r *ReadModel) SuspectAllocations(ctx context.Context, before time.Time, n int) ([]monitors.Allocation, error) {
	rows, err := r.Pool.Query(ctx, `SELECT a.subnet_id::text, a.key, a.ip, a.allocated_at FROM subnet_addresses a
		WHERE a.allocated_at < $1 AND NOT EXISTS (SELECT 1 FROM ports p
			WHERE p.id::text = a.key AND p.fixed_ips @> jsonb_build_array(jsonb_build_object('subnet_id', a.subnet_id::text, 'ip', a.ip)))
		AND NOT EXISTS (SELECT 1 FROM floating_ips f WHERE f.id::text = a.key AND f.subnet_id = a.subnet_id AND f.ip = a.ip)
		ORDER BY a.allocated_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query subnet addresses: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.Allocation])
}
