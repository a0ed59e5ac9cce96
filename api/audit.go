package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// AuditPath is the audit trail: GET lists records as JSON lines.
const AuditPath = "/v1/audit"

// AuditVerifyPath recomputes the audit chain.
const AuditVerifyPath = "/v1/audit/verify"

// AuditTypeURI is the typeURI of every audit event (DMTF CADF).
const AuditTypeURI = "http://schemas.dmtf.org/cloud/audit/1.0/event"

// AuditEvent is one audit record in the shape of a CADF event, plus
// Keel's own fields (seq, operation, method, path, status). GET /v1/audit
// answers one per line (application/jsonl).
type AuditEvent struct {
	TypeURI   string         `json:"typeURI"`
	ID        string         `json:"id"`
	EventType string         `json:"eventType"` // always "activity"
	EventTime time.Time      `json:"eventTime"`
	Action    string         `json:"action"`  // create, update, delete, read, authenticate
	Outcome   string         `json:"outcome"` // success or failure
	Initiator AuditInitiator `json:"initiator"`
	Target    AuditTarget    `json:"target"`
	Observer  AuditObserver  `json:"observer"`
	Reason    AuditReason    `json:"reason"`
	RequestID string         `json:"requestId"`
	// Keel's own: the record's place in the chain, the API operation, the
	// request line and the HTTP status.
	Seq       uint64 `json:"seq"`
	Operation string `json:"operation,omitempty"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
}

// AuditInitiator is who made the request.
type AuditInitiator struct {
	TypeURI string `json:"typeURI"`
	// ID is the user's id ("" for a refused token or login: none is known).
	ID string `json:"id,omitempty"`
	// Name is the user's name, or the name a password login gave.
	Name      string    `json:"name,omitempty"`
	ProjectID string    `json:"project_id,omitempty"`
	TokenID   string    `json:"token_id,omitempty"`
	Host      AuditHost `json:"host"`
}

// AuditHost is where the request came from (the peer's address).
type AuditHost struct {
	Address string `json:"address"`
}

// AuditTarget is the resource acted on: typeURI keel/<collection>, and
// its id when the request named one.
type AuditTarget struct {
	ID      string `json:"id,omitempty"`
	TypeURI string `json:"typeURI"`
}

// AuditObserver is who recorded the event: always keel.
type AuditObserver struct {
	ID string `json:"id"`
}

// AuditReason is the HTTP status, and for a failure the problem's title
// and detail.
type AuditReason struct {
	ReasonCode string `json:"reasonCode"`
	ReasonType string `json:"reasonType"` // always "HTTP"
	Message    string `json:"message,omitempty"`
}

// AuditVerification is what POST /v1/audit/verify found.
type AuditVerification struct {
	Records uint64 `json:"records" doc:"Records checked"`
	Last    uint64 `json:"last_seq" doc:"The last sequence in the table"`
	// StreamLast is the audit stream's last sequence when the check began.
	StreamLast uint64 `json:"stream_last_seq" doc:"The audit stream's last sequence when the check began"`
	OK         bool   `json:"ok"`
	Problems   int    `json:"problems" doc:"How many breaks of the chain were found"`
	// First is the first problem in sequence order.
	First *AuditProblem `json:"first_problem,omitempty"` // the first break of the chain, in sequence order (no doc tag: a $ref takes no siblings in OpenAPI 3.0)
}

// AuditProblem names one break of the audit chain.
type AuditProblem struct {
	Seq    uint64 `json:"seq"`
	ID     string `json:"id,omitempty" doc:"The record id at that sequence, when there is a row"`
	Kind   string `json:"kind" enum:"changed,missing,reordered"`
	Detail string `json:"detail"`
}

// AuditList reads one page of the audit trail. q may hold from, to (RFC
// 3339), project, all_projects, after (a sequence) and limit.
func AuditList(ctx context.Context, c *Client, q url.Values) ([]AuditEvent, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: AuditPath, Opts: Opts{Query: q}}, nil)
	if err != nil {
		return nil, err
	}
	var out []AuditEvent
	for _, line := range bytes.Split(res.Raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev AuditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected line %q: %w", AuditPath, line, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// AuditVerify recomputes the audit chain (cloud admins).
func AuditVerify(ctx context.Context, c *Client) (AuditVerification, error) {
	v, _, err := Create[AuditVerification](ctx, c, AuditVerifyPath, nil, Opts{})
	return v, err
}
