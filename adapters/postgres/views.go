package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/monitors"
)

// Flavor as read.
type Flavor struct {
	ID         string
	Name       string
	VCPUs      int
	RAMMiB     int
	DiskGiB    int
	ExtraSpecs map[string]string
	CreatedAt  time.Time
}

// Keypair as read.
type Keypair struct {
	ID          string
	Name        string
	Type        string
	PublicKey   string
	Fingerprint string
	CreatedAt   time.Time
	ProjectID   *string
}

// Image as read.
type Image struct {
	ID         string
	Name       string
	DiskFormat string
	MinDiskGiB int
	MinRAMMiB  int
	Status     string
	SizeBytes  *int64
	SHA256     *string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// ProjectID owns a private image; nil: a public image.
	ProjectID *string
}

// Server as read: desired, observed and task state side by side.
type Server struct {
	ID          string
	Name        string
	Status      string
	Reason      *string
	Desired     string
	Power       string
	Task        *string
	Host        *string
	Flavor      ServerFlavor
	ImageID     string
	OperationID *string
	KeepRunning bool
	KeyName     *string
	// DataDisksGiB are the server's blank data disks, by size.
	DataDisksGiB []int
	// NICs are its network interfaces (ports), eth0 first.
	NICs      []ServerNIC
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	ProjectID *string
}

// ServerNIC is one of a server's NICs, as server.nics_set recorded it.
type ServerNIC struct {
	Port    string   `json:"port_id"`
	Network string   `json:"network_id"`
	MAC     string   `json:"mac"`
	IPs     []string `json:"ips"`
}

// ServerFlavor is the copy of its flavor a server keeps.
type ServerFlavor server.Flavor

// Step of an operation as read.
type Step struct {
	Name       string
	Status     string
	TimeoutMS  int64
	StartedAt  *time.Time
	FinishedAt *time.Time
	Deadline   *time.Time
	Error      *string
	Detail     string // the account behind Error, for admins; "" when none
}

// Operation as read.
type Operation struct {
	ID           string
	Kind         string
	ResourceType string
	ResourceID   string
	Status       string
	CurrentStep  *string
	Deadline     *time.Time
	Error        *string
	Detail       string // the account behind Error, for admins; "" when none
	Steps        []Step
	CreatedAt    time.Time
	UpdatedAt    time.Time
	FinishedAt   *time.Time
	DurationMS   *int64
	ProjectID    *string
}

// Host as read: identity, state, and capacity total (after overcommit), used and free.
type Host struct {
	ID          string
	Name        string
	Driver      string
	Address     *string
	Hypervisor  *string
	CPUModel    *string
	CPUFeatures []string
	Traits      []string
	Status      string
	State       string
	Reason      *string
	DownSince   *time.Time
	Ratios      host.Ratios
	Physical    host.Resources
	Total       host.Resources // physical capacity times the overcommit ratios
	Used        host.Resources
	Free        host.Resources
	Servers     int
	// UnknownGuests run on the host but were not created by Keel.
	UnknownGuests []string
	UpdatedAt     *time.Time
	Version       int64
}

const hostCols = `SELECT id::text, name, driver, address, hypervisor, cpu_model, cpu_features, traits, disabled, maintenance,
	CASE WHEN disabled THEN status_reason ELSE maintenance_reason END, down, down_since, ratio_cpu, ratio_ram, ratio_disk, vcpus, ram_mib, disk_gib,
	used_vcpus, used_ram_mib, used_disk_gib, claims, unknown_guests, updated_at, version FROM hosts`

func scanHost(row pgx.CollectableRow) (Host, error) {
	var h Host
	var disabled, maint, down bool
	err := row.Scan(&h.ID, &h.Name, &h.Driver, &h.Address, &h.Hypervisor, &h.CPUModel, &h.CPUFeatures, &h.Traits,
		&disabled, &maint, &h.Reason, &down, &h.DownSince, &h.Ratios.CPU, &h.Ratios.RAM, &h.Ratios.Disk,
		&h.Physical.VCPUs, &h.Physical.RAMMiB, &h.Physical.DiskGiB, &h.Used.VCPUs, &h.Used.RAMMiB, &h.Used.DiskGiB,
		&h.Servers, &h.UnknownGuests, &h.UpdatedAt, &h.Version)
	h.Status, h.State = "enabled", "up"
	if maint {
		h.Status = "maintenance"
	}
	if disabled {
		h.Status = "disabled"
	}
	if down {
		h.State = "down"
	}
	st := host.State{Spec: host.Spec{VCPUs: h.Physical.VCPUs, RAMMiB: h.Physical.RAMMiB, DiskGiB: h.Physical.DiskGiB}, Ratios: h.Ratios, Used: h.Used}
	h.Total, h.Free = st.Limit(), st.Free()
	return h, err
}

// Hosts lists hosts by name.
func (r *ReadModel) Hosts(ctx context.Context) ([]Host, error) {
	rows, err := r.Pool.Query(ctx, hostCols+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("query hosts: %w", err)
	}
	return pgx.CollectRows(rows, scanHost)
}

// Host returns one host by id or name.
func (r *ReadModel) Host(ctx context.Context, ref string) (Host, error) {
	return one(ctx, r.Pool, hostCols+` WHERE id::text=$1 OR name=$1`, scanHost, ref)
}

// Snapshot implements sagas.Snapshot: the hosts as the scheduler sees
// them, with the merged metadata of their host aggregates and their zone.
func (r *ReadModel) Snapshot(ctx context.Context) ([]scheduler.Host, error) {
	hs, err := r.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	md, err := r.hostMetadata(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Host, len(hs))
	for i, h := range hs {
		m := md[h.Name]
		az := m[hostaggregate.AZKey]
		if az == "" {
			az = hostaggregate.DefaultAZ
		}
		out[i] = scheduler.Host{Name: h.Name, Enabled: h.Status == "enabled", Up: h.State == "up",
			Traits: h.Traits, Limit: h.Total, Used: h.Used, AZ: az, Metadata: m}
	}
	return out, nil
}

// hostMetadata merges, per host, the metadata of its aggregates.
func (r *ReadModel) hostMetadata(ctx context.Context) (map[string]map[string]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT h.host, a.metadata FROM host_aggregate_hosts h JOIN host_aggregates a ON a.id = h.aggregate_id ORDER BY a.name`)
	if err != nil {
		return nil, fmt.Errorf("query host aggregates: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var host string
		var md map[string]string
		if err := rows.Scan(&host, &md); err != nil {
			return nil, err
		}
		if out[host] == nil {
			out[host] = map[string]string{}
		}
		for k, v := range md {
			out[host][k] = v
		}
	}
	return out, rows.Err()
}

// HostAggregate as read.
type HostAggregate struct {
	ID               string
	Name             string
	AvailabilityZone *string
	Metadata         map[string]string
	Hosts            []string
	CreatedAt        time.Time
	Version          int64
}

const aggCols = `SELECT id::text, name, metadata, created_at, version,
	coalesce((SELECT array_agg(host ORDER BY host) FROM host_aggregate_hosts h WHERE h.aggregate_id = a.id), '{}') FROM host_aggregates a`

func scanAgg(row pgx.CollectableRow) (HostAggregate, error) {
	var a HostAggregate
	err := row.Scan(&a.ID, &a.Name, &a.Metadata, &a.CreatedAt, &a.Version, &a.Hosts)
	if az, ok := a.Metadata[hostaggregate.AZKey]; ok {
		a.AvailabilityZone = &az
	}
	return a, err
}

// HostAggregates lists host aggregates.
func (r *ReadModel) HostAggregates(ctx context.Context, name string, p Page) ([]HostAggregate, string, error) {
	w := &where{}
	if name != "" {
		w.add("name = ?", name)
	}
	return list(ctx, r.Pool, aggCols, w, p, "created_at", scanAgg,
		func(a HostAggregate) (time.Time, string) { return a.CreatedAt, a.ID })
}

// AggregatesOfHost returns the ids of every host aggregate that lists the host.
func (r *ReadModel) AggregatesOfHost(ctx context.Context, hostName string) ([]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT aggregate_id::text FROM host_aggregate_hosts WHERE host = $1 ORDER BY aggregate_id`, hostName)
	if err != nil {
		return nil, fmt.Errorf("query aggregates of host %s: %w", hostName, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// HostAggregate returns one host aggregate.
func (r *ReadModel) HostAggregate(ctx context.Context, id string) (HostAggregate, error) {
	return one(ctx, r.Pool, aggCols+` WHERE id=$1`, scanAgg, id)
}

// AvailabilityZone lists a zone and its hosts.
type AvailabilityZone struct {
	Name  string
	Hosts []string
}

// AvailabilityZones lists zones: those named by host aggregates, and the
// default zone of hosts in none.
func (r *ReadModel) AvailabilityZones(ctx context.Context) ([]AvailabilityZone, error) {
	snap, err := r.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	zones := map[string][]string{}
	for _, h := range snap {
		zones[h.AZ] = append(zones[h.AZ], h.Name)
	}
	// Zones without hosts are listed too: every one, not a first page.
	rows, err := r.Pool.Query(ctx, `SELECT DISTINCT metadata->>$1 FROM host_aggregates WHERE metadata ? $1`, hostaggregate.AZKey)
	if err != nil {
		return nil, fmt.Errorf("query availability zones: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("query availability zones: %w", err)
	}
	for _, name := range names {
		if zones[name] == nil {
			zones[name] = []string{}
		}
	}
	out := make([]AvailabilityZone, 0, len(zones))
	for name, hosts := range zones {
		out = append(out, AvailabilityZone{Name: name, Hosts: hosts})
	}
	slices.SortFunc(out, func(a, b AvailabilityZone) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SuspectClaims implements monitors.ClaimFinder: claims made before a time
// whose server the read model does not show on that host.
func (r *ReadModel) SuspectClaims(ctx context.Context, before time.Time, n int) ([]monitors.Claim, error) {
	rows, err := r.Pool.Query(ctx, `SELECT c.host, c.server_id::text, c.claimed_at FROM host_claims c
		LEFT JOIN servers s ON s.id = c.server_id
		WHERE c.claimed_at < $1 AND (s.id IS NULL OR s.host IS DISTINCT FROM c.host) ORDER BY c.claimed_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query claims: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.Claim])
}

// SuspectHolds implements monitors.HoldFinder: quota reservations made
// before a time whose server, port, network or security group the read
// model does not show. What a hold is for is told by the quota it holds
// (a server's holds servers, a port's ports, ...); a hold of none of
// these is no sweep's business and is not listed.
func (r *ReadModel) SuspectHolds(ctx context.Context, before time.Time, n int) ([]monitors.Hold, error) {
	rows, err := r.Pool.Query(ctx, `SELECT h.project_id::text, h.key, h.amounts, h.reserved_at, k.kind FROM quota_holds h
		CROSS JOIN LATERAL (SELECT CASE WHEN h.amounts ? 'servers' THEN 'server' WHEN h.amounts ? 'ports' THEN 'port'
			WHEN h.amounts ? 'networks' THEN 'network' WHEN h.amounts ? 'security_groups' THEN 'securitygroup'
			WHEN h.amounts ? 'routers' THEN 'router' WHEN h.amounts ? 'floating_ips' THEN 'floatingip' END AS kind,
			CASE WHEN h.key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN h.key::uuid END AS id) k
		WHERE h.reserved_at < $1 AND k.kind IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM servers s WHERE k.kind = 'server' AND s.id = k.id)
		AND NOT EXISTS (SELECT 1 FROM ports p WHERE k.kind = 'port' AND p.id = k.id)
		AND NOT EXISTS (SELECT 1 FROM networks t WHERE k.kind = 'network' AND t.id = k.id)
		AND NOT EXISTS (SELECT 1 FROM security_groups g WHERE k.kind = 'securitygroup' AND g.id = k.id)
		AND NOT EXISTS (SELECT 1 FROM routers r WHERE k.kind = 'router' AND r.id = k.id)
		AND NOT EXISTS (SELECT 1 FROM floating_ips f WHERE k.kind = 'floatingip' AND f.id = k.id)
		ORDER BY h.reserved_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query quota holds: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.Hold])
}

// FlavorFilter filters the flavor list.
type FlavorFilter struct{ Name string }

// Flavors lists flavors.
func (r *ReadModel) Flavors(ctx context.Context, f FlavorFilter, p Page) ([]Flavor, string, error) {
	w := &where{}
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	return list(ctx, r.Pool, `SELECT id::text, name, vcpus, ram_mib, disk_gib, extra_specs, created_at FROM flavors`, w, p, "created_at",
		pgx.RowToStructByPos[Flavor], func(f Flavor) (time.Time, string) { return f.CreatedAt, f.ID })
}

// Flavor returns one flavor.
func (r *ReadModel) Flavor(ctx context.Context, id string) (Flavor, error) {
	return one(ctx, r.Pool, `SELECT id::text, name, vcpus, ram_mib, disk_gib, extra_specs, created_at FROM flavors WHERE id=$1`, pgx.RowToStructByPos[Flavor], id)
}

// Scope limits a list to what one project owns, or, with All (a cloud
// admin's all_projects), to nothing.
type Scope struct {
	Project string
	All     bool
	// Cloud adds what belongs to no project (the cloud's own commits,
	// resources made before tenancy): a cloud admin's view of its project.
	Cloud bool
}

// add filters on the owner column col; with public, rows of no project
// (public images) are in every scope.
func (s Scope) add(w *where, col string, public bool) {
	switch {
	case s.All:
	case public || s.Cloud:
		w.add("("+col+" IS NULL OR "+col+" = ?)", s.Project)
	default:
		w.add(col+" = ?", s.Project)
	}
}

// KeypairFilter filters the keypair list.
type KeypairFilter struct {
	Scope
	Name string
}

const keypairCols = `SELECT id::text, name, type, public_key, fingerprint, created_at, project_id::text FROM keypairs`

// Keypairs lists keypairs.
func (r *ReadModel) Keypairs(ctx context.Context, f KeypairFilter, p Page) ([]Keypair, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	return list(ctx, r.Pool, keypairCols, w, p, "created_at",
		pgx.RowToStructByPos[Keypair], func(k Keypair) (time.Time, string) { return k.CreatedAt, k.ID })
}

// Keypair returns one keypair.
func (r *ReadModel) Keypair(ctx context.Context, id string) (Keypair, error) {
	return one(ctx, r.Pool, keypairCols+` WHERE id=$1`, pgx.RowToStructByPos[Keypair], id)
}

// ImageFilter filters the image list.
type ImageFilter struct {
	Scope
	Name, Status string
}

const imageCols = `SELECT id::text, name, disk_format, min_disk_gib, min_ram_mib, status, size_bytes, sha256, created_at, updated_at, project_id::text FROM images`

// Images lists images.
func (r *ReadModel) Images(ctx context.Context, f ImageFilter, p Page) ([]Image, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", true)
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	return list(ctx, r.Pool, imageCols, w, p, "created_at", pgx.RowToStructByPos[Image],
		func(i Image) (time.Time, string) { return i.CreatedAt, i.ID })
}

// Image returns one image.
func (r *ReadModel) Image(ctx context.Context, id string) (Image, error) {
	return one(ctx, r.Pool, imageCols+` WHERE id=$1`, pgx.RowToStructByPos[Image], id)
}

// ServerFilter filters the server list.
type ServerFilter struct {
	Scope
	Name, Status, Host, ImageID, FlavorID string
}

// serverCols reads servers; a server on a host that is down shows its
// observed power state as UNKNOWN.
const serverCols = `SELECT id::text, name, status, reason, desired, power, task, host, flavor, image_id::text, operation_id::text, keep_running, key_name, data_disks_gib, nics, version, created_at, updated_at, project_id::text
	FROM (SELECT s.id, s.name, s.status, s.reason, s.desired, s.task, s.host, s.flavor, s.image_id, s.flavor_id, s.operation_id, s.keep_running, s.key_name, s.data_disks_gib, s.nics, s.version, s.created_at, s.updated_at, s.project_id,
		CASE WHEN EXISTS (SELECT 1 FROM hosts h WHERE h.name = s.host AND h.down) THEN 'UNKNOWN' ELSE s.power END AS power
		FROM servers s) servers`

// Servers lists servers.
func (r *ReadModel) Servers(ctx context.Context, f ServerFilter, p Page) ([]Server, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	for col, v := range map[string]string{"name": f.Name, "status": f.Status, "host": f.Host, "image_id::text": f.ImageID, "flavor_id::text": f.FlavorID} {
		if v != "" {
			w.add(col+" = ?", v)
		}
	}
	return list(ctx, r.Pool, serverCols, w, p, "created_at", scanServer,
		func(s Server) (time.Time, string) { return s.CreatedAt, s.ID })
}

// Server returns one server.
func (r *ReadModel) Server(ctx context.Context, id string) (Server, error) {
	return one(ctx, r.Pool, serverCols+` WHERE id=$1`, scanServer, id)
}

func scanServer(row pgx.CollectableRow) (Server, error) {
	var s Server
	var fl, nics []byte
	err := row.Scan(&s.ID, &s.Name, &s.Status, &s.Reason, &s.Desired, &s.Power, &s.Task, &s.Host, &fl, &s.ImageID, &s.OperationID, &s.KeepRunning, &s.KeyName, &s.DataDisksGiB, &nics, &s.Version, &s.CreatedAt, &s.UpdatedAt, &s.ProjectID)
	if err == nil {
		err = json.Unmarshal(fl, &s.Flavor)
	}
	if err == nil {
		err = json.Unmarshal(nics, &s.NICs)
	}
	return s, err
}

// OperationFilter filters the operation list.
type OperationFilter struct {
	Scope
	ResourceID, Status, Kind string
}

const opCols = `SELECT id::text, kind, resource_type, resource_id::text, status, current_step, deadline, error, coalesce(detail, ''), created_at, updated_at, finished_at, project_id::text FROM operations`

func scanOp(row pgx.CollectableRow) (Operation, error) {
	var o Operation
	err := row.Scan(&o.ID, &o.Kind, &o.ResourceType, &o.ResourceID, &o.Status, &o.CurrentStep, &o.Deadline, &o.Error, &o.Detail, &o.CreatedAt, &o.UpdatedAt, &o.FinishedAt, &o.ProjectID)
	if o.FinishedAt != nil {
		d := o.FinishedAt.Sub(o.CreatedAt).Milliseconds()
		o.DurationMS = &d
	}
	o.Steps = []Step{}
	return o, err
}

// Operations lists operations (without their steps).
func (r *ReadModel) Operations(ctx context.Context, f OperationFilter, p Page) ([]Operation, string, error) {
	w := &where{}
	f.Scope.add(w, "project_id", false)
	if f.ResourceID != "" {
		w.add("resource_id::text = ?", f.ResourceID)
	}
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	if f.Kind != "" {
		w.add("kind = ?", f.Kind)
	}
	return list(ctx, r.Pool, opCols, w, p, "created_at", scanOp,
		func(o Operation) (time.Time, string) { return o.CreatedAt, o.ID })
}

// Operation returns one operation with its steps.
func (r *ReadModel) Operation(ctx context.Context, id string) (Operation, error) {
	o, err := one(ctx, r.Pool, opCols+` WHERE id=$1`, scanOp, id)
	if err != nil {
		return o, err
	}
	rows, err := r.Pool.Query(ctx, `SELECT name, status, timeout_ms, started_at, finished_at, deadline, error, coalesce(detail, '') FROM operation_steps WHERE operation_id=$1 ORDER BY idx`, id)
	if err != nil {
		return o, fmt.Errorf("query steps: %w", err)
	}
	o.Steps, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Step])
	return o, err
}

// Overdue implements monitors.OverdueFinder.
func (r *ReadModel) Overdue(ctx context.Context, now time.Time, n int) ([]monitors.OverdueStep, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id::text, current_step, deadline FROM operations
		WHERE status = 'running' AND current_step IS NOT NULL AND deadline < $1 ORDER BY deadline LIMIT $2`, now, n)
	if err != nil {
		return nil, fmt.Errorf("query overdue steps: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.OverdueStep])
}

// EventFilter filters the event history.
type EventFilter struct {
	Scope
	AggregateType, AggregateID, Type string
	Since                            uint64 // only commits after this sequence
}

// Events returns commits in stream order; the next cursor is the last sequence.
func (r *ReadModel) Events(ctx context.Context, f EventFilter, n int) ([]domain.Envelope, uint64, error) {
	w := &where{}
	w.add("seq > ?", int64(f.Since))
	f.Scope.add(w, "project_id", false)
	if f.AggregateType != "" {
		w.add("aggregate_type = ?", f.AggregateType)
	}
	if f.AggregateID != "" {
		w.add("aggregate_id = ?", f.AggregateID)
	}
	if f.Type != "" {
		w.add("? = ANY(types)", f.Type)
	}
	if n <= 0 || n > 1000 {
		n = 100
	}
	rows, err := r.Pool.Query(ctx, `SELECT seq, envelope FROM events`+w.sql()+fmt.Sprintf(` ORDER BY seq LIMIT %d`, n+1), w.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("query events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Envelope, error) {
		var seq int64
		var raw []byte
		if err := row.Scan(&seq, &raw); err != nil {
			return domain.Envelope{}, err
		}
		var env domain.Envelope
		err := json.Unmarshal(raw, &env)
		env.Sequence = uint64(seq)
		return env, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("query events: %w", err)
	}
	var next uint64
	if len(out) > n {
		out = out[:n]
		next = out[n-1].Sequence
	}
	return out, next, nil
}

// Liveness implements monitors.LivenessSource.
func (r *ReadModel) Liveness(ctx context.Context) ([]monitors.HostLiveness, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id::text, name, down FROM hosts`)
	if err != nil {
		return nil, fmt.Errorf("query hosts: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[monitors.HostLiveness])
}

// ServerGroup as read, with where its members are.
type ServerGroup struct {
	ID         string
	Name       string
	Policy     string
	MaxPerHost int
	Members    []GroupMember
	CreatedAt  time.Time
	ProjectID  *string
}

// GroupMember is a member of a server group and its host. Its JSON names
// are those of the json_agg that reads the members.
type GroupMember struct {
	ServerID string `json:"server_id"`
	Host     string `json:"host"`
}

const groupCols = `SELECT id::text, name, policy, max_per_host, created_at,
	coalesce((SELECT json_agg(json_build_object('server_id', m.server_id, 'host', m.host) ORDER BY m.host, m.server_id)
		FROM server_group_members m WHERE m.group_id = g.id), '[]'), project_id::text FROM server_groups g`

func scanGroup(row pgx.CollectableRow) (ServerGroup, error) {
	var g ServerGroup
	err := row.Scan(&g.ID, &g.Name, &g.Policy, &g.MaxPerHost, &g.CreatedAt, &g.Members, &g.ProjectID)
	return g, err
}

// ServerGroups lists server groups (members in Group).
func (r *ReadModel) ServerGroups(ctx context.Context, scope Scope, name string, p Page) ([]ServerGroup, string, error) {
	w := &where{}
	scope.add(w, "project_id", false)
	if name != "" {
		w.add("name = ?", name)
	}
	return list(ctx, r.Pool, groupCols, w, p, "created_at", scanGroup,
		func(g ServerGroup) (time.Time, string) { return g.CreatedAt, g.ID })
}

// ServerGroup returns one group with its members.
func (r *ReadModel) ServerGroup(ctx context.Context, id string) (ServerGroup, error) {
	return one(ctx, r.Pool, groupCols+` WHERE id=$1`, scanGroup, id)
}

// StalledCompensations implements monitors.OverdueFinder: operations that have
// been compensating since before a time.
func (r *ReadModel) StalledCompensations(ctx context.Context, before time.Time, n int) ([]string, error) {
	rows, err := r.Pool.Query(ctx, `SELECT id::text FROM operations WHERE status = 'compensating' AND updated_at < $1 ORDER BY updated_at LIMIT $2`, before, n)
	if err != nil {
		return nil, fmt.Errorf("query stalled compensations: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
