package projections

import (
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// Flavors is the flavors table.
var Flavors = Projection{Name: "flavors", Version: 1, Tables: []string{"flavors"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			switch e := ev.(type) {
			case *flavor.Created:
				specs, _ := json.Marshal(nonNilMap(e.Spec.ExtraSpecs))
				b.Queue(`INSERT INTO `+t.T("flavors")+` (id, name, vcpus, ram_mib, disk_gib, extra_specs, created_at, seq)
					VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.Name, e.Spec.VCPUs, e.Spec.RAMMiB, e.Spec.DiskGiB, specs, e.CreatedAt, env.Sequence)
			case *flavor.Deleted:
				b.Queue(`DELETE FROM `+t.T("flavors")+` WHERE id = $1`, e.ID)
			}
		}
		return nil
	}}

// Images is the images table.
var Images = Projection{Name: "images", Version: 1, Tables: []string{"images"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			switch e := ev.(type) {
			case *image.Created:
				b.Queue(`INSERT INTO `+t.T("images")+` (id, name, disk_format, min_disk_gib, min_ram_mib, status, created_at, updated_at, seq)
					VALUES ($1,$2,$3,$4,$5,'queued',$6,$6,$7) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.Name, e.Spec.DiskFormat, e.Spec.MinDiskGiB, e.Spec.MinRAMMiB, e.CreatedAt, env.Sequence)
			case *image.Uploaded:
				b.Queue(`UPDATE `+t.T("images")+` SET status='active', size_bytes=$2, sha256=$3, object=$4, updated_at=$5, seq=$6 WHERE id=$1`,
					e.ID, e.Size, e.SHA256, e.Object, e.UploadedAt, env.Sequence)
			case *image.ImageDeleted:
				b.Queue(`DELETE FROM `+t.T("images")+` WHERE id = $1`, e.ID)
			}
		}
		return nil
	}}

// Hosts is the hosts table with capacity, use and state, and host_claims.
var Hosts = Projection{Name: "hosts", Version: 3, Tables: []string{"hosts", "host_claims"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != host.AggregateType {
			return nil
		}
		hs, cl := t.T("hosts"), t.T("host_claims")
		set := func(cols string, args ...any) {
			all := append([]any{env.AggregateID, env.OccurredAt, env.Sequence}, args...)
			b.Queue(`UPDATE `+hs+` SET updated_at=$2, seq=$3, `+cols+` WHERE id=$1`, all...)
		}
		for _, ev := range events {
			switch e := ev.(type) {
			case *host.Registered:
				registerHost(b, hs, env, e)
			case *host.Enabled:
				set(`disabled=false, status_reason=NULL`)
			case *host.Disabled:
				set(`disabled=true, status_reason=NULLIF($4,'')`, e.Reason)
			case *host.MaintenanceStarted:
				set(`maintenance=true, maintenance_reason=NULLIF($4,'')`, e.Reason)
			case *host.MaintenanceEnded:
				set(`maintenance=false, maintenance_reason=NULL`)
			case *host.RatiosChanged:
				set(`ratio_cpu=$4, ratio_ram=$5, ratio_disk=$6`, e.Ratios.CPU, e.Ratios.RAM, e.Ratios.Disk)
			case *host.WentDown:
				set(`down=true, down_since=$4`, e.At)
			case *host.CameUp:
				set(`down=false, down_since=NULL`)
			case *host.Claimed:
				r := e.Resources
				b.Queue(`INSERT INTO `+cl+` (host, server_id, vcpus, ram_mib, disk_gib, operation_id, claimed_at)
					SELECT name, $2, $3, $4, $5, $6, $7 FROM `+hs+` WHERE id=$1 ON CONFLICT DO NOTHING`,
					env.AggregateID, e.Server, r.VCPUs, r.RAMMiB, r.DiskGiB, e.Operation, e.At)
				set(`used_vcpus=used_vcpus+$4, used_ram_mib=used_ram_mib+$5, used_disk_gib=used_disk_gib+$6, claims=claims+1`, r.VCPUs, r.RAMMiB, r.DiskGiB)
			case *host.Released:
				r := e.Resources
				b.Queue(`DELETE FROM `+cl+` WHERE server_id=$2 AND host=(SELECT name FROM `+hs+` WHERE id=$1)`, env.AggregateID, e.Server)
				set(`used_vcpus=used_vcpus-$4, used_ram_mib=used_ram_mib-$5, used_disk_gib=used_disk_gib-$6, claims=claims-1`, r.VCPUs, r.RAMMiB, r.DiskGiB)
			case *host.Removed:
				b.Queue(`DELETE FROM `+hs+` WHERE id=$1`, env.AggregateID)
			}
		}
		// Every commit moves the version (the ETag) on, even one that changes
		// no other column (host.aggregate_joined).
		b.Queue(`UPDATE `+hs+` SET version=$2 WHERE id=$1`, env.AggregateID, env.Version)
		return nil
	}}

func registerHost(b *pgx.Batch, hs string, env domain.Envelope, e *host.Registered) {
	sp := e.Spec
	b.Queue(`INSERT INTO `+hs+` (name, id, driver, vcpus, ram_mib, disk_gib, address, hypervisor, cpu_model, cpu_features, traits,
			registered_at, updated_at, seq)
		VALUES ($1,$2,$3,$4,$5,$6,NULLIF($7,''),NULLIF($8,''),NULLIF($9,''),$10,$11,$12,$12,$13)
		ON CONFLICT (name) DO UPDATE SET driver=$3, vcpus=$4, ram_mib=$5, disk_gib=$6, address=NULLIF($7,''), hypervisor=NULLIF($8,''),
			cpu_model=NULLIF($9,''), cpu_features=$10, traits=$11, updated_at=$12, seq=$13`,
		sp.Name, e.ID, sp.Driver, sp.VCPUs, sp.RAMMiB, sp.DiskGiB, sp.Address, sp.Hypervisor, sp.CPUModel,
		nonNil(sp.CPUFeatures), nonNil(sp.Traits), e.At, env.Sequence)
	if e.Ratios != nil {
		b.Queue(`UPDATE `+hs+` SET ratio_cpu=$2, ratio_ram=$3, ratio_disk=$4 WHERE id=$1`, e.ID, e.Ratios.CPU, e.Ratios.RAM, e.Ratios.Disk)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ServerGroups is the server_groups and server_group_members tables.
var ServerGroups = Projection{Name: "server_groups", Version: 1, Tables: []string{"server_groups", "server_group_members"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != servergroup.AggregateType {
			return nil
		}
		gs, ms := t.T("server_groups"), t.T("server_group_members")
		for _, ev := range events {
			switch e := ev.(type) {
			case *servergroup.Created:
				b.Queue(`INSERT INTO `+gs+` (id, name, policy, max_per_host, created_at, seq) VALUES ($1,$2,$3,$4,$5,$6)
					ON CONFLICT (id) DO NOTHING`, e.ID, e.Spec.Name, e.Spec.Policy, e.Spec.MaxPerHost, e.At, env.Sequence)
			case *servergroup.MemberAdded:
				b.Queue(`INSERT INTO `+ms+` (group_id, server_id, host) VALUES ($1,$2,$3)
					ON CONFLICT (group_id, server_id) DO UPDATE SET host=$3`, env.AggregateID, e.Server, e.Host)
			case *servergroup.MemberRemoved:
				b.Queue(`DELETE FROM `+ms+` WHERE group_id=$1 AND server_id=$2`, env.AggregateID, e.Server)
			case *servergroup.Deleted:
				b.Queue(`DELETE FROM `+gs+` WHERE id=$1`, env.AggregateID)
			}
		}
		return nil
	}}

// HostAggregates is the host_aggregates and host_aggregate_hosts tables.
var HostAggregates = Projection{Name: "host_aggregates", Version: 2, Tables: []string{"host_aggregates", "host_aggregate_hosts"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != hostaggregate.AggregateType {
			return nil
		}
		as, hs := t.T("host_aggregates"), t.T("host_aggregate_hosts")
		for _, ev := range events {
			switch e := ev.(type) {
			case *hostaggregate.Created:
				md, _ := json.Marshal(nonNilMap(e.Metadata))
				b.Queue(`INSERT INTO `+as+` (id, name, metadata, created_at, seq) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Name, md, e.At, env.Sequence)
			case *hostaggregate.MetadataSet:
				md, _ := json.Marshal(nonNilMap(e.Metadata))
				b.Queue(`UPDATE `+as+` SET metadata=$2, seq=$3 WHERE id=$1`, env.AggregateID, md, env.Sequence)
			case *hostaggregate.HostAdded:
				b.Queue(`INSERT INTO `+hs+` (aggregate_id, host) VALUES ($1,$2) ON CONFLICT DO NOTHING`, env.AggregateID, e.Host)
			case *hostaggregate.HostRemoved:
				b.Queue(`DELETE FROM `+hs+` WHERE aggregate_id=$1 AND host=$2`, env.AggregateID, e.Host)
			case *hostaggregate.Deleted:
				b.Queue(`DELETE FROM `+as+` WHERE id=$1`, env.AggregateID)
			}
		}
		b.Queue(`UPDATE `+as+` SET version=$2 WHERE id=$1`, env.AggregateID, env.Version)
		return nil
	}}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Events is the event history behind GET /v1/events.
var Events = Projection{Name: "events", Version: 1, Tables: []string{"events"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		types := make([]string, len(env.Events))
		for i, e := range env.Events {
			types[i] = e.Type
		}
		raw := []byte(env.Raw)
		if len(raw) == 0 {
			var err error
			if raw, err = json.Marshal(env); err != nil {
				return err
			}
		}
		b.Queue(`INSERT INTO `+t.T("events")+` (seq, aggregate_type, aggregate_id, version, command_id, types, envelope, occurred_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (seq) DO NOTHING`,
			env.Sequence, env.AggregateType, env.AggregateID, env.Version, env.CommandID, types, raw, env.OccurredAt)
		return nil
	}}

// Servers is the servers table.
var Servers = Projection{Name: "servers", Version: 1, Tables: []string{"servers"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != server.AggregateType {
			return nil
		}
		tb := t.T("servers")
		upd := func(set string, args ...any) {
			all := append([]any{env.AggregateID, env.Version, env.OccurredAt, env.Sequence}, args...)
			b.Queue(`UPDATE `+tb+` SET version=$2, updated_at=$3, seq=$4, `+set+` WHERE id=$1`, all...)
		}
		for _, ev := range events {
			switch e := ev.(type) {
			case *server.Created:
				fl, _ := json.Marshal(e.Flavor)
				b.Queue(`INSERT INTO `+tb+` (id, name, flavor_id, flavor, image_id, desired, power, task, status, operation_id, version, created_at, updated_at, seq)
					VALUES ($1,$2,$3,$4,$5,'running','NOSTATE','scheduling','BUILDING',$6,$7,$8,$8,$9) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Name, e.Flavor.ID, fl, e.ImageID, e.Operation, env.Version, e.CreatedAt, env.Sequence)
			case *server.Scheduled:
				upd(`host=$5, task='spawning'`, e.Host)
			case *server.SpawnFailed:
				upd(`host=NULL, task='scheduling'`)
			case *server.Spawned, *server.Started, *server.Rebooted:
				upd(`power='RUNNING', task=NULL, status='ACTIVE', reason=NULL`)
			case *server.Failed:
				upd(`host=NULL, power='NOSTATE', task=NULL, status='ERROR', reason=$5`, e.Reason)
			case *server.StartRequested:
				upd(`desired='running', task='powering_on', operation_id=$5`, e.Operation)
			case *server.StopRequested:
				upd(`desired='stopped', task='powering_off', operation_id=$5`, e.Operation)
			case *server.RebootRequested:
				upd(`task='rebooting', status='REBOOTING', operation_id=$5`, e.Operation)
			case *server.Stopped:
				upd(`power='SHUTOFF', task=NULL, status='STOPPED', reason=NULL`)
			case *server.ActionFailed:
				upd(`task=NULL, reason=$5, status=CASE power WHEN 'RUNNING' THEN 'ACTIVE' WHEN 'SHUTOFF' THEN 'STOPPED' ELSE 'ERROR' END`, e.Reason)
			case *server.DeleteRequested:
				upd(`desired='deleted', task='deleting', status='DELETING', operation_id=$5`, e.Operation)
			case *server.Deleted:
				b.Queue(`DELETE FROM `+tb+` WHERE id=$1`, env.AggregateID)
			}
		}
		return nil
	}}

// Operations is the operations and operation_steps tables. A server event
// that names a new operation inserts it as pending, so the operation id
// returned by the API can be read at the same sequence as the server.
var Operations = Projection{Name: "operations", Version: 1, Tables: []string{"operations", "operation_steps"},
	Apply: func(b *pgx.Batch, t Tables, env domain.Envelope, events []domain.Event) error {
		ops, steps := t.T("operations"), t.T("operation_steps")
		pending := func(id, kind string) {
			b.Queue(`INSERT INTO `+ops+` (id, kind, resource_type, resource_id, status, created_at, updated_at, seq)
				VALUES ($1,$2,'server',$3,'pending',$4,$4,$5) ON CONFLICT (id) DO NOTHING`,
				id, kind, env.AggregateID, env.OccurredAt, env.Sequence)
		}
		for _, ev := range events {
			switch e := ev.(type) {
			case *server.Created:
				pending(e.Operation, "server.create")
			case *server.StartRequested:
				pending(e.Operation, "server.start")
			case *server.StopRequested:
				pending(e.Operation, "server.stop")
			case *server.RebootRequested:
				pending(e.Operation, "server.reboot")
			case *server.DeleteRequested:
				pending(e.Operation, "server.delete")
			case *operation.Began:
				b.Queue(`INSERT INTO `+ops+` (id, kind, resource_type, resource_id, status, created_at, updated_at, seq)
					VALUES ($1,$2,$3,$4,'running',$5,$5,$6)
					ON CONFLICT (id) DO UPDATE SET status='running', updated_at=$5, seq=$6`,
					e.ID, e.Kind, e.ResourceType, e.ResourceID, e.At, env.Sequence)
				for i, s := range e.Steps {
					b.Queue(`INSERT INTO `+steps+` (operation_id, idx, name, status, timeout_ms) VALUES ($1,$2,$3,'pending',$4)
						ON CONFLICT DO NOTHING`, e.ID, i, s.Name, s.Timeout.Milliseconds())
				}
			case *operation.StepStarted:
				b.Queue(`UPDATE `+steps+` SET status='running', started_at=$3, deadline=$4 WHERE operation_id=$1 AND name=$2`, env.AggregateID, e.Step, e.At, e.Deadline)
				b.Queue(`UPDATE `+ops+` SET current_step=$2, deadline=$3, updated_at=$4, seq=$5 WHERE id=$1`, env.AggregateID, e.Step, e.Deadline, e.At, env.Sequence)
			case *operation.StepSucceeded:
				b.Queue(`UPDATE `+steps+` SET status='succeeded', finished_at=$3 WHERE operation_id=$1 AND name=$2`, env.AggregateID, e.Step, e.At)
				b.Queue(`UPDATE `+ops+` SET current_step=NULL, deadline=NULL, updated_at=$2, seq=$3 WHERE id=$1`, env.AggregateID, e.At, env.Sequence)
			case *operation.StepFailed:
				b.Queue(`UPDATE `+steps+` SET status='failed', finished_at=$3, error=$4 WHERE operation_id=$1 AND name=$2`, env.AggregateID, e.Step, e.At, e.Reason)
				b.Queue(`UPDATE `+ops+` SET status='compensating', current_step=NULL, deadline=NULL, error=$2, updated_at=$3, seq=$4 WHERE id=$1`, env.AggregateID, e.Reason, e.At, env.Sequence)
			case *operation.Rewound:
				b.Queue(`UPDATE `+steps+` SET status='pending', started_at=NULL, finished_at=NULL, deadline=NULL,
					error=CASE WHEN name=$3 THEN $4 ELSE error END
					WHERE operation_id=$1 AND idx >= (SELECT idx FROM `+steps+` WHERE operation_id=$1 AND name=$2)`,
					env.AggregateID, e.To, e.From, e.Reason)
				b.Queue(`UPDATE `+ops+` SET current_step=NULL, deadline=NULL, updated_at=$2, seq=$3 WHERE id=$1`, env.AggregateID, e.At, env.Sequence)
			case *operation.OperationSucceeded:
				finish(b, ops, env, "succeeded", "", e.At)
			case *operation.OperationFailed:
				b.Queue(`UPDATE `+steps+` SET status='skipped' WHERE operation_id=$1 AND status='pending'`, env.AggregateID)
				b.Queue(`UPDATE `+steps+` SET status='compensated' WHERE operation_id=$1 AND status='succeeded' AND name = ANY($2)`, env.AggregateID, e.Compensated)
				finish(b, ops, env, "failed", e.Reason, e.At)
			}
		}
		return nil
	}}

func finish(b *pgx.Batch, ops string, env domain.Envelope, status, reason string, at time.Time) {
	b.Queue(`UPDATE `+ops+` SET status=$2, error=NULLIF($3,''), current_step=NULL, deadline=NULL, finished_at=$4, updated_at=$4, seq=$5 WHERE id=$1`,
		env.AggregateID, status, reason, at, env.Sequence)
}
