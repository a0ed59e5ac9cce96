// Package operation is the operation aggregate: the durable state of a saga
// (a multi-step operation such as building a server). It records the steps,
// which one runs, each step's deadline, the outcome and the error (in the
// user's words, with the detail behind it for admins). It decides
// only what the saga may do next; it never performs a step itself.
//
// Every operation ends in a terminal state: a failed or overdue step moves it
// to compensating, and the saga finishes it as failed once the completed steps
// have been undone.
package operation

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the operation stream subjects.
const AggregateType = "operation"

// ID identifies an operation (a UUID in canonical form).
type ID string

// Status of an operation.
type Status string

// Operation statuses; succeeded and failed are terminal.
const (
	Running      Status = "running"
	Compensating Status = "compensating"
	Succeeded    Status = "succeeded"
	Failed       Status = "failed"
)

// StepStatus of one step.
type StepStatus string

// Step statuses.
const (
	StepIsPending     StepStatus = "pending"
	StepIsRunning     StepStatus = "running"
	StepIsSucceeded   StepStatus = "succeeded"
	StepIsFailed      StepStatus = "failed"
	StepIsCompensated StepStatus = "compensated"
	StepIsSkipped     StepStatus = "skipped"
)

// StepSpec names a step and the time it may take.
type StepSpec struct {
	Name    string        `json:"name"`
	Timeout time.Duration `json:"timeout"`
}

// Step is one step's progress.
type Step struct {
	Name       string     `json:"name"`
	Status     StepStatus `json:"status"`
	Timeout    time.Duration
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Deadline   time.Time `json:"deadline,omitzero"`
	Error      string    `json:"error,omitempty"`
	// Detail is the account behind Error (a host's own message), for
	// admins; Error is in the user's words.
	Detail string `json:"detail,omitempty"`
}

// State is what the decider knows about one operation.
type State struct {
	ID           ID
	Exists       bool
	Project      string
	Kind         string
	ResourceType string
	ResourceID   string
	Status       Status
	Steps        []Step
	Current      int // index of the running step, or -1
	Error        string
	Detail       string    // the account behind Error, for admins
	Retries      int       // rewinds so far
	StartedAt    time.Time // when it began, for its duration
}

// Terminal reports whether the operation has ended.
func (s State) Terminal() bool { return s.Status == Succeeded || s.Status == Failed }

// CurrentStep returns the running step's name, or "".
func (s State) CurrentStep() string {
	if s.Current < 0 || s.Current >= len(s.Steps) {
		return ""
	}
	return s.Steps[s.Current].Name
}

// Decider is the operation aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:     AggregateType,
	Decide:   Decide,
	Evolve:   Evolve,
	Init:     func(id string) State { return State{ID: ID(id)} },
	Registry: registry,
}
