package domain

import (
	"encoding/json"
	"time"
)

// Envelope is one commit: the events decided by one command on one
// aggregate, stored as one message so that a commit is atomic.
type Envelope struct {
	CommandID     string     `json:"command_id"`
	AggregateType string     `json:"aggregate_type"`
	AggregateID   string     `json:"aggregate_id"`
	Version       uint64     `json:"version"` // aggregate version after this commit
	Events        []RawEvent `json:"events"`
	OccurredAt    time.Time  `json:"occurred_at"`
	Actor         Actor      `json:"actor"`
	RequestID     string     `json:"request_id,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	CausationID   string     `json:"causation_id,omitempty"`
	// Commands, when set, are the ids of the commands a commit carries
	// together (a batch, see commands.Handler.HandleBatched); CommandID then
	// names the batch. Unset, the commit carries the one command CommandID.
	Commands []string `json:"commands,omitempty"`
	// Project is the project that owns the aggregate after this commit
	// ("" for the cloud's own resources: flavors, hosts, public images).
	// Readers scope history and the live stream by it.
	Project string `json:"project,omitempty"`

	// Sequence is the commit's stream sequence (its global position). It is
	// not stored in the message; readers fill it in.
	Sequence uint64 `json:"-"`
	// Raw is the stored message, when the reader kept it (so that the event
	// history can store it without encoding it again).
	Raw json.RawMessage `json:"-"`
}

// CommandIDs are the ids of the commands the commit carries.
func (e *Envelope) CommandIDs() []string {
	if len(e.Commands) > 0 {
		return e.Commands
	}
	return []string{e.CommandID}
}

// RawEvent is a stored event: its type, schema version and JSON data.
type RawEvent struct {
	Type   string          `json:"type"`
	Schema int             `json:"schema"`
	Data   json.RawMessage `json:"data"`
}

// Actor is who issued a command.
type Actor struct {
	User    string   `json:"user"`
	Project string   `json:"project,omitempty"`
	Roles   []string `json:"roles,omitempty"`
}

// Encode turns decided events into stored ones (schema version 1).
func Encode(events []Event) ([]RawEvent, error) {
	out := make([]RawEvent, 0, len(events))
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, RawEvent{Type: ev.EventType(), Schema: 1, Data: b})
	}
	return out, nil
}

// DecodeAll decodes the events of an envelope with a registry.
func (r Registry) DecodeAll(raw []RawEvent) ([]Event, error) {
	out := make([]Event, 0, len(raw))
	for _, re := range raw {
		ev, err := r.Decode(re.Type, re.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
