package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// result is one figure of the summary.
type result struct {
	name  string
	value float64
	unit  string
	prec  int     // decimals printed
	ratio float64 // NaN when the figure has no baseline
}

type results struct{ items []result }

func (r *results) add(name string, value float64, unit string, prec int, ratio float64) {
	r.items = append(r.items, result{name: name, value: value, unit: unit, prec: prec, ratio: ratio})
	logf("%s = %s %s", name, strconv.FormatFloat(value, 'f', prec, 64), unit)
}

// get returns the value of a figure already measured, or NaN.
func (r *results) get(name string) float64 {
	for _, it := range r.items {
		if it.name == name {
			return it.value
		}
	}
	return math.NaN()
}

func (r *results) print(w io.Writer) {
	for _, it := range r.items {
		ratio := "-"
		if !math.IsNaN(it.ratio) && !math.IsInf(it.ratio, 0) {
			ratio = strconv.FormatFloat(it.ratio, 'f', 2, 64)
			if it.ratio > 0 && it.ratio < 0.01 {
				ratio = strconv.FormatFloat(it.ratio, 'g', 2, 64) // not 0.00
			}
		}
		fmt.Fprintf(w, "BENCH %s %s %s ratio=%s\n", it.name, strconv.FormatFloat(it.value, 'f', it.prec, 64), it.unit, ratio)
	}
}

// none is the ratio of a figure without a baseline.
var none = math.NaN()

// percentile returns the p-th percentile (0..100) of sorted values, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadStats is what a closed-loop load run measured.
type loadStats struct {
	ok, failed int64
	elapsed    time.Duration
	latencies  []time.Duration // of the measured successful calls
	firstErr   error
	cpu        string // CPU use during the measured window
}

func (s loadStats) rate() float64 { return float64(s.ok) / s.elapsed.Seconds() }

// merge adds the calls of another run of the same kind.
func (s loadStats) merge(o loadStats) loadStats {
	s.ok, s.failed, s.elapsed = s.ok+o.ok, s.failed+o.failed, s.elapsed+o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
	slices.Sort(s.latencies)
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
	s.cpu = "" // the rounds' own lines tell their CPU use
	return s
}

// load runs op in a closed loop on clients goroutines: warmup first (not
// counted), then dur measured. It counts calls that both start and end
// inside the measured window.
func load(ctx context.Context, clients int, warmup, dur time.Duration, op func(ctx context.Context, client int) error) loadStats {
	begin := time.Now().Add(warmup)
	end := begin.Add(dur)
	snap := make(chan cpuSnap, 1)
	go func() { time.Sleep(time.Until(begin)); snap <- snapCPU() }()
	parts := make([]loadStats, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); parts[c] = loadClient(ctx, c, begin, end, op) }()
	}
	wg.Wait()
	var st loadStats
	for _, p := range parts {
		st = st.merge(p)
	}
	st.elapsed, st.cpu = dur, (<-snap).cpuSince()
	return st
}

// loadClient is one client of load: it calls op until end.
func loadClient(ctx context.Context, c int, begin, end time.Time, op func(ctx context.Context, client int) error) loadStats {
	var st loadStats
	for ctx.Err() == nil && time.Now().Before(end) {
		t0 := time.Now()
		err := op(ctx, c)
		t1 := time.Now()
		switch {
		case t0.Before(begin) || t1.After(end):
		case err != nil:
			st.failed++
			if st.firstErr == nil {
				st.firstErr = err
			}
		default:
			st.ok++
			st.latencies = append(st.latencies, t1.Sub(t0))
		}
	}
	return st
}

func (s loadStats) String() string {
	out := fmt.Sprintf("%d ok, %d failed in %s (%.0f/s); latency p50 %.1f ms, p99 %.1f ms",
		s.ok, s.failed, s.elapsed, s.rate(), ms(percentile(s.latencies, 50)), ms(percentile(s.latencies, 99)))
	if s.cpu != "" {
		out += "; " + s.cpu
	}
	return out
}

// cpuSnap is a snapshot of the machine's CPU counters (/proc/stat) and of
// this process's CPU time, to tell CPU-bound from waiting.
type cpuSnap struct {
	at                  time.Time
	total, idle, iowait float64 // jiffies, all CPUs
	self, pg            time.Duration
}

func snapCPU() cpuSnap {
	s := cpuSnap{at: time.Now()}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				s.total += v
			}
			switch i {
			case 3:
				s.idle = v
			case 4:
				s.iowait = v
			}
		}
	}
	s.pg = postgresCPU()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// cpuSince describes the CPU use between s and now.
func (s cpuSnap) cpuSince() string {
	n := snapCPU()
	total := n.total - s.total
	if total <= 0 {
		return "CPU use unknown"
	}
	idle, iowait := (n.idle-s.idle)/total, (n.iowait-s.iowait)/total
	secs := n.at.Sub(s.at).Seconds()
	return fmt.Sprintf("machine CPU %.0f%% busy, %.0f%% idle, %.0f%% iowait (%d cores); keelbench process (Keel, NATS, clients) %.2f cores, postgres %.2f cores",
		100*(1-idle-iowait), 100*idle, 100*iowait, runtime.NumCPU(), (n.self-s.self).Seconds()/secs, (n.pg-s.pg).Seconds()/secs)
}
