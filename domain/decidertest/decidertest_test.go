package decidertest

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/keel-cloud/keel/domain"
)

type happened struct{ What string }

func (*happened) EventType() string { return "test.happened" }

// tb records failures instead of failing the test around it.
type tb struct {
	testing.TB
	failed []string
}

func (r *tb) Helper() {}
func (r *tb) Errorf(f string, a ...any) {
	r.failed = append(r.failed, fmt.Sprintf(f, a...))
}
func (r *tb) Fatalf(f string, a ...any) {
	r.failed = append(r.failed, fmt.Sprintf(f, a...))
	runtime.Goexit()
}

// check runs Check in a goroutine of its own (Fatalf ends it) and reports
// whether it failed.
func check(o Outcome, got []domain.Event, err error) bool {
	r := &tb{}
	done := make(chan struct{})
	go func() { defer close(done); o.Check(r, got, err) }()
	<-done
	return len(r.failed) > 0
}

// The harness fails exactly when the decider's answer differs from the
// case's outcome, so a table built on it cannot pass by accident.
func TestCheckFailsOnEveryMismatch(t *testing.T) {
	ev := &happened{What: "a"}
	invalid := domain.Invalidf("name must not be empty")
	for _, c := range []struct {
		name  string
		o     Outcome
		got   []domain.Event
		err   error
		fails bool
	}{
		{"same events", Then(ev), []domain.Event{&happened{What: "a"}}, nil, false},
		{"other events", Then(ev), []domain.Event{&happened{What: "b"}}, nil, true},
		{"no events wanted, some decided", Then(), []domain.Event{ev}, nil, true},
		{"events wanted, refused", Then(ev), nil, invalid, true},
		{"refusal as wanted", Refused(domain.Invalid, "must not be empty"), nil, invalid, false},
		{"refusal of another kind", Refused(domain.Conflict, "must not be empty"), nil, invalid, true},
		{"refusal without the message", Refused(domain.Invalid, "too long"), nil, invalid, true},
		{"refusal wanted, accepted", Refused(domain.Invalid), []domain.Event{ev}, nil, true},
		{"refusal with events too", Refused(domain.Invalid), []domain.Event{ev}, invalid, true},
		{"not a domain error", Refused(domain.Invalid), nil, errors.New("boom"), true},
	} {
		if got := check(c.o, c.got, c.err); got != c.fails {
			t.Errorf("%s: failed=%v, want %v", c.name, got, c.fails)
		}
	}
}
