package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// postmaster is the pid of our Postgres server (0: unknown).
var postmaster int

// postgresCPU returns the CPU time used so far by our Postgres server and
// its running children (from /proc; clock ticks assumed at 100 Hz, Linux's
// default). Backends that exited meanwhile are not counted.
func postgresCPU() time.Duration {
	if postmaster == 0 {
		return 0
	}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "postgres" {
			continue
		}
		f := strings.Fields(s[end+1:]) // f[0] is field 3 (state); ppid is 4, utime and stime are 14 and 15
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		if len(f) > 13 && (pid == postmaster || f[1] == strconv.Itoa(postmaster)) {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// activity samples what Postgres backends of the pool's database are busy
// with, every 20 ms until ctx ends: a poor man's profile of the read model.
func activity(ctx context.Context, pool *pgxpool.Pool) map[string]int {
	counts := map[string]int{}
	for ctx.Err() == nil {
		rows, err := pool.Query(ctx, `SELECT query FROM pg_stat_activity
			WHERE state = 'active' AND pid <> pg_backend_pid() AND datname = current_database()`)
		if err == nil {
			for rows.Next() {
				var q string
				if rows.Scan(&q) == nil {
					counts[shorten(q)]++
				}
			}
			rows.Close()
		}
		counts[""]++ // number of samples
		time.Sleep(20 * time.Millisecond)
	}
	return counts
}

func shorten(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 90 {
		q = q[:90] + "..."
	}
	return q
}

// topActivity describes the most frequent statements in the samples.
func topActivity(counts map[string]int, n int) string {
	samples := counts[""]
	type kv struct {
		q string
		c int
	}
	var all []kv
	for q, c := range counts {
		if q != "" {
			all = append(all, kv{q, c})
		}
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(b.c, a.c) })
	var b strings.Builder
	fmt.Fprintf(&b, "postgres backends busy, by statement (%d samples every 20 ms; average number of backends running it):", samples)
	for _, it := range all[:min(n, len(all))] {
		fmt.Fprintf(&b, "\n    %.2f  %s", float64(it.c)/float64(samples), it.q)
	}
	return b.String()
}

// findPostmaster reads the server's pid from its data directory.
func findPostmaster(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// otherLoad returns the load average and any test binaries running beside
// us: other busy processes on the machine skew the figures.
func otherLoad() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	out := "load average " + strings.Join(f[:min(3, len(f))], " ")
	paths, _ := filepath.Glob("/proc/[0-9]*/comm")
	var tests []string
	for _, p := range paths {
		if comm, err := os.ReadFile(p); err == nil && strings.HasSuffix(strings.TrimSpace(string(comm)), ".test") {
			tests = append(tests, strings.TrimSpace(string(comm)))
		}
	}
	if len(tests) > 0 {
		out += "; WARNING, other test binaries running: " + strings.Join(tests, " ")
	}
	return out
}
