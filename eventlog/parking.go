package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keel-cloud/keel/domain"
)

// ErrNotParked is what a ParkingLot returns for a subscription and sequence
// it holds no record of (compare with errors.Is).
var ErrNotParked = errors.New("no such parked commit")

// ErrInvalidCursor is what ParkingLot.List returns for a cursor it did not
// hand out.
var ErrInvalidCursor = errors.New("invalid cursor")

// ParkState is where a parked commit stands.
type ParkState string

// The states of a parked commit: parked until an operator asks for a retry;
// marked retry until the subscription's parking loop has run it again.
const (
	StateParked ParkState = "parked"
	StateRetry  ParkState = "retry"
)

// MaxReason bounds the length in bytes of ParkedCommit.Reason: the error
// text of a failing handler can be arbitrarily long.
const MaxReason = 1024

// ParkedCommit is a commit a subscription gave up on for now: its reaction
// failed MaxAttempts times over at least Parking.After, so it was
// acknowledged to let later commits of its key through. The record holds
// what an operator needs to judge it and what a retry needs to find the
// commit again (the subscription and the stream sequence).
type ParkedCommit struct {
	Subscription  string    `json:"subscription"`
	Sequence      uint64    `json:"sequence"`
	AggregateType string    `json:"aggregate_type"`
	AggregateID   string    `json:"aggregate_id"`
	Key           string    `json:"key"`
	Attempts      int       `json:"attempts"`
	Reason        string    `json:"reason"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	ParkedAt      time.Time `json:"parked_at"`
	State         ParkState `json:"state"`
}

// ParkingLot keeps parked commits, one per subscription and sequence. It is
// expected to stay small (a few records, each a reaction an operator must
// look at), so implementations may page over all of it in memory.
type ParkingLot interface {
	// Park creates the record of pc.Subscription and pc.Sequence, or
	// replaces it.
	Park(ctx context.Context, pc ParkedCommit) error
	// Get returns one record, or ErrNotParked.
	Get(ctx context.Context, subscription string, seq uint64) (ParkedCommit, error)
	// List returns up to limit records ordered by subscription then
	// sequence, only those of subscription unless it is "", starting after
	// the cursor after ("" from the start), and the cursor of the next page
	// ("" on the last).
	List(ctx context.Context, subscription, after string, limit int) ([]ParkedCommit, string, error)
	// Retry marks a record StateRetry, for its subscription's parking loop
	// to run again; ErrNotParked when there is none.
	Retry(ctx context.Context, subscription string, seq uint64) error
	// Remove deletes a record (skip, or a retry that succeeded);
	// ErrNotParked when there is none.
	Remove(ctx context.Context, subscription string, seq uint64) error
}

// CommitGetter reads one commit by stream sequence: what a retry of a parked
// commit needs (both logs' Get).
type CommitGetter interface {
	Get(ctx context.Context, seq uint64) (domain.Envelope, error)
}

// ParkCursor is the List cursor that follows the record of sub and seq.
func ParkCursor(sub string, seq uint64) string {
	return sub + "/" + strconv.FormatUint(seq, 10)
}

// parseCursor splits a cursor at its last '/', since names may hold one.
func parseCursor(c string) (string, uint64, error) {
	i := strings.LastIndexByte(c, '/')
	if i < 0 {
		return "", 0, fmt.Errorf("%w %q", ErrInvalidCursor, c)
	}
	seq, err := strconv.ParseUint(c[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w %q", ErrInvalidCursor, c)
	}
	return c[:i], seq, nil
}

func parkedBefore(a, b ParkedCommit) bool {
	if a.Subscription != b.Subscription {
		return a.Subscription < b.Subscription
	}
	return a.Sequence < b.Sequence
}

// PageParked is List over all the records of a lot, in any order: lots
// that hold their records as a flat set share it.
func PageParked(all []ParkedCommit, subscription, after string, limit int) ([]ParkedCommit, string, error) {
	var from ParkedCommit
	if after != "" {
		sub, seq, err := parseCursor(after)
		if err != nil {
			return nil, "", err
		}
		from = ParkedCommit{Subscription: sub, Sequence: seq}
	}
	if limit < 1 {
		limit = 50
	}
	var out []ParkedCommit
	for _, pc := range all {
		if (subscription == "" || pc.Subscription == subscription) && (after == "" || parkedBefore(from, pc)) {
			out = append(out, pc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return parkedBefore(out[i], out[j]) })
	if len(out) <= limit {
		return out, "", nil
	}
	last := out[limit-1]
	return out[:limit], ParkCursor(last.Subscription, last.Sequence), nil
}

// BoundReason cuts an error text to MaxReason bytes, on a rune boundary.
func BoundReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	cut := MaxReason - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// CountParked counts the records of lot by subscription, with every name
// of subs present (0 when it has none), so that a gauge drops back to 0.
func CountParked(ctx context.Context, lot ParkingLot, subs ...string) (map[string]int, error) {
	counts := map[string]int{}
	for _, s := range subs {
		counts[s] = 0
	}
	for after := ""; ; {
		page, next, err := lot.List(ctx, "", after, 1000)
		if err != nil {
			return nil, err
		}
		for _, pc := range page {
			counts[pc.Subscription]++
		}
		if next == "" {
			return counts, nil
		}
		after = next
	}
}
