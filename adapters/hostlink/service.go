package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	hostdomain "github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
)

// ImageSource opens an image object's bytes (the image store).
type ImageSource interface {
	Get(ctx context.Context, object string) (io.ReadCloser, error)
}

// Service answers the requests of host agents in keel serve. The subject a
// request came on names the host (NATS permissions keep each host to its
// own), and every request is checked against what was recorded before it
// becomes a command: a host reports only on its own servers, registers only
// itself, and reads only the images of its own servers.
type Service struct {
	App    *commands.App
	Keys   *Keys
	Images ImageSource
	// JS and NC acknowledge the work hosts are done with (Forwarder).
	JS jetstream.JetStream
	NC *nats.Conn
	// Parked records the work hosts gave up on (nil: refused); Commits
	// reads the commit a parking names, to check it is the host's.
	Parked  eventlog.ParkingLot
	Commits eventlog.CommitGetter
	// SpoolDir holds the copies of images being read by hosts (made 0700;
	// "" is the OS's temporary directory).
	SpoolDir string
	Log      *slog.Logger
	// Workers is how many requests are answered at once (default 64).
	Workers int

	spoolMu sync.Mutex
	spools  map[string]*spool // image objects being read by hosts
}

// reply is the answer to every request: a result, or why not.
type reply struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// refusal is an error the host is told in so many words.
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

func refusef(format string, args ...any) error { return refusal{fmt.Sprintf(format, args...)} }

// Serve answers requests on nc until ctx ends. Replicas of keel serve share
// them (a queue group).
func (s *Service) Serve(ctx context.Context, nc *nats.Conn) error {
	if s.Workers < 1 {
		s.Workers = 64
	}
	if s.NC == nil {
		s.NC = nc
	}
	msgs := make(chan *nats.Msg, 4096)
	var subs []*nats.Subscription
	for _, sim := range []bool{false, true} {
		for _, verb := range requestVerbs {
			sub, err := nc.ChanQueueSubscribe(HostSubject("*", verb, sim), "keel-serve", msgs)
			if err != nil {
				for _, s := range subs {
					_ = s.Unsubscribe()
				}
				return fmt.Errorf("answer host requests: %w", err)
			}
			subs = append(subs, sub)
		}
	}
	var wg sync.WaitGroup
	for range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-msgs:
					s.answer(ctx, m)
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		wg.Wait()
	}()
	go s.sweepSpools(ctx)
	return nil
}

func (s *Service) answer(ctx context.Context, m *nats.Msg) {
	parts := strings.Split(m.Subject, ".")
	if len(parts) != 4 || !strings.HasPrefix(m.Reply, "_INBOX") || strings.ContainsAny(m.Reply, "*> ") || m.Header.Get("Status") != "" {
		// An answer goes to the asker's inbox only: keel serve may publish
		// anywhere, and a host must not pick where (the event stream).
		return
	}
	hostID, verb, sim := parts[2], parts[3], parts[1] == "sim"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	result, err := s.Handle(cctx, hostID, sim, verb, m.Data)
	var r reply
	var ref refusal
	switch {
	case errors.As(err, &ref):
		r.Error = ref.msg
	case err != nil:
		s.Log.Warn("host request failed", "host_id", hostID, "verb", verb, "err", err)
		r.Error = "keel serve could not answer: " + err.Error()
	default:
		if r.Result, err = json.Marshal(result); err != nil {
			r.Error = err.Error()
		}
	}
	data, _ := json.Marshal(r)
	_ = m.Respond(data) // the host retries when the answer is lost
}

// Handle answers one request of verb from host hostID (sim: over the
// simulated hosts' subjects).
func (s *Service) Handle(ctx context.Context, hostID string, sim bool, verb string, data []byte) (any, error) {
	if sim && s.Keys != nil && s.Keys.Own(hostID) {
		s.Log.Warn("refused: a simulated fleet spoke for a host with credentials of its own", "host_id", hostID, "verb", verb)
		return nil, refusef("host %s has credentials of its own; simulated fleets may not speak for it", hostID)
	}
	if verb == VerbRegister {
		var info agent.HostInfo
		if err := json.Unmarshal(data, &info); err != nil {
			return nil, refusef("malformed registration: %v", err)
		}
		if sim && info.Driver != "fake" {
			s.Log.Warn("refused: a simulated fleet registered a host with a real driver", "host", info.Name, "driver", info.Driver)
			return nil, refusef("simulated fleets register simulated hosts only (driver fake); a compute node needs credentials of its own")
		}
		return nil, s.register(ctx, hostID, info)
	}
	name, err := s.hostName(ctx, hostID)
	if err != nil {
		return nil, err
	}
	switch verb {
	case VerbReport:
		var r agent.WorkReport
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, refusef("malformed report: %v", err)
		}
		return nil, s.report(ctx, name, r)
	case VerbServers:
		return s.servers(ctx, hostID, name)
	case VerbObserve:
		var o agent.Observation
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, refusef("malformed observation: %v", err)
		}
		return nil, s.observe(ctx, name, o)
	case VerbUnknown:
		var u unknownRequest
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, refusef("malformed unknown-guests report: %v", err)
		}
		return nil, s.unknown(ctx, hostID, name, u)
	case VerbProgress, VerbDone:
		var r progressRequest
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, refusef("malformed progress: %v", err)
		}
		if verb == VerbProgress {
			r.Outcome = ""
		}
		return nil, s.progress(ctx, hostID, sim, r)
	case VerbParked:
		var r parkRequest
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, refusef("malformed parking: %v", err)
		}
		return nil, s.parked(ctx, name, r)
	case VerbImage:
		var r imageRequest
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, refusef("malformed image request: %v", err)
		}
		return s.image(ctx, hostID, name, r)
	default:
		return nil, refusef("unknown request %q", verb)
	}
}

// hostName is the name of the registered host hostID.
func (s *Service) hostName(ctx context.Context, hostID string) (string, error) {
	st, _, err := s.App.Hosts.Load(ctx, hostID)
	if err != nil {
		return "", err
	}
	if !st.Exists {
		return "", refusef("host %s is not registered", hostID)
	}
	return st.Spec.Name, nil
}

func actor(name string) domain.Actor { return domain.Actor{User: "host:" + name} }

func (s *Service) register(ctx context.Context, hostID string, h agent.HostInfo) error {
	if commands.HostID(h.Name) != hostID {
		s.Log.Warn("refused: a host registered under another host's name", "host_id", hostID, "name", h.Name)
		return refusef("these credentials are not host %q's", h.Name)
	}
	spec := hostdomain.Spec{Name: h.Name, Driver: h.Driver, Hypervisor: h.Hypervisor, CPUModel: h.CPUModel, CPUFeatures: h.CPUFeatures,
		VCPUs: h.VCPUs, RAMMiB: h.RAMMiB, DiskGiB: h.DiskGiB, Traits: h.Traits}
	meta := commands.Meta{CommandID: commands.DeriveID("register", h.Name, fmt.Sprint(spec)), Actor: actor(h.Name)}
	_, err := s.App.Hosts.Handle(ctx, hostID, hostdomain.Register{ID: hostID, Spec: spec, Ratios: h.Ratios, At: time.Now().UTC()}, meta)
	if k := domain.KindOf(err); k == domain.Invalid || k == domain.Conflict {
		return refusef("%v", err)
	}
	return err
}

// onHost loads server id and refuses it unless it is placed on host name.
// The cached state serves when it says so (the decider checks the host
// again on the latest); a refusal is made on the latest state only.
func (s *Service) onHost(ctx context.Context, name, id, what string) (server.State, uint64, error) {
	st, v, err := s.App.Servers.Load(ctx, id)
	if err == nil && (!st.Exists || st.Host != name) {
		st, v, err = s.App.Servers.LoadLatest(ctx, id)
	}
	if err != nil {
		return st, v, err
	}
	if !st.Exists || st.Host != name {
		s.Log.Warn("refused: a host spoke of a server that is not on it", "host", name, "server", id, "request", what, "server_host", st.Host)
		return st, v, refusef("server %s is not on host %s", id, name)
	}
	return st, v, nil
}

func (s *Service) report(ctx context.Context, name string, r agent.WorkReport) error {
	st, _, err := s.App.Servers.Load(ctx, r.Server)
	gone := func() bool { return !st.Exists || st.Status == server.StatusDeleted }
	if err == nil && gone() { // the cache may be behind: ask the log
		st, _, err = s.App.Servers.LoadLatest(ctx, r.Server)
	}
	if err != nil {
		return err
	}
	if gone() {
		s.Log.Debug("report no longer applies: the server is gone", "host", name, "server", r.Server, "kind", r.Kind)
		return nil
	}
	if _, _, err := s.onHost(ctx, name, r.Server, "report "+string(r.Kind)); err != nil {
		return err
	}
	meta := commands.Meta{
		CommandID:     commands.DeriveID("report", fmt.Sprint(r.Seq), fmt.Sprint(r.Index)),
		Actor:         actor(name),
		CorrelationID: r.Correlation,
		CausationID:   r.Causation,
	}
	_, err = s.App.Servers.Handle(ctx, r.Server, server.Report{Host: name, Kind: r.Kind, Port: r.Port, Reason: r.Reason, Detail: r.Detail, At: time.Now().UTC()}, meta)
	switch domain.KindOf(err) {
	case domain.Conflict, domain.NotFound:
		s.Log.Debug("report no longer applies", "server", r.Server, "kind", r.Kind, "why", err)
		return nil
	case domain.Invalid:
		return refusef("%v", err)
	}
	return err
}

func (s *Service) servers(ctx context.Context, hostID, name string) (agent.Recorded, error) {
	hs, _, err := s.App.Hosts.LoadLatest(ctx, hostID)
	if err != nil {
		return agent.Recorded{}, err
	}
	rec := agent.Recorded{Servers: []agent.RecordedServer{}, UnknownGuests: hs.UnknownGuests}
	for id := range hs.Claims {
		st, v, err := s.App.Servers.LoadLatest(ctx, id)
		if err != nil {
			return agent.Recorded{}, err
		}
		if !st.Exists || st.Host != name {
			continue // claimed for a build still being placed, or moved on
		}
		rec.Servers = append(rec.Servers, agent.RecordedServer{ID: id, Version: v, Host: st.Host, Task: st.Task, Status: st.Status, Power: st.Power})
	}
	return rec, nil
}

func (s *Service) observe(ctx context.Context, name string, o agent.Observation) error {
	st, _, err := s.onHost(ctx, name, o.Server, "observe")
	if err != nil {
		return err
	}
	// One observation per recorded state: a retried sync sends the same
	// command, and a later drift gets an operation of its own.
	v := fmt.Sprint(o.Version)
	op := commands.DeriveID("observe", o.Server, v, "operation")
	meta := commands.Meta{CommandID: commands.DeriveID("observe", o.Server, v), Actor: actor(name), CorrelationID: op}
	cmd := server.Observe{Host: name, Power: o.Power, Missing: o.Missing, Operation: op, At: time.Now().UTC()}
	res, err := s.App.Servers.Handle(ctx, o.Server, cmd, meta)
	switch domain.KindOf(err) {
	case domain.Conflict, domain.NotFound:
		return nil // it moved on meanwhile
	case domain.Invalid:
		return refusef("%v", err)
	}
	if err != nil {
		return err
	}
	if res.State.Status != st.Status || res.State.Task != st.Task {
		observed := string(o.Power)
		if o.Missing {
			observed = "missing"
		}
		s.Log.Info("drift", "host", name, "server", o.Server, "recorded", st.Power, "observed", observed, "status", res.State.Status, "task", res.State.Task)
	}
	return nil
}

type unknownRequest struct {
	Guests   []string `json:"guests"`
	Recorded []string `json:"recorded"`
}

func (s *Service) unknown(ctx context.Context, hostID, name string, u unknownRequest) error {
	meta := commands.Meta{CommandID: commands.DeriveID("unknown-guests", hostID, strings.Join(u.Guests, "\x00"), strings.Join(u.Recorded, "\x00")),
		Actor: actor(name)}
	_, err := s.App.Hosts.Handle(ctx, hostID, hostdomain.ObserveUnknownGuests{Guests: u.Guests, At: time.Now().UTC()}, meta)
	switch domain.KindOf(err) {
	case domain.Conflict, domain.NotFound:
		return nil
	case domain.Invalid:
		return refusef("%v", err)
	}
	return err
}
