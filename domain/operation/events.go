package operation

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Event type names. Never rename or reuse one.
const (
	TypeBegan         = "operation.began"
	TypeStepStarted   = "operation.step_started"
	TypeStepSucceeded = "operation.step_succeeded"
	TypeStepFailed    = "operation.step_failed"
	TypeRewound       = "operation.rewound"
	TypeSucceeded     = "operation.succeeded"
	TypeFailed        = "operation.failed"
)

// Began records a new operation and its planned steps.
type Began struct {
	ID           ID         `json:"id"`
	Project      string     `json:"project_id,omitempty"`
	Kind         string     `json:"kind"`
	ResourceType string     `json:"resource_type"`
	ResourceID   string     `json:"resource_id"`
	Steps        []StepSpec `json:"steps"`
	At           time.Time  `json:"at"`
}

// StepStarted records that a step began and when it must be done by.
type StepStarted struct {
	Step     string    `json:"step"`
	Deadline time.Time `json:"deadline"`
	At       time.Time `json:"at"`
}

// StepSucceeded records a completed step.
type StepSucceeded struct {
	Step string    `json:"step"`
	At   time.Time `json:"at"`
}

// StepFailed records a failed or overdue step; compensation follows.
// Reason is in the user's words; Detail, when there is one, is the account
// behind it (a host's own message, with its paths), for admins.
type StepFailed struct {
	Step   string    `json:"step"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Rewound records that the running step failed in a way an earlier step can
// retry (a spawn that failed on one host goes back to scheduling): the steps
// from To on are pending again, and To starts in the same commit.
type Rewound struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"` // for admins, as in StepFailed
	At     time.Time `json:"at"`
}

// OperationSucceeded records that every step completed.
type OperationSucceeded struct {
	At time.Time `json:"at"`
}

// OperationFailed records the end of a failed operation, after compensation.
type OperationFailed struct {
	Reason      string    `json:"reason"`
	Detail      string    `json:"detail,omitempty"` // for admins, as in StepFailed
	Compensated []string  `json:"compensated,omitempty"`
	At          time.Time `json:"at"`
}

func (*Began) EventType() string              { return TypeBegan }
func (*StepStarted) EventType() string        { return TypeStepStarted }
func (*StepSucceeded) EventType() string      { return TypeStepSucceeded }
func (*StepFailed) EventType() string         { return TypeStepFailed }
func (*Rewound) EventType() string            { return TypeRewound }
func (*OperationSucceeded) EventType() string { return TypeSucceeded }
func (*OperationFailed) EventType() string    { return TypeFailed }

var registry = domain.Registry{
	TypeBegan:         func() domain.Event { return &Began{} },
	TypeStepStarted:   func() domain.Event { return &StepStarted{} },
	TypeStepSucceeded: func() domain.Event { return &StepSucceeded{} },
	TypeStepFailed:    func() domain.Event { return &StepFailed{} },
	TypeRewound:       func() domain.Event { return &Rewound{} },
	TypeSucceeded:     func() domain.Event { return &OperationSucceeded{} },
	TypeFailed:        func() domain.Event { return &OperationFailed{} },
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Began:
		s = State{ID: e.ID, Exists: true, Kind: e.Kind, ResourceType: e.ResourceType,
			ResourceID: e.ResourceID, Project: e.Project, Status: Running, Current: -1, StartedAt: e.At}
		for _, sp := range e.Steps {
			s.Steps = append(s.Steps, Step{Name: sp.Name, Status: StepIsPending, Timeout: sp.Timeout})
		}
	case *StepStarted:
		i := s.index(e.Step)
		s.Steps = clone(s.Steps)
		s.Steps[i].Status, s.Steps[i].StartedAt, s.Steps[i].Deadline = StepIsRunning, e.At, e.Deadline
		s.Current = i
	case *StepSucceeded:
		i := s.index(e.Step)
		s.Steps = clone(s.Steps)
		s.Steps[i].Status, s.Steps[i].FinishedAt = StepIsSucceeded, e.At
		s.Current = -1
	case *StepFailed:
		i := s.index(e.Step)
		s.Steps = clone(s.Steps)
		s.Steps[i].Status, s.Steps[i].FinishedAt, s.Steps[i].Error, s.Steps[i].Detail = StepIsFailed, e.At, e.Reason, e.Detail
		s.Current, s.Status, s.Error, s.Detail = -1, Compensating, e.Reason, e.Detail
	case *Rewound:
		s.Steps = clone(s.Steps)
		for i := s.index(e.To); i >= 0 && i < len(s.Steps); i++ {
			st := &s.Steps[i]
			if i == s.index(e.From) {
				st.Error, st.Detail = e.Reason, e.Detail
			}
			st.Status, st.StartedAt, st.FinishedAt, st.Deadline = StepIsPending, time.Time{}, time.Time{}, time.Time{}
		}
		s.Current = -1
		s.Retries++
	case *OperationSucceeded:
		s.Status = Succeeded
	case *OperationFailed:
		s.Steps = clone(s.Steps)
		for i := range s.Steps {
			switch {
			case s.Steps[i].Status == StepIsPending:
				s.Steps[i].Status = StepIsSkipped
			case s.Steps[i].Status == StepIsSucceeded && contains(e.Compensated, s.Steps[i].Name):
				s.Steps[i].Status = StepIsCompensated
			}
		}
		s.Status, s.Error, s.Detail, s.Current = Failed, e.Reason, e.Detail, -1
	}
	return s
}

func (s State) index(step string) int {
	for i, st := range s.Steps {
		if st.Name == step {
			return i
		}
	}
	return -1
}

// clone copies the steps so that a cached state is never mutated in place.
func clone(steps []Step) []Step { return append([]Step(nil), steps...) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
