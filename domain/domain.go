// Package domain holds what every aggregate shares: the event interface, the
// errors a decision can return, the generic decider and the event registry.
//
// Nothing in domain/ reads a clock, a socket or a random source: time and ids
// arrive inside commands, so every decision is a pure function and can be
// tested with given/when/then tables. domain/ imports only the standard
// library and github.com/google/uuid.
package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Event is a fact that happened to one aggregate. Its type name is lowercase,
// past tense, and never renamed or reused once it has been written.
type Event interface {
	EventType() string
}

// ErrorKind classifies a refused decision, so that adapters can map it to a
// status code without reading the message.
type ErrorKind int

// The kinds of refusal a decider can return.
const (
	// Invalid: the command itself is wrong (HTTP 422).
	Invalid ErrorKind = iota + 1
	// Conflict: the command does not apply to the current state (HTTP 409).
	Conflict
	// NotFound: the aggregate does not exist or was deleted (HTTP 404).
	NotFound
)

// Error is a refusal that is safe to show to users: its message says why.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Invalidf returns an Invalid refusal.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...)}
}

// Conflictf returns a Conflict refusal.
func Conflictf(format string, args ...any) error {
	return &Error{Kind: Conflict, Msg: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a NotFound refusal.
func NotFoundf(format string, args ...any) error {
	return &Error{Kind: NotFound, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of a domain refusal, or 0 when err is not one.
func KindOf(err error) ErrorKind {
	var de *Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return 0
}

// Decider is one aggregate's behaviour: a pure decision and a pure fold.
// S is the state and C the command type (an interface closed per package).
type Decider[S any, C any] struct {
	// Type is the aggregate type, used in subjects (keel.events.<Type>.<id>).
	Type string
	// Decide returns the events a command produces, or a refusal.
	Decide func(state S, cmd C) ([]Event, error)
	// Evolve folds one event into the state.
	Evolve func(state S, ev Event) S
	// Registry decodes stored events of this aggregate.
	Registry Registry
	// Init returns the state of an aggregate that has no commit yet, so
	// that refusals can name it. Nil means the zero state.
	Init func(id string) S
}

// Initial returns the state before the first commit of aggregate id.
func (d Decider[S, C]) Initial(id string) S {
	if d.Init != nil {
		return d.Init(id)
	}
	var zero S
	return zero
}

// Fold applies events to a state in order.
func (d Decider[S, C]) Fold(state S, events []Event) S {
	for _, ev := range events {
		state = d.Evolve(state, ev)
	}
	return state
}

// Registry maps event type names to constructors of their data, so stored
// events can be decoded. Events are pointers to structs everywhere, so a
// decoded event and a decided one match the same type switch. An unknown
// type is an error, never ignored.
type Registry map[string]func() Event

// ErrUnknownEvent is returned when a stored event type is not registered.
var ErrUnknownEvent = errors.New("unknown event type")

// Decode turns a stored event back into its typed value.
func (r Registry) Decode(typ string, data []byte) (Event, error) {
	mk, ok := r[typ]
	if !ok {
		return nil, fmt.Errorf("decode %q: %w", typ, ErrUnknownEvent)
	}
	ev := mk()
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode %q: %w", typ, err)
	}
	return ev, nil
}

// CheckName refuses names that are empty, longer than 255 bytes, not valid
// UTF-8, contain a character CheckText refuses, begin or end with white
// space, or parse as a UUID. Resources are addressed by id or name, so a
// UUID-shaped name could shadow, and delete, another resource.
func CheckName(field, name string) error {
	if name == "" {
		return Invalidf("%s must not be empty", field)
	}
	if len(name) > 255 {
		return Invalidf("%s is %d bytes long; the limit is 255", field, len(name))
	}
	if err := checkRunes(field, name); err != nil {
		return err
	}
	if strings.TrimSpace(name) != name {
		return Invalidf("%s must not begin or end with white space", field)
	}
	if _, err := uuid.Parse(name); err == nil {
		return Invalidf("%s must not be a UUID: resources are addressed by id or name", field)
	}
	return nil
}

// MaxText is the longest free text (a reason, a metadata value) in bytes:
// 255 characters of up to four bytes each.
const MaxText = 1020

// CheckText refuses free text (reasons, metadata keys and values, extra
// specs, traits) that is longer than MaxText bytes, not valid UTF-8, or
// contains control characters, line or paragraph separators, bidirectional
// overrides or isolates, or U+FFFD. Such text, shown in a terminal, could
// move the cursor, recolour the screen or show something else than it holds.
// Empty text is accepted.
func CheckText(field, text string) error { return CheckTextUpTo(field, text, MaxText) }

// CheckTextUpTo is CheckText with another limit, for longer text such as
// an SSH public key.
func CheckTextUpTo(field, text string, limit int) error {
	if len(text) > limit {
		return Invalidf("%s is %d bytes long; the limit is %d", field, len(text), limit)
	}
	return checkRunes(field, text)
}

func checkRunes(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalidf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return Invalidf("%s must not contain control characters (found %U)", field, r)
		case IsBidiControl(r):
			return Invalidf("%s must not contain bidirectional control characters (found %U)", field, r)
		case r == utf8.RuneError:
			return Invalidf("%s must not contain U+FFFD (a replacement character: the text was not valid Unicode)", field)
		}
	}
	return nil
}

// IsBidiControl reports whether r is a bidirectional mark, embedding,
// override or isolate, which can make text read differently from what it
// holds (CVE-2021-42574, "Trojan Source").
func IsBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
