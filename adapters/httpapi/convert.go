package httpapi

import (
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/projections"
)

// The read model's rows and the API's bodies are separate types, so the
// database schema never becomes the public contract by accident: these
// functions are the one place that maps one onto the other.

func flavorOut(f postgres.Flavor) api.Flavor {
	return api.Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAMMiB, DiskGiB: f.DiskGiB,
		ExtraSpecs: f.ExtraSpecs, CreatedAt: f.CreatedAt}
}

func keypairOut(k postgres.Keypair) api.Keypair {
	return api.Keypair{ID: k.ID, Name: k.Name, Type: k.Type, PublicKey: k.PublicKey, Fingerprint: k.Fingerprint, CreatedAt: k.CreatedAt, ProjectID: k.ProjectID}
}

func imageOut(i postgres.Image) api.Image {
	return api.Image{ID: i.ID, Name: i.Name, DiskFormat: i.DiskFormat, MinDiskGiB: i.MinDiskGiB, MinRAMMiB: i.MinRAMMiB,
		Status: i.Status, SizeBytes: i.SizeBytes, SHA256: i.SHA256, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
		ProjectID: i.ProjectID, Visibility: visibility(i.ProjectID)}
}

// visibility is public for an image of no project, private otherwise.
func visibility(project *string) string {
	if project == nil || *project == "" {
		return "public"
	}
	return "private"
}

func serverOut(s postgres.Server) api.Server {
	f := s.Flavor
	nics, addrs := make([]api.ServerNIC, len(s.NICs)), []string{}
	for i, n := range s.NICs {
		nics[i] = api.ServerNIC{PortID: n.Port, NetworkID: n.Network, MAC: n.MAC, IPs: append([]string{}, n.IPs...)}
		addrs = append(addrs, n.IPs...)
	}
	return api.Server{NICs: nics, Addresses: addrs, ID: s.ID, Name: s.Name, Status: s.Status, Reason: s.Reason, Desired: s.Desired, Power: s.Power,
		Task: s.Task, Host: s.Host, ImageID: s.ImageID, OperationID: s.OperationID, KeepRunning: s.KeepRunning, KeyName: s.KeyName, DataDisksGiB: s.DataDisksGiB, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, ProjectID: s.ProjectID,
		Flavor: api.ServerFlavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAMMiB, DiskGiB: f.DiskGiB, ExtraSpecs: f.ExtraSpecs}}
}

func operationOut(o postgres.Operation) api.Operation {
	steps := make([]api.Step, len(o.Steps))
	for i, s := range o.Steps {
		steps[i] = api.Step{Name: s.Name, Status: s.Status, TimeoutMS: s.TimeoutMS, StartedAt: s.StartedAt,
			FinishedAt: s.FinishedAt, Deadline: s.Deadline, Error: s.Error, Detail: s.Detail}
	}
	return api.Operation{ID: o.ID, Kind: o.Kind, ResourceType: o.ResourceType, ResourceID: o.ResourceID, Status: o.Status,
		CurrentStep: o.CurrentStep, Deadline: o.Deadline, Error: o.Error, Detail: o.Detail, Steps: steps, CreatedAt: o.CreatedAt,
		UpdatedAt: o.UpdatedAt, FinishedAt: o.FinishedAt, DurationMS: o.DurationMS, ProjectID: o.ProjectID}
}

func hostOut(h postgres.Host) api.Host {
	return api.Host{ID: h.ID, Name: h.Name, Driver: h.Driver, Address: h.Address, Hypervisor: h.Hypervisor,
		CPUModel: h.CPUModel, CPUFeatures: h.CPUFeatures, Traits: h.Traits, Status: h.Status, State: h.State, UnknownGuests: h.UnknownGuests,
		Reason: h.Reason, DownSince: h.DownSince, Ratios: api.Ratios(h.Ratios), Physical: resourcesOut(h.Physical),
		Total: resourcesOut(h.Total), Used: resourcesOut(h.Used), Free: resourcesOut(h.Free), Servers: h.Servers,
		UpdatedAt: h.UpdatedAt, Version: h.Version}
}

func resourcesOut(r host.Resources) api.Resources { return api.Resources(r) }

func aggregateOut(a postgres.HostAggregate) api.HostAggregate {
	return api.HostAggregate{ID: a.ID, Name: a.Name, AvailabilityZone: a.AvailabilityZone, Metadata: a.Metadata,
		Hosts: a.Hosts, CreatedAt: a.CreatedAt, Version: a.Version}
}

func zoneOut(z postgres.AvailabilityZone) api.AvailabilityZone {
	return api.AvailabilityZone{Name: z.Name, Hosts: z.Hosts}
}

func groupOut(g postgres.ServerGroup) api.ServerGroup {
	members := make([]api.GroupMember, len(g.Members))
	for i, m := range g.Members {
		members[i] = api.GroupMember{ServerID: m.ServerID, Host: m.Host}
	}
	return api.ServerGroup{ID: g.ID, Name: g.Name, Policy: g.Policy, MaxPerHost: g.MaxPerHost, Members: members, CreatedAt: g.CreatedAt, ProjectID: g.ProjectID}
}

// commitOut is an envelope as the API shows it.
func commitOut(env domain.Envelope) api.Commit {
	var events []api.RawEvent
	if env.Events != nil {
		events = make([]api.RawEvent, len(env.Events))
		for i, e := range env.Events {
			events[i] = api.RawEvent(e)
		}
	}
	return api.Commit{Sequence: env.Sequence, AggregateType: env.AggregateType, AggregateID: env.AggregateID,
		Version: env.Version, CommandID: env.CommandID, OccurredAt: env.OccurredAt, Actor: api.Actor(env.Actor),
		RequestID: env.RequestID, CorrelationID: env.CorrelationID, CausationID: env.CausationID, Project: env.Project, Events: events}
}

func projectionOut(s projections.Status) api.ProjectionStatus { return api.ProjectionStatus(s) }

func rebuildOut(r projections.RebuildResult) api.RebuildResult { return api.RebuildResult(r) }

// ListOutput wraps a page.
type ListOutput[T any] struct {
	Body api.List[T]
}

// listOut is a page of items in their API form.
func listOut[T any](items []T, next string) *ListOutput[T] {
	if items == nil {
		items = []T{}
	}
	return &ListOutput[T]{Body: api.List[T]{Items: items, NextCursor: next}}
}

// pageOut is a page of read-model rows in their API form.
func pageOut[R, T any](rows []R, next string, conv func(R) T) *ListOutput[T] {
	return listOut(all(rows, conv), next)
}

// all converts a slice, keeping nil as nil (noNullArrays sends it as []).
func all[R, T any](rows []R, conv func(R) T) []T {
	if rows == nil {
		return nil
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out
}
