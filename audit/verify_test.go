package audit_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keel-cloud/keel/audit"
)

// chain makes n chained rows as the writer would.
func chain(t testing.TB, n int) []audit.Row {
	t.Helper()
	var rows []audit.Row
	var prev []byte
	at := time.Date(2026, 1, 2, 3, 4, 5, 123000, time.UTC)
	for i := 1; i <= n; i++ {
		rec := audit.Record{ID: fmt.Sprintf("r%d", i), At: at.Add(time.Duration(i) * time.Second), Project: "p", Operation: "create-server",
			Method: "POST", Path: "/v1/servers", Outcome: audit.Success, Status: 202, Target: audit.Target{Type: "servers"}}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(i)
		h := audit.Hash(prev, b, seq)
		rows = append(rows, audit.Row{Seq: seq, ID: rec.ID, At: rec.At, Project: "p", Operation: rec.Operation, Outcome: rec.Outcome,
			Record: b, PrevHash: prev, Hash: h})
		prev = h
	}
	return rows
}

func verify(rows []audit.Row) audit.Result {
	var v audit.Verifier
	for _, r := range rows {
		v.Add(r)
	}
	return v.Result()
}

func TestVerifierNamesTheFirstBrokenRecord(t *testing.T) {
	cases := []struct {
		name   string
		tamper func([]audit.Row) []audit.Row
		seq    uint64
		kind   string
	}{
		{"intact", func(r []audit.Row) []audit.Row { return r }, 0, ""},
		{"a record changed", func(r []audit.Row) []audit.Row {
			r[4].Record = []byte(string(r[4].Record[:len(r[4].Record)-1]) + ` }`)
			return r
		}, 5, audit.Changed},
		{"a record and its hash changed", func(r []audit.Row) []audit.Row {
			r[4].Record = append([]byte(nil), r[2].Record...)
			r[4].Hash = audit.Hash(r[4].PrevHash, r[4].Record, 5)
			return r
		}, 5, audit.Changed}, // its column id no longer matches; and seq 6's link breaks
		{"a column changed", func(r []audit.Row) []audit.Row { r[6].Project = "other"; return r }, 7, audit.Changed},
		{"a middle record removed", func(r []audit.Row) []audit.Row { return append(r[:3:3], r[4:]...) }, 4, audit.Missing},
		{"the first record removed", func(r []audit.Row) []audit.Row { return r[1:] }, 1, audit.Missing},
		{"two records swapped", func(r []audit.Row) []audit.Row {
			r[2].Record, r[7].Record = r[7].Record, r[2].Record
			r[2].ID, r[7].ID = r[7].ID, r[2].ID
			return r
		}, 3, audit.Reordered},
		{"two whole rows swapped", func(r []audit.Row) []audit.Row {
			a, b := r[2], r[7]
			a.Seq, b.Seq = 8, 3
			r[2], r[7] = b, a
			return r
		}, 3, audit.Reordered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := verify(c.tamper(chain(t, 10)))
			if c.kind == "" {
				if !res.OK() || res.Records != 10 || res.Last != 10 {
					t.Fatalf("intact chain: %+v", res)
				}
				return
			}
			if res.OK() {
				t.Fatalf("tampered chain verified")
			}
			if res.First.Seq != c.seq || res.First.Kind != c.kind {
				t.Fatalf("first problem %s, want seq %d %s", res.First, c.seq, c.kind)
			}
		})
	}
}
