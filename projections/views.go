package projections

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/keypair"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// Flavors is the flavors table.
var Flavors = Projection{Name: "flavors", Version: 1, Tables: []string{"flavors"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			switch e := ev.(type) {
			case *flavor.Created:
				specs, _ := json.Marshal(nonNilMap(e.Spec.ExtraSpecs))
				w.Exec(env.AggregateID, `INSERT INTO `+t.T("flavors")+` (id, name, vcpus, ram_mib, disk_gib, extra_specs, created_at, seq)
					VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.Name, e.Spec.VCPUs, e.Spec.RAMMiB, e.Spec.DiskGiB, specs, e.CreatedAt, env.Sequence)
			case *flavor.Deleted:
				w.Exec(env.AggregateID, `DELETE FROM `+t.T("flavors")+` WHERE id = $1`, e.ID)
			}
		}
		return nil
	}}

// Keypairs is the keypairs table.
var Keypairs = Projection{Name: "keypairs", Version: 1, Tables: []string{"keypairs"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			switch e := ev.(type) {
			case *keypair.Created:
				w.Exec(env.AggregateID, `INSERT INTO `+t.T("keypairs")+` (id, name, type, public_key, fingerprint, created_at, seq, project_id)
					VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.Name, e.Spec.Type, e.Spec.PublicKey, e.Spec.Fingerprint, e.CreatedAt, env.Sequence, nullable(e.Spec.Project))
			case *keypair.Deleted:
				w.Exec(env.AggregateID, `DELETE FROM `+t.T("keypairs")+` WHERE id = $1`, e.ID)
			}
		}
		return nil
	}}

// Images is the images table.
var Images = Projection{Name: "images", Version: 1, Tables: []string{"images"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			switch e := ev.(type) {
			case *image.Created:
				w.Exec(env.AggregateID, `INSERT INTO `+t.T("images")+` (id, name, disk_format, min_disk_gib, min_ram_mib, status, created_at, updated_at, seq, project_id)
					VALUES ($1,$2,$3,$4,$5,'queued',$6,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.Name, e.Spec.DiskFormat, e.Spec.MinDiskGiB, e.Spec.MinRAMMiB, e.CreatedAt, env.Sequence, nullable(e.Spec.Project))
			case *image.Uploaded:
				w.Exec(env.AggregateID, `UPDATE `+t.T("images")+` SET status='active', size_bytes=$2, sha256=$3, object=$4, updated_at=$5, seq=$6 WHERE id=$1`,
					e.ID, e.Size, e.SHA256, e.Object, e.UploadedAt, env.Sequence)
			case *image.ImageDeleted:
				w.Exec(env.AggregateID, `DELETE FROM `+t.T("images")+` WHERE id = $1`, e.ID)
			}
		}
		return nil
	}}

// Hosts is the hosts table with capacity, use and state, and host_claims.
// A batch's claims and releases on one host fold into one UPDATE of its
// counters.
var Hosts = Projection{Name: "hosts", Version: 3, Tables: []string{"hosts", "host_claims"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != host.AggregateType {
			return nil
		}
		hs, cl := t.T("hosts"), t.T("host_claims")
		id := env.AggregateID
		set := func(sets ...Set) {
			w.Update(id, hs, idCol, []any{id}, append([]Set{To("updated_at", env.OccurredAt), To("seq", env.Sequence)}, sets...)...)
		}
		for _, ev := range events {
			switch e := ev.(type) {
			case *host.Registered:
				registerHost(w, hs, env, e)
			case *host.Enabled:
				set(To("disabled", false), To("status_reason", nil))
			case *host.Disabled:
				set(To("disabled", true), To("status_reason", nullIfEmpty(e.Reason)))
			case *host.MaintenanceStarted:
				set(To("maintenance", true), To("maintenance_reason", nullIfEmpty(e.Reason)))
			case *host.MaintenanceEnded:
				set(To("maintenance", false), To("maintenance_reason", nil))
			case *host.RatiosChanged:
				set(To("ratio_cpu", e.Ratios.CPU), To("ratio_ram", e.Ratios.RAM), To("ratio_disk", e.Ratios.Disk))
			case *host.WentDown:
				set(To("down", true), To("down_since", e.At))
			case *host.CameUp:
				set(To("down", false), To("down_since", nil))
			case *host.UnknownGuestsObserved:
				set(To("unknown_guests", e.Guests))
			case *host.Claimed:
				r := e.Resources
				w.Exec("", `INSERT INTO `+cl+` (host, server_id, vcpus, ram_mib, disk_gib, operation_id, claimed_at)
					SELECT name, $2, $3, $4, $5, $6, $7 FROM `+hs+` WHERE id=$1 ON CONFLICT DO NOTHING`,
					id, e.Server, r.VCPUs, r.RAMMiB, r.DiskGiB, e.Operation, e.At)
				set(Plus("used_vcpus", r.VCPUs), Plus("used_ram_mib", r.RAMMiB), Plus("used_disk_gib", r.DiskGiB), Plus("claims", 1))
			case *host.Released:
				r := e.Resources
				w.Exec("", `DELETE FROM `+cl+` WHERE server_id=$2 AND host=(SELECT name FROM `+hs+` WHERE id=$1)`, id, e.Server)
				set(Plus("used_vcpus", -r.VCPUs), Plus("used_ram_mib", -r.RAMMiB), Plus("used_disk_gib", -r.DiskGiB), Plus("claims", -1))
			case *host.Removed:
				w.Delete(hs, idCol, []any{id})
			}
		}
		// Every commit moves the version (the ETag) on, even one that changes
		// no other column (host.aggregate_joined).
		w.Update(id, hs, idCol, []any{id}, To("version", env.Version))
		return nil
	}}

// idCol is the key of most tables.
var idCol = []string{"id"}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func registerHost(w *Writer, hs string, env domain.Envelope, e *host.Registered) {
	sp := e.Spec
	w.Exec(env.AggregateID, `INSERT INTO `+hs+` (name, id, driver, vcpus, ram_mib, disk_gib, address, hypervisor, cpu_model, cpu_features, traits,
			registered_at, updated_at, seq)
		VALUES ($1,$2,$3,$4,$5,$6,NULLIF($7,''),NULLIF($8,''),NULLIF($9,''),$10,$11,$12,$12,$13)
		ON CONFLICT (name) DO UPDATE SET driver=$3, vcpus=$4, ram_mib=$5, disk_gib=$6, address=NULLIF($7,''), hypervisor=NULLIF($8,''),
			cpu_model=NULLIF($9,''), cpu_features=$10, traits=$11, updated_at=$12, seq=$13`,
		sp.Name, e.ID, sp.Driver, sp.VCPUs, sp.RAMMiB, sp.DiskGiB, sp.Address, sp.Hypervisor, sp.CPUModel,
		nonNil(sp.CPUFeatures), nonNil(sp.Traits), e.At, env.Sequence)
	if e.Ratios != nil {
		w.Update(env.AggregateID, hs, idCol, []any{env.AggregateID}, To("ratio_cpu", e.Ratios.CPU), To("ratio_ram", e.Ratios.RAM), To("ratio_disk", e.Ratios.Disk))
	}
}

// ServerGroups is the server_groups and server_group_members tables.
var ServerGroups = Projection{Name: "server_groups", Version: 1, Tables: []string{"server_groups", "server_group_members"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != servergroup.AggregateType {
			return nil
		}
		gs, ms := t.T("server_groups"), t.T("server_group_members")
		for _, ev := range events {
			switch e := ev.(type) {
			case *servergroup.Created:
				w.Exec(env.AggregateID, `INSERT INTO `+gs+` (id, name, policy, max_per_host, created_at, seq, project_id) VALUES ($1,$2,$3,$4,$5,$6,$7)
					ON CONFLICT (id) DO NOTHING`, e.ID, e.Spec.Name, e.Spec.Policy, e.Spec.MaxPerHost, e.At, env.Sequence, nullable(e.Spec.Project))
			case *servergroup.MemberAdded:
				w.Exec(env.AggregateID, `INSERT INTO `+ms+` (group_id, server_id, host) VALUES ($1,$2,$3)
					ON CONFLICT (group_id, server_id) DO UPDATE SET host=$3`, env.AggregateID, e.Server, e.Host)
			case *servergroup.MemberRemoved:
				w.Exec(env.AggregateID, `DELETE FROM `+ms+` WHERE group_id=$1 AND server_id=$2`, env.AggregateID, e.Server)
			case *servergroup.Deleted:
				w.Exec(env.AggregateID, `DELETE FROM `+gs+` WHERE id=$1`, env.AggregateID)
			}
		}
		return nil
	}}

// HostAggregates is the host_aggregates and host_aggregate_hosts tables.
var HostAggregates = Projection{Name: "host_aggregates", Version: 2, Tables: []string{"host_aggregates", "host_aggregate_hosts"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != hostaggregate.AggregateType {
			return nil
		}
		as, hs := t.T("host_aggregates"), t.T("host_aggregate_hosts")
		for _, ev := range events {
			switch e := ev.(type) {
			case *hostaggregate.Created:
				md, _ := json.Marshal(nonNilMap(e.Metadata))
				w.Exec(env.AggregateID, `INSERT INTO `+as+` (id, name, metadata, created_at, seq) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Name, md, e.At, env.Sequence)
			case *hostaggregate.MetadataSet:
				md, _ := json.Marshal(nonNilMap(e.Metadata))
				w.Exec(env.AggregateID, `UPDATE `+as+` SET metadata=$2, seq=$3 WHERE id=$1`, env.AggregateID, md, env.Sequence)
			case *hostaggregate.HostAdded:
				w.Exec(env.AggregateID, `INSERT INTO `+hs+` (aggregate_id, host) VALUES ($1,$2) ON CONFLICT DO NOTHING`, env.AggregateID, e.Host)
			case *hostaggregate.HostRemoved:
				w.Exec(env.AggregateID, `DELETE FROM `+hs+` WHERE aggregate_id=$1 AND host=$2`, env.AggregateID, e.Host)
			case *hostaggregate.Deleted:
				w.Exec(env.AggregateID, `DELETE FROM `+as+` WHERE id=$1`, env.AggregateID)
			}
		}
		w.Exec(env.AggregateID, `UPDATE `+as+` SET version=$2 WHERE id=$1`, env.AggregateID, env.Version)
		return nil
	}}

// nullable is NULL for an empty string.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Events is the event history behind GET /v1/events. A batch is one
// INSERT of arrays, one element per commit.
var Events = Projection{Name: "events", Version: 1, Tables: []string{"events"},
	ApplyBatch: func(w *Writer, t Tables, envs []domain.Envelope, _ [][]domain.Event) error {
		n := len(envs)
		seqs, versions := make([]int64, n), make([]int64, n)
		atypes, ids, cmds, types, raws := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		projects := make([]*string, n)
		times := make([]time.Time, n)
		for i, env := range envs {
			names := make([]string, len(env.Events))
			for j, e := range env.Events {
				if strings.Contains(e.Type, ",") {
					return fmt.Errorf("event type %q has a comma", e.Type)
				}
				names[j] = e.Type
			}
			ts := strings.Join(names, ",")
			raw := []byte(env.Raw)
			if len(raw) == 0 {
				var err error
				if raw, err = json.Marshal(env); err != nil {
					return err
				}
			}
			seqs[i], versions[i] = int64(env.Sequence), int64(env.Version)
			atypes[i], ids[i], cmds[i], types[i], raws[i] = env.AggregateType, env.AggregateID, env.CommandID, ts, string(raw)
			times[i] = env.OccurredAt
			if env.Project != "" {
				projects[i] = &env.Project
			}
		}
		// The live table keeps a guard against a commit met twice (the
		// checkpoint lock already prevents it); a rebuild copy is new and
		// filled once, in order, so it needs neither the conflict check nor
		// the sort.
		tail := ` ORDER BY s ON CONFLICT (seq) DO NOTHING`
		if t.Fresh() {
			tail = ""
		}
		w.Exec("", `INSERT INTO `+t.T("events")+` (seq, aggregate_type, aggregate_id, version, command_id, types, envelope, occurred_at, project_id)
			SELECT s, a, i, v, c, string_to_array(ty, ','), e::json, o, p
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[]) AS u(s, a, i, v, c, ty, e, o, p)`+tail,
			seqs, atypes, ids, versions, cmds, types, raws, times, projects)
		return nil
	}}

// serverCols are the columns server.created writes.
var serverCols = []string{"id", "name", "flavor_id", "flavor", "image_id", "desired", "power", "task", "status", "operation_id",
	"keep_running", "version", "created_at", "updated_at", "seq", "key_name", "data_disks_gib", "project_id"}

// Servers is the servers table. A server's commits within a batch fold
// into one statement: a server built in one batch is one INSERT.
var Servers = Projection{Name: "servers", Version: 2, Tables: []string{"servers"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		if env.AggregateType != server.AggregateType {
			return nil
		}
		tb, id := t.T("servers"), env.AggregateID
		key := []any{id}
		upd := func(sets ...Set) {
			w.Update(id, tb, idCol, key, append([]Set{To("version", env.Version), To("updated_at", env.OccurredAt), To("seq", env.Sequence)}, sets...)...)
		}
		for _, ev := range events {
			switch e := ev.(type) {
			case *server.Created:
				fl, err := json.Marshal(e.Flavor)
				if err != nil {
					return err
				}
				w.Insert(id, tb, "(id)", idCol, serverCols, []any{id, e.Name, e.Flavor.ID, fl, e.ImageID,
					"running", "NOSTATE", "scheduling", "BUILDING", e.Operation, e.KeepRunning == nil || *e.KeepRunning,
					env.Version, e.CreatedAt, e.CreatedAt, env.Sequence, nullable(e.KeyName), append([]int{}, e.DataDisksGiB...), nullable(e.Project)})
			case *server.NICsSet:
				nics, err := json.Marshal(e.NICs)
				if err != nil {
					return err
				}
				upd(To("nics", nics))
			case *server.Scheduled:
				upd(To("host", e.Host), To("task", "spawning"))
			case *server.SpawnFailed:
				upd(To("host", nil), To("task", "scheduling"))
			case *server.Spawned, *server.Started, *server.Rebooted:
				upd(To("power", "RUNNING"), To("task", nil), To("status", "ACTIVE"), To("reason", nil))
			case *server.Failed:
				upd(To("host", nil), To("power", "NOSTATE"), To("task", nil), To("status", "ERROR"), To("reason", e.Reason))
			case *server.StartRequested:
				upd(To("desired", "running"), To("task", "powering_on"), To("operation_id", e.Operation))
			case *server.StopRequested:
				upd(To("desired", "stopped"), To("task", "powering_off"), To("operation_id", e.Operation))
			case *server.RebootRequested:
				upd(To("task", "rebooting"), To("status", "REBOOTING"), To("operation_id", e.Operation))
			case *server.Stopped:
				upd(To("power", "SHUTOFF"), To("task", nil), To("status", "STOPPED"), To("reason", nil))
			case *server.ActionFailed:
				// The status follows the power state: known when this batch
				// set it, read from the row otherwise.
				if p, ok := w.Known(tb, idCol, key, "power"); ok {
					upd(To("task", nil), To("reason", e.Reason), To("status", statusOfPower(p.(string))))
					break
				}
				w.Exec(id, `UPDATE `+tb+` SET version=$2, updated_at=$3, seq=$4, task=NULL, reason=$5,
					status=CASE power WHEN 'RUNNING' THEN 'ACTIVE' WHEN 'SHUTOFF' THEN 'STOPPED' WHEN 'PAUSED' THEN 'STOPPED' WHEN 'CRASHED' THEN 'STOPPED' ELSE 'ERROR' END WHERE id=$1`,
					id, env.Version, env.OccurredAt, env.Sequence, e.Reason)
			case *server.DeleteRequested:
				upd(To("desired", "deleted"), To("task", "deleting"), To("status", "DELETING"), To("operation_id", e.Operation))
			case *server.Deleted:
				w.Delete(tb, idCol, key)
			case *server.PowerObserved:
				sets := []Set{To("power", string(e.Power)), To("status", statusOfPower(string(e.Power))), To("reason", nil)}
				if e.Desired != "" {
					sets = append(sets, To("desired", string(e.Desired)))
				}
				upd(sets...)
			case *server.Lost:
				upd(To("power", "NOSTATE"), To("status", "ERROR"), To("reason", e.Reason))
			default:
				if _, err := applyInterface(w, tb, env, ev, upd); err != nil {
					return err
				}
			}
		}
		return nil
	}}

// statusOfPower is a server's status once no task runs.
func statusOfPower(power string) string {
	switch power {
	case "RUNNING":
		return "ACTIVE"
	case "SHUTOFF", "PAUSED", "CRASHED":
		return "STOPPED"
	}
	return "ERROR"
}

var (
	operationCols = []string{"id", "kind", "resource_type", "resource_id", "status", "created_at", "updated_at", "seq", "project_id"}
	stepCols      = []string{"operation_id", "idx", "name", "status", "timeout_ms"}
	stepKey       = []string{"operation_id", "name"}
)

// Operations is the operations and operation_steps tables. A server event
// that names a new operation inserts it as pending, so the operation id
// returned by the API can be read at the same sequence as the server. An
// operation's commits within a batch fold into one write per row. A
// failure's detail (the account behind the user's reason, for admins) is
// kept beside the error, on the step and on the operation.
var Operations = Projection{Name: "operations", Version: 1, Tables: []string{"operations", "operation_steps"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		ops, steps := t.T("operations"), t.T("operation_steps")
		pending := func(id, kind string) {
			w.Insert(id, ops, "(id)", idCol, operationCols, []any{id, kind, "server", env.AggregateID, "pending", env.OccurredAt, env.OccurredAt, env.Sequence, nullable(env.Project)})
		}
		id := env.AggregateID
		op := func(sets ...Set) { w.Update(id, ops, idCol, []any{id}, sets...) }
		step := func(name string, sets ...Set) { w.Update(id, steps, stepKey, []any{id, name}, sets...) }
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
			case *server.InterfaceAttachRequested:
				pending(e.Operation, "server.attach_interface")
			case *server.InterfaceDetachRequested:
				pending(e.Operation, "server.detach_interface")
			case *operation.Began:
				oid := string(e.ID)
				w.Insert(oid, ops, "(id)", idCol, operationCols, []any{oid, e.Kind, e.ResourceType, e.ResourceID, "running", e.At, e.At, env.Sequence, nullable(e.Project)},
					To("status", "running"), To("updated_at", e.At), To("seq", env.Sequence))
				for i, s := range e.Steps {
					w.Insert(oid, steps, "(operation_id, idx)", stepKey, stepCols, []any{oid, i, s.Name, "pending", s.Timeout.Milliseconds()})
				}
			case *operation.StepStarted:
				step(e.Step, To("status", "running"), To("started_at", e.At), To("deadline", e.Deadline))
				op(To("current_step", e.Step), To("deadline", e.Deadline), To("updated_at", e.At), To("seq", env.Sequence))
			case *operation.StepSucceeded:
				step(e.Step, To("status", "succeeded"), To("finished_at", e.At))
				op(To("current_step", nil), To("deadline", nil), To("updated_at", e.At), To("seq", env.Sequence))
			case *operation.StepFailed:
				step(e.Step, To("status", "failed"), To("finished_at", e.At), To("error", e.Reason), To("detail", nullIfEmpty(e.Detail)))
				op(To("status", "compensating"), To("current_step", nil), To("deadline", nil), To("error", e.Reason),
					To("detail", nullIfEmpty(e.Detail)), To("updated_at", e.At), To("seq", env.Sequence))
			case *operation.Rewound:
				w.Exec(id, `UPDATE `+steps+` SET status='pending', started_at=NULL, finished_at=NULL, deadline=NULL,
					error=CASE WHEN name=$3 THEN $4 ELSE error END, detail=CASE WHEN name=$3 THEN $5 ELSE detail END
					WHERE operation_id=$1 AND idx >= (SELECT idx FROM `+steps+` WHERE operation_id=$1 AND name=$2)`,
					id, e.To, e.From, e.Reason, nullIfEmpty(e.Detail))
				op(To("current_step", nil), To("deadline", nil), To("updated_at", e.At), To("seq", env.Sequence))
			case *operation.OperationSucceeded:
				finish(op, env, "succeeded", "", "", e.At)
			case *operation.OperationFailed:
				w.Exec(id, `UPDATE `+steps+` SET status='skipped' WHERE operation_id=$1 AND status='pending'`, id)
				w.Exec(id, `UPDATE `+steps+` SET status='compensated' WHERE operation_id=$1 AND status='succeeded' AND name = ANY($2)`, id, e.Compensated)
				finish(op, env, "failed", e.Reason, e.Detail, e.At)
			}
		}
		return nil
	}}

func finish(op func(...Set), env domain.Envelope, status, reason, detail string, at time.Time) {
	op(To("status", status), To("error", nullIfEmpty(reason)), To("detail", nullIfEmpty(detail)), To("current_step", nil), To("deadline", nil),
		To("finished_at", at), To("updated_at", at), To("seq", env.Sequence))
}
