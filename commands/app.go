package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/keypair"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
	"github.com/keel-cloud/keel/domain/subnet"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
	"github.com/keel-cloud/keel/metrics"
)

// App lists every command handler: it reads as the table of contents of
// what Keel can be asked to do.
type App struct {
	Flavors    *Handler[flavor.State, flavor.Command]
	Images     *Handler[image.State, image.Command]
	Servers    *Handler[server.State, server.Command]
	Operations *Handler[operation.State, operation.Command]
	Hosts      *Handler[host.State, host.Command]
	Groups     *Handler[servergroup.State, servergroup.Command]
	Aggregates *Handler[hostaggregate.State, hostaggregate.Command]
	Keypairs   *Handler[keypair.State, keypair.Command]
	Projects   *Handler[project.State, project.Command]
	Users      *Handler[user.State, user.Command]
	Tokens     *Handler[token.State, token.Command]
	// Networking (networks.go, ports.go, secgroups.go).
	Networks       *Handler[network.State, network.Command]
	Subnets        *Handler[subnet.State, subnet.Command]
	Ports          *Handler[port.State, port.Command]
	SecurityGroups *Handler[secgroup.State, secgroup.Command]
	// Routers and floating IPs (routers.go, floatingips.go).
	Routers     *Handler[router.State, router.Command]
	FloatingIPs *Handler[floatingip.State, floatingip.Command]
	// Names keeps flavor, image and keypair names unique (nil: not enforced).
	Names NameStore
	// Secrets seals each new server's generated admin password and opens
	// it for login info (nil: servers get no generated password).
	Secrets Sealer
	// Now gives the time put into commands; tests may replace it.
	Now func() time.Time
}

// NewApp builds the handlers on one event store.
func NewApp(store EventStore) *App {
	a := &App{
		Flavors:    New(store, flavor.Decider, 10_000),
		Images:     New(store, image.Decider, 10_000),
		Servers:    New(store, server.Decider, 200_000),
		Operations: New(store, operation.Decider, 200_000),
		Hosts:      New(store, host.Decider, 20_000),
		Groups:     New(store, servergroup.Decider, 20_000),
		Aggregates: New(store, hostaggregate.Decider, 10_000),
		Keypairs:   New(store, keypair.Decider, 10_000),
		Projects:   New(store, project.Decider, 10_000),
		Users:      New(store, user.Decider, 10_000),
		Tokens:     New(store, token.Decider, 50_000),
		// A subnet's state carries its address map (8 KiB at /16).
		Networks:       New(store, network.Decider, 20_000),
		Subnets:        New(store, subnet.Decider, 5_000),
		Ports:          New(store, port.Decider, 200_000),
		SecurityGroups: New(store, secgroup.Decider, 20_000),
		Routers:        New(store, router.Decider, 20_000),
		FloatingIPs:    New(store, floatingip.Decider, 50_000),
		Now:            time.Now,
	}
	// What a project owns: commands acting in a project (Meta.Scope) see
	// only these, and every commit names its owner.
	a.Servers.Owner = func(s server.State) string { return s.Project }
	a.Keypairs.Owner = func(s keypair.State) string { return s.Spec.Project }
	a.Groups.Owner = func(s servergroup.State) string { return s.Spec.Project }
	a.Images.Owner = func(s image.State) string { return s.Spec.Project }
	a.Operations.Owner = func(s operation.State) string { return s.Project }
	a.Networks.Owner = func(s network.State) string { return s.Project }
	a.Subnets.Owner = func(s subnet.State) string { return s.Project }
	a.Ports.Owner = func(s port.State) string { return s.Project }
	a.SecurityGroups.Owner = func(s secgroup.State) string { return s.Project }
	a.Routers.Owner = func(s router.State) string { return s.Project }
	a.FloatingIPs.Owner = func(s floatingip.State) string { return s.Project }
	// Every request reads its token, user and project: a second of
	// staleness across replicas is accepted there (see Authenticate).
	a.Tokens.FreshFor, a.Users.FreshFor, a.Projects.FreshFor = time.Second, time.Second, time.Second
	// Creates read the flavor and image they name; a second of staleness
	// across replicas is accepted there (a server keeps a copy of its flavor,
	// and a build from an image deleted meanwhile fails at spawn).
	a.Flavors.FreshFor, a.Images.FreshFor = time.Second, time.Second
	return a
}

// Observe makes every handler count its appended and refused commands in m.
// Call it before the handlers are used.
func (a *App) Observe(m *metrics.Set) {
	a.Flavors.Metrics, a.Images.Metrics, a.Servers.Metrics = m, m, m
	a.Operations.Metrics, a.Hosts.Metrics, a.Groups.Metrics, a.Aggregates.Metrics, a.Keypairs.Metrics = m, m, m, m, m
	a.Projects.Metrics, a.Users.Metrics, a.Tokens.Metrics = m, m, m
	a.Networks.Metrics, a.Subnets.Metrics, a.Ports.Metrics, a.SecurityGroups.Metrics = m, m, m, m
	a.Routers.Metrics, a.FloatingIPs.Metrics = m, m
}

// keelNS is the namespace of Keel's derived (name-based) UUIDs.
var keelNS = uuid.MustParse("6f1e0c43-5a7e-4b55-9d3e-2b8f4a1c7d10")

// DeriveID returns a stable UUID for a name, so that a retried command or
// a redelivered event produces the same ids every time.
func DeriveID(parts ...string) string {
	name := ""
	for i, p := range parts {
		if i > 0 {
			name += "/"
		}
		name += p
	}
	return uuid.NewSHA1(keelNS, []byte(name)).String()
}

// HostID is the aggregate id of the host with this name: agents derive it,
// so a host keeps its id across agent restarts.
func HostID(name string) string { return DeriveID("host", name) }

// NewID returns a fresh random id.
func NewID() string { return uuid.NewString() }

// CreateServerRequest is what a user asks for.
type CreateServerRequest struct {
	Name     string
	FlavorID string
	ImageID  string
	Hints    server.Hints
	UserData []byte
	// KeepRunning nil means true (see server.Create).
	KeepRunning *bool
	// DataDisksGiB are blank data disks, by size.
	DataDisksGiB []int
	// KeypairID names the keypair whose public key the server gets ("": none).
	KeypairID string
	// Networks are the networks it gets a NIC on, in order (eth0 first):
	// the create saga makes a port on each before placing it.
	Networks []string
}

// CreateServer checks the flavor and the image against the event log and
// records a new server. The server id and its operation id derive from the
// command id, so a retried create yields the same server.
func (a *App) CreateServer(ctx context.Context, req CreateServerRequest, meta Meta) (Result[server.State], string, error) {
	fl, _, err := a.Flavors.Load(ctx, req.FlavorID)
	if err != nil {
		return Result[server.State]{}, "", err
	}
	if !fl.Exists || fl.Deleted {
		return Result[server.State]{}, "", domain.Invalidf("flavor %s does not exist", req.FlavorID)
	}
	im, _, err := a.Images.Load(ctx, req.ImageID)
	if err != nil {
		return Result[server.State]{}, "", err
	}
	if !im.Exists || im.Status == image.Deleted || (im.Spec.Project != "" && im.Spec.Project != meta.Actor.Project) {
		return Result[server.State]{}, "", domain.Invalidf("image %s does not exist", req.ImageID)
	}
	if im.Status != image.Active {
		return Result[server.State]{}, "", domain.Conflictf("image %s is %s: upload its data before creating servers from it", req.ImageID, im.Status)
	}
	if fl.Spec.DiskGiB > 0 && fl.Spec.DiskGiB < im.Spec.MinDiskGiB {
		return Result[server.State]{}, "", domain.Invalidf("flavor %s has %d GiB of disk; image %s needs at least %d GiB", fl.Spec.Name, fl.Spec.DiskGiB, im.Spec.Name, im.Spec.MinDiskGiB)
	}
	if fl.Spec.RAMMiB < im.Spec.MinRAMMiB {
		return Result[server.State]{}, "", domain.Invalidf("flavor %s has %d MiB of RAM; image %s needs at least %d MiB", fl.Spec.Name, fl.Spec.RAMMiB, im.Spec.Name, im.Spec.MinRAMMiB)
	}
	if g := req.Hints.ServerGroup; g != "" {
		st, _, err := a.Groups.Load(ctx, g)
		if err != nil {
			return Result[server.State]{}, "", err
		}
		if !st.Exists || st.Deleted || st.Spec.Project != meta.Actor.Project {
			return Result[server.State]{}, "", domain.Invalidf("server group %s does not exist", g)
		}
	}
	for _, n := range req.Networks {
		st, err := a.liveNetwork(ctx, n, meta)
		if err != nil {
			return Result[server.State]{}, "", err
		}
		if meta.Actor.Project != "" && st.Project != meta.Actor.Project {
			return Result[server.State]{}, "", domain.Invalidf("network %s does not exist", n)
		}
	}
	id := DeriveID(meta.CommandID, "server")
	opID := DeriveID(id, "create")
	meta.CorrelationID = opID
	cmd := server.Create{
		ID: server.ID(id), Project: meta.Actor.Project, Name: req.Name, ImageID: req.ImageID, Operation: opID, Hints: req.Hints, UserData: req.UserData, KeepRunning: req.KeepRunning, DataDisksGiB: req.DataDisksGiB, Networks: req.Networks, At: a.Now().UTC(),
		Flavor: server.Flavor{ID: req.FlavorID, Name: fl.Spec.Name, VCPUs: fl.Spec.VCPUs, RAMMiB: fl.Spec.RAMMiB, DiskGiB: fl.Spec.DiskGiB, ExtraSpecs: fl.Spec.ExtraSpecs},
	}
	if err := a.firstBoot(ctx, &cmd, req.KeypairID); err != nil {
		return Result[server.State]{}, "", err
	}
	// A create the server decider refuses (bad user data, too many disks)
	// must not touch the quota: decided first, against a new server.
	if _, err := server.Decider.Decide(server.Decider.Initial(id), cmd); err != nil {
		return Result[server.State]{}, "", err
	}
	// The project's quota is reserved before the server exists, under the
	// server's id: a retry reserves nothing twice, and the delete gives it
	// back (the delete saga).
	if err := a.reserve(ctx, cmd.Project, id, ServerQuota(cmd.Flavor), meta); err != nil {
		return Result[server.State]{}, "", err
	}
	res, err := a.Servers.Create(ctx, id, cmd, meta)
	if err != nil && cmd.Project != "" && !a.abandoned(ctx, id) {
		rm := meta
		rm.CommandID = meta.CommandID + "/quota-release"
		if _, rerr := a.Projects.HandleBatched(context.WithoutCancel(ctx), cmd.Project, project.Release{Key: id, Amounts: ServerQuota(cmd.Flavor), At: a.Now().UTC()}, rm); rerr != nil {
			err = fmt.Errorf("%w (and its quota reservation stays: %v)", err, rerr)
		}
	}
	return res, opID, err
}

// abandoned reports whether the quota sweep closed a server id (and gives
// its reservation back itself: the create must not give it back twice).
func (a *App) abandoned(ctx context.Context, id string) bool {
	st, _, err := a.Servers.LoadLatest(context.WithoutCancel(ctx), id)
	return err == nil && st.Abandoned
}

// ServerQuota is what a server of a flavor counts against its project.
func ServerQuota(f server.Flavor) map[string]int {
	return project.ServerAmounts(f.VCPUs, f.RAMMiB)
}

// reserve takes amounts of a project's quota under key (none without a
// project: the cloud's own resources and those of before tenancy).
func (a *App) reserve(ctx context.Context, projectID, key string, amounts map[string]int, meta Meta) error {
	if projectID == "" {
		return nil
	}
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/quota", ""
	_, err := a.Projects.HandleBatched(ctx, projectID, project.Reserve{Key: key, Amounts: amounts, At: a.Now().UTC()}, m)
	return err
}

// ServerAction is start, stop, reboot or delete.
type ServerAction string

// Server actions.
const (
	ActionStart  ServerAction = "start"
	ActionStop   ServerAction = "stop"
	ActionReboot ServerAction = "reboot"
	// ActionHardReboot resets the guest instead of shutting it down first.
	ActionHardReboot ServerAction = "reboot --hard"
	ActionDelete     ServerAction = "delete"
)

// ActOnServer records a user action; the saga carries it out.
func (a *App) ActOnServer(ctx context.Context, id string, action ServerAction, meta Meta) (Result[server.State], string, error) {
	opID := DeriveID(meta.CommandID, "operation")
	meta.CorrelationID = opID
	at := a.Now().UTC()
	var cmd server.Command
	switch action {
	case ActionStart:
		cmd = server.Start{Operation: opID, At: at}
	case ActionStop:
		cmd = server.Stop{Operation: opID, At: at}
	case ActionReboot:
		cmd = server.Reboot{Operation: opID, At: at}
	case ActionHardReboot:
		cmd = server.Reboot{Operation: opID, Hard: true, At: at}
	case ActionDelete:
		cmd = server.Delete{Operation: opID, At: at}
	default:
		return Result[server.State]{}, "", domain.Invalidf("unknown server action %q", action)
	}
	res, err := a.Servers.Handle(ctx, id, cmd, meta)
	if err != nil {
		return res, "", fmt.Errorf("%s server %s: %w", action, id, err)
	}
	return res, res.State.Operation, nil
}
