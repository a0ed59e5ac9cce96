// Package scheduler chooses hosts for a server: a pure function over a
// snapshot of the hosts (from the read model). Filters remove hosts that
// cannot take the server and say how many each removed; weighers rank the
// rest. The result is a ranked list of candidates, not a decision: the host
// aggregate checks capacity again when the claim is appended (the plan/apply
// split), and the saga moves to the next candidate when a claim is refused.
//
// It must not read clocks, sockets or the read model itself.
package scheduler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/domain/host"
)

// Host is one host as the scheduler sees it.
type Host struct {
	Name     string
	Enabled  bool // not disabled and not in maintenance
	Up       bool
	AZ       string
	Metadata map[string]string // merged metadata of the host aggregates it belongs to
	Traits   []string
	Limit    host.Resources // capacity × overcommit ratios
	Used     host.Resources
}

// Free is what is left on the host.
func (h Host) Free() host.Resources { return h.Limit.Sub(h.Used) }

// Group policies.
const (
	Affinity         = "affinity"
	AntiAffinity     = "anti-affinity"
	SoftAffinity     = "soft-affinity"
	SoftAntiAffinity = "soft-anti-affinity"
)

// Group is the server group a request belongs to.
type Group struct {
	Policy     string
	MaxPerHost int            // 0: no limit (hard anti-affinity implies 1)
	Members    map[string]int // host name -> members already there
}

// Request is what one server needs.
type Request struct {
	Resources  host.Resources
	ImageMin   host.Resources    // image minimum RAM and disk
	AZ         string            // availability zone, "" for any
	ExtraSpecs map[string]string // flavor extra specs: "trait:NAME"="required"|"forbidden", "aggregate:KEY"=VALUE
	Group      *Group
	TargetHost string   // admins only: this host or nothing
	Exclude    []string // hosts where this build already failed
	Refused    []string // hosts that refused a claim for this request since the snapshot was taken
}

// Weights are the weigher multipliers: positive spreads (prefers free
// capacity), negative packs.
type Weights struct {
	RAM   float64
	CPU   float64
	Group float64 // soft (anti-)affinity
}

// DefaultWeights spread on RAM first, then CPU.
var DefaultWeights = Weights{RAM: 1.0, CPU: 0.5, Group: 10}

// Candidate is a host that can take the server, with its score.
type Candidate struct {
	Host  string
	Score float64
}

// Removal says how many hosts a filter removed.
type Removal struct {
	Filter  string
	Removed int
}

// Result is the ranked candidates and what the filters did.
type Result struct {
	Hosts      int
	Candidates []Candidate
	Removals   []Removal
}

// Explain says why no host fits, filter by filter.
func (r Result) Explain() string {
	parts := []string{}
	for _, rm := range r.Removals {
		if rm.Removed > 0 {
			parts = append(parts, fmt.Sprintf("%s removed %d", rm.Filter, rm.Removed))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("no valid host: %d hosts", r.Hosts)
	}
	return fmt.Sprintf("no valid host: %d hosts; %s", r.Hosts, strings.Join(parts, ", "))
}

// filter keeps the hosts a request may use.
type filter struct {
	name string
	keep func(h *Host, r *Request) bool
}

var filters = []filter{
	{"target_host", func(h *Host, r *Request) bool { return r.TargetHost == "" || h.Name == r.TargetHost }},
	{"retry", func(h *Host, r *Request) bool { return !slices.Contains(r.Exclude, h.Name) }},
	{"enabled", func(h *Host, _ *Request) bool { return h.Enabled }},
	{"up", func(h *Host, _ *Request) bool { return h.Up }},
	{"availability_zone", func(h *Host, r *Request) bool { return r.AZ == "" || h.AZ == r.AZ }},
	{"image", func(_ *Host, r *Request) bool {
		return r.Resources.RAMMiB >= r.ImageMin.RAMMiB && (r.Resources.DiskGiB == 0 || r.Resources.DiskGiB >= r.ImageMin.DiskGiB)
	}},
	{"capacity", func(h *Host, r *Request) bool { return r.Resources.Fits(h.Free()) }},
	{"claim_refused", func(h *Host, r *Request) bool { return !slices.Contains(r.Refused, h.Name) }},
	{"aggregate_extra_specs", aggregateSpecs},
	{"traits", traits},
	{"server_group", groupPolicy},
}

func aggregateSpecs(h *Host, r *Request) bool {
	for k, v := range r.ExtraSpecs {
		if key, ok := strings.CutPrefix(k, "aggregate:"); ok && h.Metadata[key] != v {
			return false
		}
	}
	return true
}

func traits(h *Host, r *Request) bool {
	for k, v := range r.ExtraSpecs {
		t, ok := strings.CutPrefix(k, "trait:")
		if !ok {
			continue
		}
		has := slices.Contains(h.Traits, t)
		if (v == "required" && !has) || (v == "forbidden" && has) {
			return false
		}
	}
	return true
}

func groupPolicy(h *Host, r *Request) bool {
	g := r.Group
	if g == nil {
		return true
	}
	here := g.Members[h.Name]
	if g.MaxPerHost > 0 && here >= g.MaxPerHost {
		return false
	}
	switch g.Policy {
	case AntiAffinity:
		return here == 0
	case Affinity:
		return here > 0 || total(g.Members) == 0
	}
	return true
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Schedule filters and ranks the hosts for one request.
func Schedule(hosts []Host, r Request, w Weights) Result {
	res := Result{Hosts: len(hosts)}
	left := make([]int, len(hosts))
	for i := range left {
		left[i] = i
	}
	for _, f := range filters {
		kept := left[:0]
		for _, i := range left {
			if f.keep(&hosts[i], &r) {
				kept = append(kept, i)
			}
		}
		res.Removals = append(res.Removals, Removal{Filter: f.name, Removed: len(left) - len(kept)})
		left = kept
	}
	res.Candidates = rank(hosts, left, r, w)
	return res
}

// rank scores hosts: each weigher is normalised to 0..1 over the candidates,
// then multiplied by its weight; ties break on the name for stable results.
func rank(hosts []Host, idx []int, r Request, w Weights) []Candidate {
	ram := normalise(hosts, idx, func(h *Host) float64 { return float64(h.Limit.RAMMiB - h.Used.RAMMiB - r.Resources.RAMMiB) })
	cpu := normalise(hosts, idx, func(h *Host) float64 { return float64(h.Limit.VCPUs - h.Used.VCPUs - r.Resources.VCPUs) })
	grp := normalise(hosts, idx, func(h *Host) float64 { return groupWeight(h, r.Group) })
	out := make([]Candidate, len(idx))
	for k, i := range idx {
		out[k] = Candidate{Host: hosts[i].Name, Score: w.RAM*ram[k] + w.CPU*cpu[k] + w.Group*grp[k]}
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.Host, b.Host)
	})
	return out
}

func groupWeight(h *Host, g *Group) float64 {
	if g == nil {
		return 0
	}
	switch g.Policy {
	case SoftAntiAffinity:
		return -float64(g.Members[h.Name])
	case SoftAffinity:
		return float64(g.Members[h.Name])
	}
	return 0
}

func normalise(hosts []Host, idx []int, f func(*Host) float64) []float64 {
	out := make([]float64, len(idx))
	if len(idx) == 0 {
		return out
	}
	lo, hi := f(&hosts[idx[0]]), f(&hosts[idx[0]])
	for k, i := range idx {
		out[k] = f(&hosts[i])
		lo, hi = min(lo, out[k]), max(hi, out[k])
	}
	for i := range out {
		if hi > lo {
			out[i] = (out[i] - lo) / (hi - lo)
		} else {
			out[i] = 0
		}
	}
	return out
}
