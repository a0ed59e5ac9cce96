package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"
	"github.com/nats-io/nats.go/jetstream"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
)

// EventsOutput is a page of history.
type EventsOutput struct {
	Body api.EventPage
}

// EventQuery filters history and the live stream.
type EventQuery struct {
	AggregateType string `query:"aggregate_type" pattern:"^[a-z_]+$" maxLength:"64" doc:"e.g. server"`
	AggregateID   string `query:"aggregate_id" maxLength:"128"`
	Type          string `query:"type" pattern:"^[a-z_]+\\.[a-z_]+$" maxLength:"128" doc:"Event type, e.g. server.created"`
	Since         int64  `query:"since" minimum:"0" doc:"Only commits after this stream sequence (0 to 9223372036854775807)"`
}

// Resolve implements huma.Resolver: it explains a since beyond the range.
func (q *EventQuery) Resolve(ctx huma.Context) []error { return checkSince(ctx) }

// StreamQuery filters the live stream. Since -1 (the default) starts with
// the next commit; since N replays every commit after N first (0: all).
type StreamQuery struct {
	AggregateType string `query:"aggregate_type" pattern:"^[a-z_]+$" maxLength:"64"`
	AggregateID   string `query:"aggregate_id" maxLength:"128"`
	Type          string `query:"type" pattern:"^[a-z_]+\\.[a-z_]+$" maxLength:"128"`
	AllProjects   bool   `query:"all_projects" doc:"Cloud admins only: every project's commits, and the cloud's own"`
	Since         int64  `query:"since" default:"-1" minimum:"-1" doc:"Replay the commits after this sequence first (up to 9223372036854775807); -1 (default) starts with the next commit, 0 with the first"`
}

// Resolve implements huma.Resolver: it explains a since beyond the range.
// A stream cannot answer 403 once it has begun: all_projects from anyone
// but a cloud admin is refused here, before it begins.
func (q *StreamQuery) Resolve(ctx huma.Context) []error {
	if p, _ := principalFrom(ctx.Context()); q.AllProjects && !p.CloudAdmin {
		return []error{&huma.ErrorDetail{Location: "query.all_projects", Value: true, Message: "all_projects is for cloud admins"}}
	}
	return checkSince(ctx)
}

// checkSince gives the history and the stream one clear refusal of a since
// beyond the largest stream sequence (JetStream and the read model count
// in signed 64 bits); huma itself only says "invalid integer".
func checkSince(ctx huma.Context) []error {
	raw := ctx.Query("since")
	if _, err := strconv.ParseInt(raw, 10, 64); !errors.Is(err, strconv.ErrRange) {
		return nil
	}
	return []error{&huma.ErrorDetail{Location: "query.since", Value: raw,
		Message: "since must be a stream sequence from 0 to " + strconv.FormatInt(math.MaxInt64, 10)}}
}

var subjectToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (a *API) registerEvents(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "list-events", Method: http.MethodGet, Path: "/v1/events",
		Summary: "Event history", Tags: []string{"events"},
		Description: "Commits in stream order, each with its events. Paginate with since=next_since."},
		func(ctx context.Context, in *struct {
			ReadAfter
			EventQuery
			AllProjects
			Limit int `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*EventsOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			items, next, err := a.Read.Events(ctx, postgres.EventFilter{Scope: scope, AggregateType: in.AggregateType,
				AggregateID: in.AggregateID, Type: in.Type, Since: uint64(in.Since)}, in.Limit)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &EventsOutput{}
			out.Body.Items, out.Body.NextSince = all(items, commitOut), next
			if out.Body.Items == nil {
				out.Body.Items = []api.Commit{}
			}
			return out, nil
		})

	sse.Register(hapi, huma.Operation{OperationID: "stream-events", Method: http.MethodGet, Path: "/v1/events/stream",
		Summary: "Live event stream (server-sent events)", Tags: []string{"events"},
		Description: "First a 'ready' message with the stream's head at subscription; then each message is one commit (event name 'commit', id = stream sequence). Without since, starts with the next commit; since=0 replays the whole log first."},
		map[string]any{"commit": api.Commit{}, "ready": api.StreamReady{}},
		func(ctx context.Context, in *StreamQuery, send sse.Sender) {
			p, _ := principalFrom(ctx)
			scope := postgres.Scope{Project: p.Project, All: in.AllProjects, Cloud: p.CloudAdmin}
			a.stream(ctx, in, scope, send)
		})
}

func (a *API) stream(ctx context.Context, in *StreamQuery, scope postgres.Scope, send sse.Sender) {
	subject := keeljs.SubjectPrefix + ">"
	if in.AggregateType != "" {
		subject = keeljs.SubjectPrefix + in.AggregateType + ".>"
		if in.AggregateID != "" && subjectToken.MatchString(in.AggregateID) {
			subject = keeljs.Subject(in.AggregateType, in.AggregateID)
		}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if in.Since >= 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(in.Since)+1
	}
	cons, err := a.Store.Stream().OrderedConsumer(ctx, cfg)
	if err != nil {
		a.Log.Warn("event stream", "err", err)
		return
	}
	it, err := cons.Messages()
	if err != nil {
		a.Log.Warn("event stream", "err", err)
		return
	}
	// A wrong head would tell the client it caught up when it did not: end
	// the stream instead (the client reconnects with since).
	head, err := a.Store.LastSequence(ctx)
	if err != nil {
		it.Stop()
		a.Log.Warn("event stream: read the head", "err", err)
		return
	}
	if err := send(sse.Message{Data: api.StreamReady{Head: head}}); err != nil {
		it.Stop()
		return
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() == nil {
				a.Log.Warn("event stream ended", "err", err)
			}
			return
		}
		env, err := keeljs.DecodeMsg(m)
		if err != nil {
			// A follower cannot be shown it, but the operator must hear of it.
			a.Log.Error("event stream: undecodable commit skipped", "subject", m.Subject(), "err", err)
			continue
		}
		if in.AggregateID != "" && env.AggregateID != in.AggregateID {
			continue
		}
		if !scope.All && env.Project != scope.Project && !(scope.Cloud && env.Project == "") {
			continue
		}
		if in.Type != "" && !hasType(env.Events, in.Type) {
			continue
		}
		if err := send(sse.Message{ID: int(env.Sequence), Data: commitOut(env)}); err != nil {
			return
		}
	}
}

func hasType(events []domain.RawEvent, t string) bool {
	for _, e := range events {
		if e.Type == t {
			return true
		}
	}
	return false
}
