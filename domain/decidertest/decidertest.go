// Package decidertest is the given/when/then harness of Keel's deciders:
// given the past events of an aggregate, when a command is decided, then
// these events follow, or the command is refused with an error of a kind
// whose message says why. Every aggregate's tests share it, so a case reads
// the same in each.
//
// It is for tests only and imports nothing outside the standard library
// and domain.
package decidertest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
)

// Outcome is the "then" of a case: events, or a refusal.
type Outcome struct {
	events []domain.Event
	kind   domain.ErrorKind
	msg    []string
}

// Then expects exactly these events.
func Then(evs ...domain.Event) Outcome { return Outcome{events: evs} }

// Refused expects a refusal of kind whose message contains every msg.
func Refused(kind domain.ErrorKind, msg ...string) Outcome { return Outcome{kind: kind, msg: msg} }

// Check compares what a decider returned with the outcome.
func (o Outcome) Check(t testing.TB, got []domain.Event, err error) {
	t.Helper()
	if o.kind != 0 {
		o.checkRefusal(t, got, err)
		return
	}
	if err != nil {
		t.Fatalf("refused: %v (kind %d)", err, domain.KindOf(err))
	}
	if !reflect.DeepEqual(got, o.events) {
		t.Fatalf("events\n got %s\nwant %s", Show(got), Show(o.events))
	}
}

func (o Outcome) checkRefusal(t testing.TB, got []domain.Event, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted with %s; want a refusal of kind %d mentioning %q", Show(got), o.kind, o.msg)
	}
	if k := domain.KindOf(err); k != o.kind {
		t.Fatalf("refused with kind %d (%v), want kind %d", k, err, o.kind)
	}
	for _, m := range o.msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("message %q does not mention %q", err, m)
		}
	}
	if got != nil {
		t.Errorf("a refusal returned events too: %s", Show(got))
	}
}

// Show prints events with their types, for failure messages.
func Show(evs []domain.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = fmt.Sprintf("%s%+v", ev.EventType(), ev)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Case is one given/when/then.
type Case[C any] struct {
	Name  string
	Given []domain.Event
	When  C
	Then  Outcome
}

// Run decides each case's command on the state its given events fold into
// (from d's initial state for id), as a subtest named after the case.
func Run[S, C any](t *testing.T, d domain.Decider[S, C], id string, cases []Case[C]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { Decide(t, d, id, c.Given, c.When, c.Then) })
	}
}

// Decide is one case: given events, when a command, then the outcome.
func Decide[S, C any](t testing.TB, d domain.Decider[S, C], id string, given []domain.Event, when C, then Outcome) {
	t.Helper()
	got, err := d.Decide(Fold(d, id, given), when)
	then.Check(t, got, err)
}

// Fold returns the state of aggregate id after events.
func Fold[S, C any](d domain.Decider[S, C], id string, events []domain.Event) S {
	return d.Fold(d.Initial(id), events)
}

// Plus returns base followed by more, leaving base untouched: histories are
// built from each other.
func Plus(base []domain.Event, more ...domain.Event) []domain.Event {
	return slices.Concat(base, more)
}

// Expect is the outcome of a table row written as (events, kind, message):
// a refusal of kind mentioning msg when kind is set, else exactly want.
func Expect(want []domain.Event, kind domain.ErrorKind, msg string) Outcome {
	if kind != 0 {
		return Refused(kind, msg)
	}
	return Then(want...)
}
