// Package fake is a simulated hypervisor: hosts that hold servers in memory,
// optionally kept in a file so that they survive a restart as a real
// hypervisor's domains do, with knobs for latency and failures. It implements the same agent.Driver
// port as the libvirt driver, so the control plane cannot tell them apart.
// It is for make run, tests and simulations, never for real workloads.
package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
)

// Knobs tune a simulated host.
type Knobs struct {
	// Latency is how long each call takes.
	Latency time.Duration
	// FailRate is the probability (0..1) that a spawn fails.
	FailRate float64
	// HangRate is the probability (0..1) that a spawn never answers,
	// which exercises the saga's deadlines.
	HangRate float64
	// FailNICs makes every AttachNIC and DetachNIC that would change
	// something fail.
	FailNICs bool
}

// Host is one simulated hypervisor.
type Host struct {
	Name  string
	knobs Knobs

	mu      sync.Mutex
	servers map[string]string // id -> RUNNING | SHUTOFF
	// firstBoot is what the last spawn of each server was given to put in
	// the guest (keys, password, user data), in memory only, for tests.
	firstBoot map[string]agent.ServerSpec
	// nics are each server's NICs, in memory only.
	nics map[string][]agent.NIC
	rng  *rand.Rand
	file string // where the servers are kept; "" keeps them in memory only
}

// NewHost returns an empty simulated host.
func NewHost(name string, k Knobs, seed uint64) *Host {
	return &Host{Name: name, knobs: k, servers: map[string]string{}, firstBoot: map[string]agent.ServerSpec{}, nics: map[string][]agent.NIC{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetKnobs changes latency and failure rates at run time.
func (h *Host) SetKnobs(k Knobs) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.knobs = k
}

func (h *Host) roll() (fail, hang bool, latency time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rng.Float64()
	return r < h.knobs.FailRate, r >= h.knobs.FailRate && r < h.knobs.FailRate+h.knobs.HangRate, h.knobs.Latency
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Spawn implements agent.Driver.
func (h *Host) Spawn(ctx context.Context, s agent.ServerSpec) error {
	fail, hang, lat := h.roll()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := wait(ctx, lat); err != nil {
		return err
	}
	if fail {
		return agent.Failf(fmt.Errorf("spawn %s on %s: %w", s.ID, h.Name, agent.ErrInjected), "injected failure on simulated host %s", h.Name)
	}
	h.mu.Lock()
	h.firstBoot[s.ID] = s
	if _, ok := h.servers[s.ID]; !ok {
		h.nics[s.ID] = slices.Clone(s.NICs)
	}
	h.mu.Unlock()
	return h.set(s.ID, "RUNNING")
}

// Spawned returns the spec the last spawn of server id on this host was
// given, as a real driver would have written it into the guest's seed.
func (h *Host) Spawned(id string) (agent.ServerSpec, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.firstBoot[id]
	return s, ok
}

// PowerOn implements agent.Driver.
func (h *Host) PowerOn(ctx context.Context, id string) error { return h.power(ctx, id, "RUNNING") }

// PowerOff implements agent.Driver.
func (h *Host) PowerOff(ctx context.Context, id string) error { return h.power(ctx, id, "SHUTOFF") }

// Reboot implements agent.Driver.
func (h *Host) Reboot(ctx context.Context, id string, hard bool) error {
	return h.power(ctx, id, "RUNNING")
}

// Destroy implements agent.Driver.
func (h *Host) Destroy(ctx context.Context, id string) error {
	_, _, lat := h.roll()
	if err := wait(ctx, lat); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, ok := h.servers[id]
	if !ok {
		return nil
	}
	delete(h.servers, id)
	delete(h.nics, id)
	if err := h.save(); err != nil {
		// Not destroyed until recorded: a retry destroys it again rather
		// than find it gone and report a destroy that was never saved.
		h.servers[id] = prev
		return err
	}
	return nil
}

// AttachNIC implements agent.Driver: the NIC is recorded on the server.
func (h *Host) AttachNIC(ctx context.Context, id string, n agent.NIC) error {
	return h.changeNICs(ctx, id, func(nics []agent.NIC) []agent.NIC {
		if slices.ContainsFunc(nics, func(o agent.NIC) bool { return o.MAC == n.MAC }) {
			return nics
		}
		return append(slices.Clone(nics), n)
	})
}

// DetachNIC implements agent.Driver: the NIC is forgotten.
func (h *Host) DetachNIC(ctx context.Context, id string, n agent.NIC) error {
	return h.changeNICs(ctx, id, func(nics []agent.NIC) []agent.NIC {
		return slices.DeleteFunc(slices.Clone(nics), func(o agent.NIC) bool { return o.MAC == n.MAC })
	})
}

func (h *Host) changeNICs(ctx context.Context, id string, change func([]agent.NIC) []agent.NIC) error {
	_, _, lat := h.roll()
	if err := wait(ctx, lat); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.servers[id]; !ok {
		return fmt.Errorf("server %s on host %s: %w", id, h.Name, agent.ErrNoServer)
	}
	nics := change(h.nics[id])
	if h.knobs.FailNICs && !slices.Equal(nics, h.nics[id]) {
		return agent.Failf(fmt.Errorf("NIC of server %s on %s: %w", id, h.Name, agent.ErrInjected), "injected NIC failure on simulated host %s", h.Name)
	}
	h.nics[id] = nics
	return nil
}

// NICs implements agent.NICLister.
func (h *Host) NICs(ctx context.Context, id string) ([]agent.NIC, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.servers[id]; !ok {
		return nil, fmt.Errorf("server %s on host %s: %w", id, h.Name, agent.ErrNoServer)
	}
	return slices.Clone(h.nics[id]), nil
}

func (h *Host) power(ctx context.Context, id, state string) error {
	_, _, lat := h.roll()
	if err := wait(ctx, lat); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.servers[id]; !ok {
		return fmt.Errorf("server %s on host %s: %w", id, h.Name, agent.ErrNoServer)
	}
	h.servers[id] = state
	return h.save()
}

func (h *Host) set(id, state string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.servers[id] = state
	return h.save()
}

// Persist keeps the host's servers in a file under dir (created if
// missing), loading what an earlier run left there, so that a restart of
// the process finds them as a real hypervisor would.
func (h *Host) Persist(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("simulated host %s: %w", h.Name, err)
	}
	file := filepath.Join(dir, h.Name+".json")
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = []byte("{}")
	case err != nil:
		return fmt.Errorf("simulated host %s: %w", h.Name, err)
	}
	servers := map[string]string{}
	if err := json.Unmarshal(data, &servers); err != nil {
		return fmt.Errorf("simulated host %s: read %s: %w", h.Name, file, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.servers, h.file = servers, file
	return nil
}

// save writes the servers to the host's file (atomically, by rename);
// h.mu is held.
func (h *Host) save() error {
	if h.file == "" {
		return nil
	}
	data, err := json.Marshal(h.servers)
	if err != nil {
		return err
	}
	tmp := h.file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("simulated host %s: save: %w", h.Name, err)
	}
	if err := os.Rename(tmp, h.file); err != nil {
		return fmt.Errorf("simulated host %s: save: %w", h.Name, err)
	}
	return nil
}

// Force sets a guest's power as someone acting on the hypervisor behind
// Keel's back would (a guest that shuts itself down, an operator's virsh
// destroy); the guest is created if missing.
func (h *Host) Force(id, power string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.servers[id] = power
	_ = h.save()
}

// Forget removes a guest behind Keel's back.
func (h *Host) Forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.servers, id)
	_ = h.save()
}

// Observe implements agent.Driver.
func (h *Host) Observe(ctx context.Context) ([]agent.Observed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]agent.Observed, 0, len(h.servers))
	for id, power := range h.servers {
		out = append(out, agent.Observed{ID: id, Name: id, Power: agent.Power(power)})
	}
	return out, nil
}

// Servers returns a copy of the servers the host holds and their power.
func (h *Host) Servers() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.servers))
	for k, v := range h.servers {
		out[k] = v
	}
	return out
}

// Fleet makes n simulated hosts named prefix-1..prefix-n.
func Fleet(prefix string, n int, k Knobs, vcpus, ramMiB, diskGiB int) ([]agent.Host, []*Host) {
	hosts := make([]agent.Host, 0, n)
	sims := make([]*Host, 0, n)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		h := NewHost(name, k, uint64(i))
		sims = append(sims, h)
		hosts = append(hosts, agent.Host{
			Info:   agent.HostInfo{Name: name, Driver: "fake", VCPUs: vcpus, RAMMiB: ramMiB, DiskGiB: diskGiB},
			Driver: h,
		})
	}
	return hosts, sims
}

// PersistFleet keeps the servers of every host in files under dir.
func PersistFleet(sims []*Host, dir string) error {
	for _, h := range sims {
		if err := h.Persist(dir); err != nil {
			return err
		}
	}
	return nil
}
