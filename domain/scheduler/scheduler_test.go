package scheduler_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/scheduler"
)

func fleet(n int) []scheduler.Host {
	hs := make([]scheduler.Host, n)
	for i := range hs {
		hs[i] = scheduler.Host{Name: fmt.Sprintf("h%d", i), Enabled: true, Up: true, AZ: "az1",
			Limit: host.Resources{VCPUs: 64, RAMMiB: 16384, DiskGiB: 100}}
	}
	return hs
}

var small = host.Resources{VCPUs: 2, RAMMiB: 2048, DiskGiB: 10}

func names(cs []scheduler.Candidate) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Host)
	}
	return strings.Join(out, ",")
}

func TestFiltersRemoveHostsAndSayWhy(t *testing.T) {
	hs := fleet(8)
	hs[0].Enabled = false
	hs[1].Up = false
	hs[2].AZ = "az2"
	hs[3].Used = host.Resources{RAMMiB: 15000}
	hs[4].Traits = []string{"gpu"}
	hs[5].Metadata = map[string]string{"ssd": "true"}
	req := scheduler.Request{Resources: small, AZ: "az1"}
	res := scheduler.Schedule(hs, req, scheduler.DefaultWeights)
	if got := names(res.Candidates); strings.Contains(got, "h0") || strings.Contains(got, "h1") || strings.Contains(got, "h2") || strings.Contains(got, "h3") {
		t.Fatalf("candidates %s include filtered hosts", got)
	}
	if len(res.Candidates) != 4 {
		t.Fatalf("want 4 candidates, got %s", names(res.Candidates))
	}
	req.ExtraSpecs = map[string]string{"trait:gpu": "required"}
	if got := names(scheduler.Schedule(hs, req, scheduler.DefaultWeights).Candidates); got != "h4" {
		t.Fatalf("gpu trait: %s", got)
	}
	req.ExtraSpecs = map[string]string{"aggregate:ssd": "true"}
	if got := names(scheduler.Schedule(hs, req, scheduler.DefaultWeights).Candidates); got != "h5" {
		t.Fatalf("aggregate metadata: %s", got)
	}
	req.ExtraSpecs = map[string]string{"trait:gpu": "forbidden"}
	if got := names(scheduler.Schedule(hs, req, scheduler.DefaultWeights).Candidates); strings.Contains(got, "h4") {
		t.Fatalf("forbidden trait: %s", got)
	}
	big := scheduler.Request{Resources: host.Resources{RAMMiB: 20000}}
	res = scheduler.Schedule(hs, big, scheduler.DefaultWeights)
	if len(res.Candidates) != 0 || res.Explain() != "no valid host: 8 hosts; enabled removed 1, up removed 1, capacity removed 6" {
		t.Fatalf("explain: %q", res.Explain())
	}
}

func TestTargetHostAndRetryExclusion(t *testing.T) {
	hs := fleet(3)
	if got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, TargetHost: "h2"}, scheduler.DefaultWeights).Candidates); got != "h2" {
		t.Fatalf("target: %s", got)
	}
	got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, Exclude: []string{"h0", "h1"}}, scheduler.DefaultWeights).Candidates)
	if got != "h2" {
		t.Fatalf("exclude: %s", got)
	}
}

func TestSpreadAndPack(t *testing.T) {
	hs := fleet(3)
	hs[0].Used = host.Resources{RAMMiB: 8000}
	hs[2].Used = host.Resources{RAMMiB: 4000}
	spread := names(scheduler.Schedule(hs, scheduler.Request{Resources: small}, scheduler.Weights{RAM: 1}).Candidates)
	pack := names(scheduler.Schedule(hs, scheduler.Request{Resources: small}, scheduler.Weights{RAM: -1}).Candidates)
	if spread != "h1,h2,h0" || pack != "h0,h2,h1" {
		t.Fatalf("spread %s, pack %s", spread, pack)
	}
}

func TestImageMinimums(t *testing.T) {
	res := scheduler.Schedule(fleet(2), scheduler.Request{Resources: small, ImageMin: host.Resources{RAMMiB: 4096}}, scheduler.DefaultWeights)
	if len(res.Candidates) != 0 || !strings.Contains(res.Explain(), "image removed 2") {
		t.Fatalf("image min RAM: %q", res.Explain())
	}
}

func TestServerGroupPolicies(t *testing.T) {
	hs := fleet(3)
	anti := &scheduler.Group{Policy: scheduler.AntiAffinity, Members: map[string]int{"h0": 1, "h1": 1}}
	if got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, Group: anti}, scheduler.DefaultWeights).Candidates); got != "h2" {
		t.Fatalf("anti-affinity: %s", got)
	}
	aff := &scheduler.Group{Policy: scheduler.Affinity, Members: map[string]int{"h1": 2}}
	if got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, Group: aff}, scheduler.DefaultWeights).Candidates); got != "h1" {
		t.Fatalf("affinity: %s", got)
	}
	empty := &scheduler.Group{Policy: scheduler.Affinity, Members: map[string]int{}}
	if n := len(scheduler.Schedule(hs, scheduler.Request{Resources: small, Group: empty}, scheduler.DefaultWeights).Candidates); n != 3 {
		t.Fatalf("affinity of an empty group allows every host, got %d", n)
	}
	soft := &scheduler.Group{Policy: scheduler.SoftAntiAffinity, Members: map[string]int{"h0": 3, "h1": 1}}
	if got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, Group: soft}, scheduler.DefaultWeights).Candidates); got != "h2,h1,h0" {
		t.Fatalf("soft anti-affinity: %s", got)
	}
	capped := &scheduler.Group{Policy: scheduler.SoftAffinity, MaxPerHost: 2, Members: map[string]int{"h0": 2, "h1": 1}}
	if got := names(scheduler.Schedule(hs, scheduler.Request{Resources: small, Group: capped}, scheduler.DefaultWeights).Candidates); got != "h1,h2" {
		t.Fatalf("max per host with soft affinity: %s", got)
	}
}

func BenchmarkSchedule(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		hs := fleet(n)
		for i := range hs {
			hs[i].Used = host.Resources{RAMMiB: (i * 37) % 16000}
		}
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for b.Loop() {
				scheduler.Schedule(hs, scheduler.Request{Resources: small}, scheduler.DefaultWeights)
			}
		})
	}
}
