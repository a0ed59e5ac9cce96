package operation

import (
	"fmt"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Command is one of the commands below.
type Command interface{ operationCommand() }

// Begin starts an operation and its first step.
type Begin struct {
	ID ID
	// Project owns the operation (the project of its resource).
	Project      string
	Kind         string
	ResourceType string
	ResourceID   string
	Steps        []StepSpec
	At           time.Time
}

// CompleteStep marks a running step done and starts the next, or ends the operation.
type CompleteStep struct {
	Step string
	At   time.Time
}

// FailStep marks a running step failed; the operation starts compensating.
type FailStep struct {
	Step   string
	Reason string // in the user's words
	Detail string // optional: the account behind the reason, for admins
	At     time.Time
}

// ExpireStep fails the running step if its deadline has passed at At.
type ExpireStep struct {
	Step string
	At   time.Time
}

// Finish ends a compensating operation as failed, naming the undone steps.
// On a running operation it fails the current step first (used when the
// operation is superseded, for example by a delete).
type Finish struct {
	Reason      string
	Detail      string // optional: the account behind the reason, for admins
	Compensated []string
	At          time.Time
}

func (Begin) operationCommand()        {}
func (CompleteStep) operationCommand() {}
func (FailStep) operationCommand()     {}
func (ExpireStep) operationCommand()   {}
func (Finish) operationCommand()       {}
func (Rewind) operationCommand()       {}

// Rewind goes back from the running step From to the earlier step To and
// starts it again (a build retried on another host).
type Rewind struct {
	From   string
	To     string
	Reason string
	Detail string // optional: the account behind the reason, for admins
	At     time.Time
}

// MaxDetail bounds a failure's detail: the host's report detail
// (server.MaxReportDetail) that the saga passes on.
const MaxDetail = 4096

// checkDetail refuses a detail longer than MaxDetail or with text that
// could not be printed safely (see domain.CheckText); empty is accepted.
func checkDetail(c Command) error {
	var d string
	switch c := c.(type) {
	case FailStep:
		d = c.Detail
	case Finish:
		d = c.Detail
	case Rewind:
		d = c.Detail
	}
	return domain.CheckTextUpTo("detail", d, MaxDetail)
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if b, ok := c.(Begin); ok {
		return decideBegin(s, b)
	}
	if err := checkDetail(c); err != nil {
		return nil, err
	}
	if !s.Exists {
		return nil, domain.NotFoundf("operation %s not found", s.ID)
	}
	if s.Terminal() {
		return nil, domain.Conflictf("operation %s has already %s", s.ID, s.Status)
	}
	switch c := c.(type) {
	case CompleteStep:
		if err := s.mustRun(c.Step); err != nil {
			return nil, err
		}
		evs := []domain.Event{&StepSucceeded{Step: c.Step, At: c.At}}
		return append(evs, s.next(s.index(c.Step)+1, c.At)...), nil
	case FailStep:
		if err := s.mustRun(c.Step); err != nil {
			return nil, err
		}
		return []domain.Event{&StepFailed{Step: c.Step, Reason: c.Reason, Detail: c.Detail, At: c.At}}, nil
	case ExpireStep:
		if err := s.mustRun(c.Step); err != nil {
			return nil, err
		}
		st := s.Steps[s.Current]
		if c.At.Before(st.Deadline) {
			return nil, domain.Conflictf("step %s of operation %s is not overdue until %s", c.Step, s.ID, st.Deadline.Format(time.RFC3339))
		}
		reason := fmt.Sprintf("step %s did not finish within %s", c.Step, st.Timeout)
		return []domain.Event{&StepFailed{Step: c.Step, Reason: reason, At: c.At}}, nil
	case Rewind:
		if err := s.mustRun(c.From); err != nil {
			return nil, err
		}
		to := s.index(c.To)
		if to < 0 || to > s.Current {
			return nil, domain.Invalidf("operation %s cannot rewind from %s to %q", s.ID, c.From, c.To)
		}
		st := s.Steps[to]
		return []domain.Event{&Rewound{From: c.From, To: c.To, Reason: c.Reason, Detail: c.Detail, At: c.At},
			&StepStarted{Step: c.To, Deadline: c.At.Add(st.Timeout), At: c.At}}, nil
	case Finish:
		var evs []domain.Event
		reason, detail := c.Reason, c.Detail
		if s.Status == Running {
			if s.Current >= 0 {
				evs = append(evs, &StepFailed{Step: s.CurrentStep(), Reason: c.Reason, Detail: c.Detail, At: c.At})
			}
		} else if s.Error != "" {
			// The first error stands, and its detail goes with it.
			reason, detail = s.Error, s.Detail
		}
		return append(evs, &OperationFailed{Reason: reason, Detail: detail, Compensated: c.Compensated, At: c.At}), nil
	default:
		return nil, domain.Invalidf("operation: unknown command %T", c)
	}
}

func decideBegin(s State, c Begin) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("operation %s already exists", s.ID)
	}
	if len(c.Steps) == 0 {
		return nil, domain.Invalidf("operation %s has no steps", c.ID)
	}
	seen := map[string]bool{}
	for _, st := range c.Steps {
		switch {
		case st.Name == "":
			return nil, domain.Invalidf("operation %s has a step without a name", c.ID)
		case seen[st.Name]:
			return nil, domain.Invalidf("operation %s names step %q twice", c.ID, st.Name)
		case st.Timeout <= 0:
			return nil, domain.Invalidf("step %s of operation %s needs a positive timeout", st.Name, c.ID)
		}
		seen[st.Name] = true
	}
	evs := []domain.Event{&Began{ID: c.ID, Project: c.Project, Kind: c.Kind, ResourceType: c.ResourceType,
		ResourceID: c.ResourceID, Steps: c.Steps, At: c.At}}
	first := c.Steps[0]
	return append(evs, &StepStarted{Step: first.Name, Deadline: c.At.Add(first.Timeout), At: c.At}), nil
}

func (s State) mustRun(step string) error {
	if s.Status != Running || s.CurrentStep() != step {
		return domain.Conflictf("step %s of operation %s is not running (operation %s, current step %q)", step, s.ID, s.Status, s.CurrentStep())
	}
	return nil
}

// next starts step i, or ends the operation when there is none.
func (s State) next(i int, at time.Time) []domain.Event {
	if i >= len(s.Steps) {
		return []domain.Event{&OperationSucceeded{At: at}}
	}
	st := s.Steps[i]
	return []domain.Event{&StepStarted{Step: st.Name, Deadline: at.Add(st.Timeout), At: at}}
}
