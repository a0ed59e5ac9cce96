package api

import (
	"encoding/json"
	"time"
)

// Flavor is a server size.
type Flavor struct {
	ID         string            `json:"id" format:"uuid"`
	Name       string            `json:"name"`
	VCPUs      int               `json:"vcpus"`
	RAMMiB     int               `json:"ram_mib"`
	DiskGiB    int               `json:"disk_gib"`
	ExtraSpecs map[string]string `json:"extra_specs"`
	CreatedAt  time.Time         `json:"created_at"`
}

// Image is a disk image; its size and sha256 are known once uploaded.
type Image struct {
	ID         string    `json:"id" format:"uuid"`
	Name       string    `json:"name"`
	DiskFormat string    `json:"disk_format"`
	MinDiskGiB int       `json:"min_disk_gib"`
	MinRAMMiB  int       `json:"min_ram_mib"`
	Status     string    `json:"status" enum:"queued,active"`
	SizeBytes  *int64    `json:"size_bytes"`
	SHA256     *string   `json:"sha256"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Server is a virtual machine: desired, observed and task state side by side.
type Server struct {
	ID          string       `json:"id" format:"uuid"`
	Name        string       `json:"name"`
	Status      string       `json:"status" enum:"BUILDING,ACTIVE,STOPPED,REBOOTING,DELETING,ERROR"`
	Reason      *string      `json:"reason" doc:"Why the server is in ERROR, or why its last action failed"`
	Desired     string       `json:"desired_state" enum:"running,stopped,deleted"`
	Power       string       `json:"power_state" doc:"Observed power state reported by the host"`
	Task        *string      `json:"task_state"`
	Host        *string      `json:"host"`
	Flavor      ServerFlavor `json:"flavor"`
	ImageID     string       `json:"image_id" format:"uuid"`
	OperationID *string      `json:"operation_id" doc:"The latest operation on this server"`
	KeepRunning bool         `json:"keep_running" doc:"Started again when found stopped behind Keel's back (a host reboot, a crash); false: left STOPPED"`
	Version     int64        `json:"version" doc:"Aggregate version, for If-Match"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// ServerFlavor is the copy of its flavor a server keeps.
type ServerFlavor struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	VCPUs      int               `json:"vcpus"`
	RAMMiB     int               `json:"ram_mib"`
	DiskGiB    int               `json:"disk_gib"`
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
}

// Accepted is the answer to anything that takes time: the server as it is
// now and the operation that carries the request out.
type Accepted struct {
	Server      Server `json:"server"`
	OperationID string `json:"operation_id" format:"uuid" doc:"Follow it at /v1/operations/{id}"`
}

// Operation is a multi-step operation (a saga) and its steps.
type Operation struct {
	ID           string     `json:"id" format:"uuid"`
	Kind         string     `json:"kind"`
	ResourceType string     `json:"resource_type"`
	ResourceID   string     `json:"resource_id" format:"uuid"`
	Status       string     `json:"status" enum:"pending,running,compensating,succeeded,failed"`
	CurrentStep  *string    `json:"current_step"`
	Deadline     *time.Time `json:"deadline"`
	Error        *string    `json:"error"`
	Steps        []Step     `json:"steps"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	DurationMS   *int64     `json:"duration_ms"`
}

// Step is one step of an operation.
type Step struct {
	Name       string     `json:"name"`
	Status     string     `json:"status" enum:"pending,running,succeeded,failed,compensated,skipped"`
	TimeoutMS  int64      `json:"timeout_ms"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Deadline   *time.Time `json:"deadline"`
	Error      *string    `json:"error"`
}

// Host is a compute host: identity, state, and capacity total (after
// overcommit), used and free.
type Host struct {
	ID          string     `json:"id" format:"uuid"`
	Name        string     `json:"name"`
	Driver      string     `json:"driver"`
	Address     *string    `json:"address"`
	Hypervisor  *string    `json:"hypervisor"`
	CPUModel    *string    `json:"cpu_model"`
	CPUFeatures []string   `json:"cpu_features"`
	Traits      []string   `json:"traits"`
	Status      string     `json:"status" enum:"enabled,disabled,maintenance"`
	State       string     `json:"state" enum:"up,down"`
	Reason      *string    `json:"status_reason"`
	DownSince   *time.Time `json:"down_since"`
	Ratios      Ratios     `json:"overcommit"`
	Physical    Resources  `json:"physical"`
	Total       Resources  `json:"total"` // physical capacity times the overcommit ratios
	Used        Resources  `json:"used"`
	Free        Resources  `json:"free"`
	Servers     int        `json:"servers" doc:"Servers holding a claim on this host"`
	UpdatedAt   *time.Time `json:"updated_at"`
	Version     int64      `json:"version" doc:"Aggregate version, for If-Match (also the ETag)"`
}

// Resources is an amount of vCPUs, RAM and disk.
type Resources struct {
	VCPUs   int `json:"vcpus"`
	RAMMiB  int `json:"ram_mib"`
	DiskGiB int `json:"disk_gib"`
}

// Ratios are a host's overcommit ratios.
type Ratios struct {
	CPU  float64 `json:"cpu"`
	RAM  float64 `json:"ram"`
	Disk float64 `json:"disk"`
}

// HostList lists every host (not paged).
type HostList struct {
	Items []Host `json:"items"`
}

// HostAggregate groups hosts under metadata the scheduler matches.
type HostAggregate struct {
	ID               string            `json:"id" format:"uuid"`
	Name             string            `json:"name"`
	AvailabilityZone *string           `json:"availability_zone"`
	Metadata         map[string]string `json:"metadata"`
	Hosts            []string          `json:"hosts"`
	CreatedAt        time.Time         `json:"created_at"`
	Version          int64             `json:"version" doc:"Aggregate version, for If-Match (also the ETag)"`
}

// AvailabilityZone is a zone and its hosts.
type AvailabilityZone struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

// AvailabilityZoneList lists availability zones.
type AvailabilityZoneList struct {
	Items []AvailabilityZone `json:"items"`
}

// ServerGroup is a server group with where its members are.
type ServerGroup struct {
	ID         string        `json:"id" format:"uuid"`
	Name       string        `json:"name"`
	Policy     string        `json:"policy" enum:"affinity,anti-affinity,soft-affinity,soft-anti-affinity"`
	MaxPerHost int           `json:"max_per_host"`
	Members    []GroupMember `json:"members"`
	CreatedAt  time.Time     `json:"created_at"`
}

// GroupMember is a member of a server group and its host.
type GroupMember struct {
	ServerID string `json:"server_id" format:"uuid"`
	Host     string `json:"host"`
}

// Commit is one commit of the event log: the events one command decided.
type Commit struct {
	Sequence      uint64     `json:"sequence"`
	AggregateType string     `json:"aggregate_type"`
	AggregateID   string     `json:"aggregate_id"`
	Version       uint64     `json:"version"`
	CommandID     string     `json:"command_id"`
	OccurredAt    time.Time  `json:"occurred_at"`
	Actor         Actor      `json:"actor"`
	RequestID     string     `json:"request_id,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	CausationID   string     `json:"causation_id,omitempty"`
	Events        []RawEvent `json:"events"`
}

// RawEvent is one event of a commit, its data as stored.
type RawEvent struct {
	Type   string          `json:"type"`
	Schema int             `json:"schema"`
	Data   json.RawMessage `json:"data"`
}

// Actor is who issued a command.
type Actor struct {
	User    string   `json:"user"`
	Project string   `json:"project,omitempty"`
	Roles   []string `json:"roles,omitempty"`
}

// EventPage is a page of history.
type EventPage struct {
	Items     []Commit `json:"items"`
	NextSince uint64   `json:"next_since" doc:"Pass as since to get the next page; 0 on the last page"`
}

// StreamReady opens the live stream: the head of the log when it began.
type StreamReady struct {
	Head uint64 `json:"head" doc:"Last stream sequence when the subscription began"`
}

// ProjectionStatus is a read-model projection's checkpoint and lag.
type ProjectionStatus struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Sequence  uint64    `json:"sequence"`
	Lag       uint64    `json:"lag"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProjectionList lists projections.
type ProjectionList struct {
	Items []ProjectionStatus `json:"items"`
}

// RebuildResult reports one projection's rebuild.
type RebuildResult struct {
	Projection string        `json:"projection"`
	Commits    uint64        `json:"commits"`
	Sequence   uint64        `json:"sequence"`
	Duration   time.Duration `json:"duration_ns"`
}

// RebuildList reports rebuilds.
type RebuildList struct {
	Items []RebuildResult `json:"items"`
}

// ParkedCommit is a commit whose reaction kept failing, parked so that the
// later commits of its key went on.
type ParkedCommit struct {
	Subscription  string    `json:"subscription" doc:"Durable subscription that parked it (saga-servers-v1, agent-<name>-v1)"`
	Sequence      uint64    `json:"sequence" doc:"Stream sequence of the commit"`
	AggregateType string    `json:"aggregate_type"`
	AggregateID   string    `json:"aggregate_id"`
	Key           string    `json:"key" doc:"Ordering key of the commit in its subscription"`
	Attempts      int       `json:"attempts" doc:"Failed attempts so far, retries included"`
	Reason        string    `json:"reason" doc:"The last error, cut to 1024 bytes"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	ParkedAt      time.Time `json:"parked_at" doc:"When it was last parked"`
	State         string    `json:"state" enum:"parked,retry" doc:"retry: a retry was asked for and has not run yet"`
}

// List is a page of items and the cursor of the next page ("" at the end).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor" doc:"Pass as cursor to get the next page; empty on the last page"`
}
