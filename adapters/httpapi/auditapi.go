package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/audit"
)

// auditCatchUp bounds how long verify waits for the chain writer to copy
// what the audit stream held when the check began.
const auditCatchUp = 10 * time.Second

// auditListWait bounds how long a list waits for the records published
// before it to be copied.
const auditListWait = 2 * time.Second

// AuditListOutput is audit records as JSON lines.
type AuditListOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

// AuditVerifyOutput is the result of a verification.
type AuditVerifyOutput struct {
	Body api.AuditVerification
}

// auditListInput filters the audit trail.
type auditListInput struct {
	AllProjects
	From    string `query:"from" format:"date-time" doc:"Records at or after this time (RFC 3339)"`
	To      string `query:"to" format:"date-time" doc:"Records before this time (RFC 3339)"`
	Project string `query:"project" maxLength:"64" doc:"Records of this project (id); project admins may name only their own"`
	After   int64  `query:"after" minimum:"0" doc:"Records after this sequence: pass the seq of the last line of the previous page"`
	Limit   int    `query:"limit" minimum:"1" maximum:"10000" default:"1000" doc:"At most this many records"`
}

func (a *API) registerAudit(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: api.AuditPath,
		Summary: "The audit trail, as JSON lines", Tags: []string{"audit"},
		Description: "Every command (accepted or refused) and every refused authentication or authorisation, in chain order, one CADF-style event per line " +
			"(application/jsonl). Project admins read their project's records; cloud admins also the records of no project (refused logins and tokens), " +
			"and every project's with all_projects=true. Page with after=<seq of the last line>.",
		Responses: map[string]*huma.Response{"200": {Description: "One audit event (api.AuditEvent) per line",
			Content: map[string]*huma.MediaType{"application/jsonl": {Schema: &huma.Schema{Type: huma.TypeString}}}}}},
		a.listAudit)

	huma.Register(hapi, huma.Operation{OperationID: "verify-audit", Method: http.MethodPost, Path: api.AuditVerifyPath,
		Summary: "Verify the audit chain", Tags: []string{"audit"},
		Description: "Recomputes the hash chain of every record in Postgres and names the first record that was changed, removed or reordered; " +
			"also checks that the table reaches the audit stream's last record (waiting up to 10 s for the chain writer)."},
		a.verifyAudit)
}

func (a *API) listAudit(ctx context.Context, in *auditListInput) (*AuditListOutput, error) {
	f, err := a.auditScope(ctx, in)
	if err != nil {
		return nil, err
	}
	if a.Audit == nil || a.Read == nil {
		return nil, problem(ctx, http.StatusServiceUnavailable, "this API keeps no audit trail")
	}
	// Read what was recorded before this request: the writer copies within
	// moments, so wait for it a little (and answer what is there after).
	if head, err := a.Audit.LastSequence(ctx); err != nil {
		return nil, a.fail(ctx, err)
	} else if err := a.waitAuditChain(ctx, head, auditListWait); err != nil {
		return nil, a.fail(ctx, err)
	}
	recs, err := a.Read.AuditRecords(ctx, f)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		ev, err := auditEvent(r)
		if err != nil {
			return nil, a.fail(ctx, err)
		}
		if err := enc.Encode(ev); err != nil {
			return nil, a.fail(ctx, err)
		}
	}
	return &AuditListOutput{ContentType: "application/jsonl", Body: buf.Bytes()}, nil
}

// auditScope is what the caller may read of the trail, and asked for.
func (a *API) auditScope(ctx context.Context, in *auditListInput) (postgres.AuditFilter, error) {
	f := postgres.AuditFilter{After: uint64(in.After), Limit: in.Limit}
	for _, t := range []struct {
		name, v string
		to      *time.Time
	}{{"from", in.From, &f.From}, {"to", in.To, &f.To}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return f, problem(ctx, http.StatusUnprocessableEntity, t.name+" must be a time in RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
		*t.to = v
	}
	p, _ := principalFrom(ctx)
	switch {
	case in.Project != "":
		if !p.CloudAdmin && in.Project != p.Project {
			return f, forbidden(ctx, "project admins read the audit records of their own project only")
		}
		f.Project = in.Project
	default:
		s, err := a.listScope(ctx, in.AllProjects)
		if err != nil {
			return f, err
		}
		f.Project, f.All, f.Cloud = s.Project, s.All, s.Cloud
	}
	return f, nil
}

func (a *API) verifyAudit(ctx context.Context, _ *struct{}) (*AuditVerifyOutput, error) {
	if a.Audit == nil || a.Read == nil {
		return nil, problem(ctx, http.StatusServiceUnavailable, "this API keeps no audit trail")
	}
	streamLast, err := a.Audit.LastSequence(ctx)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if err := a.waitAuditChain(ctx, streamLast, auditCatchUp); err != nil {
		return nil, a.fail(ctx, err)
	}
	res, err := postgres.VerifyAudit(ctx, a.Read.Pool)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if res.Last < streamLast {
		// The stream holds records the table does not: the tail was
		// removed, or the writer is more than auditCatchUp behind.
		res.Problems++
		if res.First == nil {
			res.First = &audit.Problem{Seq: res.Last + 1, Kind: audit.Missing,
				Detail: "the table ends at sequence " + u64(res.Last) + " but the audit stream holds records up to " + u64(streamLast) +
					" (removed, or not copied within " + auditCatchUp.String() + ")"}
		}
	}
	out := &AuditVerifyOutput{Body: api.AuditVerification{Records: res.Records, Last: res.Last, StreamLast: streamLast,
		OK: res.First == nil, Problems: res.Problems}}
	if p := res.First; p != nil {
		out.Body.First = &api.AuditProblem{Seq: p.Seq, ID: p.ID, Kind: p.Kind, Detail: p.Detail}
	}
	return out, nil
}

// waitAuditChain waits, within d, for the table to reach seq.
func (a *API) waitAuditChain(ctx context.Context, seq uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		last, err := postgres.AuditLast(ctx, a.Read.Pool)
		if err != nil || last >= seq || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// auditEvent turns a stored record into its CADF-style event.
func auditEvent(r postgres.AuditRecord) (api.AuditEvent, error) {
	var rec audit.Record
	if err := json.Unmarshal(r.Record, &rec); err != nil {
		return api.AuditEvent{}, err
	}
	return api.AuditEvent{
		TypeURI: api.AuditTypeURI, ID: rec.ID, EventType: "activity", EventTime: rec.At,
		Action: auditAction(rec), Outcome: rec.Outcome,
		Initiator: api.AuditInitiator{TypeURI: "service/security/account/user", ID: rec.Actor.UserID, Name: rec.Actor.UserName,
			ProjectID: rec.Project, TokenID: rec.Actor.TokenID, Host: api.AuditHost{Address: rec.Source}},
		Target:    api.AuditTarget{ID: rec.Target.ID, TypeURI: "keel/" + rec.Target.Type},
		Observer:  api.AuditObserver{ID: "keel"},
		Reason:    api.AuditReason{ReasonCode: strconv.Itoa(rec.Status), ReasonType: "HTTP", Message: rec.Reason},
		RequestID: rec.RequestID, Seq: r.Seq, Operation: rec.Operation, Method: rec.Method, Path: rec.Path, Status: rec.Status,
	}, nil
}

// auditAction is the CADF action of a record.
func auditAction(rec audit.Record) string {
	switch {
	case rec.Operation == "create-token" && rec.Actor.TokenID == "":
		return "authenticate"
	case rec.Method == http.MethodPost && strings.Count(strings.Trim(rec.Path, "/"), "/") == 1: // a collection
		return "create"
	case rec.Method == http.MethodPost || rec.Method == http.MethodPut || rec.Method == http.MethodPatch:
		return "update"
	case rec.Method == http.MethodDelete:
		return "delete"
	}
	return "read"
}
