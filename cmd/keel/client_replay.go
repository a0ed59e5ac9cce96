package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/keypair"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
)

func replayCmd(g *globals) *cobra.Command {
	cmd := g.group("replay", "Rebuild an aggregate's state from its events, commit by commit")
	var until string
	srv := &cobra.Command{
		Use:   "server ID|NAME [--until SEQ|TIME]",
		Short: "Fold a server's events with the server decider and show the state after each commit",
		Long: `Fetch every commit of a server from the event history, decode its events
with the server decider's registry, fold them with its Evolve, and show
the state after each commit. A deleted server can be replayed by id only.
--until stops after a stream sequence, or after the last commit made at or
before a time (RFC 3339).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.replayServer(cmd.Context(), args[0], until)
		},
	}
	srv.Flags().StringVar(&until, "until", "", "stop after this stream sequence, or at this time (RFC 3339)")
	cmd.AddCommand(srv)
	for _, typ := range slices.Sorted(maps.Keys(folders)) {
		var until string
		c := &cobra.Command{
			Use:   typ + " ID [--until SEQ|TIME]",
			Short: "Fold a " + typ + "'s events and show each commit, the state after it and what it changed",
			Long: `Fetch every commit of the ` + typ + ` from the event history (of the token's
project, or the cloud's own for cloud admins), fold them with its decider,
and show each commit with the fields of the state it changed; -o json shows
the whole state after each. Secrets' hashes and sealed values are shown as
<redacted>. --until stops after a stream sequence, or at a time (RFC 3339).`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.replay(cmd.Context(), typ, args[0], until)
			},
		}
		c.Flags().StringVar(&until, "until", "", "stop after this stream sequence, or at this time (RFC 3339)")
		cmd.AddCommand(c)
	}
	return cmd
}

// untilFilter keeps the commits up to a stream sequence or a time ("": all).
func untilFilter(until string) (func(api.Commit) bool, error) {
	if until == "" {
		return func(api.Commit) bool { return true }, nil
	}
	if seq, err := strconv.ParseUint(until, 10, 64); err == nil {
		return func(c api.Commit) bool { return c.Sequence <= seq }, nil
	}
	t, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return nil, fmt.Errorf("--until takes a stream sequence or an RFC 3339 time (2026-12-02T15:04:05Z), not %q", until)
	}
	return func(c api.Commit) bool { return !c.OccurredAt.After(t) }, nil
}

// upTo is the commits kept by until.
func upTo(commits []api.Commit, until string) ([]api.Commit, error) {
	keep, err := untilFilter(until)
	if err != nil {
		return nil, err
	}
	out := commits[:0:0]
	for _, c := range commits {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// step is one commit of a generic replay: the state after it, as JSON, and
// the fields it changed.
type step struct {
	Sequence   uint64         `json:"sequence"`
	Version    uint64         `json:"version"`
	OccurredAt time.Time      `json:"occurred_at"`
	Events     []api.RawEvent `json:"events"`
	State      map[string]any `json:"state"`
	Changed    map[string]any `json:"changed"`
}

// folders fold the commits of each aggregate type but the server (which
// has a replay of its own) into steps.
var folders = map[string]func(id string, commits []api.Commit) ([]step, error){
	flavor.AggregateType:        foldWith(flavor.Decider),
	image.AggregateType:         foldWith(image.Decider),
	keypair.AggregateType:       foldWith(keypair.Decider),
	operation.AggregateType:     foldWith(operation.Decider),
	host.AggregateType:          foldWith(host.Decider),
	servergroup.AggregateType:   foldWith(servergroup.Decider),
	hostaggregate.AggregateType: foldWith(hostaggregate.Decider),
	project.AggregateType:       foldWith(project.Decider),
	user.AggregateType:          foldWith(user.Decider),
	token.AggregateType:         foldWith(token.Decider),
}

// redacted are the state fields replay never shows.
var redacted = map[string]bool{"PasswordHash": true, "AdminPasswordSealed": true, "SecretSHA256": true, "secret_sha256": true, "password_hash": true}

func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if redacted[k] && e != nil && e != "" {
				x[k] = "<redacted>"
			} else {
				x[k] = redact(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = redact(x[i])
		}
	}
	return v
}

// redactEvents is events with the redacted fields of their data hidden.
func redactEvents(evs []api.RawEvent) []api.RawEvent {
	out := make([]api.RawEvent, len(evs))
	for i, e := range evs {
		out[i] = e
		var data any
		if json.Unmarshal(e.Data, &data) != nil {
			continue
		}
		if b, err := json.Marshal(redact(data)); err == nil {
			out[i].Data = b
		}
	}
	return out
}

// foldWith folds commits with a decider, keeping the state after each.
func foldWith[S, C any](d domain.Decider[S, C]) func(id string, commits []api.Commit) ([]step, error) {
	return func(id string, commits []api.Commit) ([]step, error) {
		st := d.Initial(id)
		var before map[string]any
		steps := make([]step, 0, len(commits))
		for _, c := range commits {
			raw := make([]domain.RawEvent, len(c.Events))
			for i, e := range c.Events {
				raw[i] = domain.RawEvent(e)
			}
			evs, err := d.Registry.DecodeAll(raw)
			if err != nil {
				return nil, fmt.Errorf("commit %d: %w", c.Sequence, err)
			}
			st = d.Fold(st, evs)
			js, err := json.Marshal(st)
			if err != nil {
				return nil, err
			}
			// What changed is found on the whole state, then shown redacted.
			var after, shown map[string]any
			if err := json.Unmarshal(js, &after); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(js, &shown); err != nil {
				return nil, err
			}
			shown = redact(shown).(map[string]any)
			changed := map[string]any{}
			for k, v := range after {
				if !reflect.DeepEqual(before[k], v) {
					changed[k] = shown[k]
				}
			}
			steps = append(steps, step{Sequence: c.Sequence, Version: c.Version, OccurredAt: c.OccurredAt, Events: redactEvents(c.Events), State: shown, Changed: changed})
			before = after
		}
		return steps, nil
	}
}

// replay shows the steps of an aggregate of any type but the server.
func (g *globals) replay(ctx context.Context, typ, id, until string) error {
	commits, err := g.commits(ctx, typ, id)
	if err != nil {
		return err
	}
	if commits, err = upTo(commits, until); err != nil {
		return err
	}
	if len(commits) == 0 {
		return fmt.Errorf("no events for %s %s (of your project%s)", typ, id, untilNote(until))
	}
	steps, err := folders[typ](id, commits)
	if err != nil {
		return err
	}
	if g.json() {
		raw, err := json.Marshal(steps)
		if err != nil {
			return err
		}
		return writeIndented(g.out, raw)
	}
	fmt.Fprintf(g.out, "%s %s: %d commits\n\n", typ, id, len(steps))
	rows := make([][]string, 0, len(steps))
	for _, s := range steps {
		types := make([]string, len(s.Events))
		for i, e := range s.Events {
			types[i] = e.Type
		}
		keys := slices.Sorted(maps.Keys(s.Changed))
		parts := make([]string, len(keys))
		for i, k := range keys {
			v, _ := json.Marshal(s.Changed[k])
			parts[i] = k + "=" + string(v)
		}
		rows = append(rows, []string{strconv.FormatUint(s.Sequence, 10), strconv.FormatUint(s.Version, 10),
			s.OccurredAt.UTC().Format(time.RFC3339), strings.Join(types, ","), strings.Join(parts, " ")})
	}
	return writeTable(g.out, []string{"SEQ", "VERSION", "AT", "EVENTS", "CHANGED"}, rows)
}

func untilNote(until string) string {
	if until == "" {
		return ""
	}
	return ", up to " + until
}

// replayStep is the state of a server after one commit.
type replayStep struct {
	Sequence uint64         `json:"sequence"`
	Version  uint64         `json:"version"`
	Events   []api.RawEvent `json:"events"`
	State    replayState    `json:"state"`
}

// replayState is what replay shows of server.State.
type replayState struct {
	Status    string `json:"status"`
	Task      string `json:"task"`
	Power     string `json:"power"`
	Desired   string `json:"desired"`
	Host      string `json:"host"`
	Reason    string `json:"reason"`
	Operation string `json:"operation_id"`
}

func (g *globals) replayServer(ctx context.Context, ref, until string) error {
	id, err := g.serverRef(ctx, ref)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%w\n(a deleted server can be replayed by id only)", err)
		}
		return err
	}
	commits, err := g.commits(ctx, server.AggregateType, id)
	if err != nil {
		return err
	}
	if commits, err = upTo(commits, until); err != nil {
		return err
	}
	if len(commits) == 0 {
		return fmt.Errorf("no events for server %s%s", id, untilNote(until))
	}
	steps, err := foldServer(commits)
	if err != nil {
		return err
	}
	if g.json() {
		raw, err := json.Marshal(steps)
		if err != nil {
			return err
		}
		return writeIndented(g.out, raw)
	}
	return writeReplay(g.out, id, steps)
}

// commits fetches every commit of an aggregate, following next_since.
func (g *globals) commits(ctx context.Context, typ, id string) ([]api.Commit, error) {
	q := query("aggregate_type", typ, "aggregate_id", id, "limit", "1000")
	var all []api.Commit
	for {
		var page eventsPage
		if _, err := g.client.get(ctx, "/v1/events", q, 0, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextSince == 0 {
			return all, nil
		}
		q.Set("since", strconv.FormatUint(page.NextSince, 10))
	}
}

// foldServer decodes each commit's events and folds them into the server
// state, keeping the state after each commit.
func foldServer(commits []api.Commit) ([]replayStep, error) {
	var st server.State
	steps := make([]replayStep, 0, len(commits))
	for _, c := range commits {
		raw := make([]domain.RawEvent, len(c.Events))
		for i, e := range c.Events {
			raw[i] = domain.RawEvent(e)
		}
		evs, err := server.Decider.Registry.DecodeAll(raw)
		if err != nil {
			return nil, fmt.Errorf("commit %d: %w", c.Sequence, err)
		}
		st = server.Decider.Fold(st, evs)
		steps = append(steps, replayStep{Sequence: c.Sequence, Version: c.Version, Events: c.Events, State: replayState{
			Status: string(st.Status), Task: string(st.Task), Power: string(st.Power), Desired: string(st.Desired),
			Host: st.Host, Reason: st.Reason, Operation: st.Operation,
		}})
	}
	return steps, nil
}

func writeReplay(w io.Writer, id string, steps []replayStep) error {
	fmt.Fprintf(w, "server %s: %d commits\n\n", id, len(steps))
	rows := make([][]string, 0, len(steps))
	for _, s := range steps {
		types := make([]string, len(s.Events))
		for i, e := range s.Events {
			types[i] = e.Type
		}
		st := s.State
		rows = append(rows, []string{strconv.FormatUint(s.Sequence, 10), strconv.FormatUint(s.Version, 10),
			strings.Join(types, ","), st.Status, st.Task, st.Power, st.Desired, st.Host, st.Reason})
	}
	return writeTable(w, []string{"SEQ", "VERSION", "EVENTS", "STATUS", "TASK", "POWER", "DESIRED", "HOST", "REASON"}, rows)
}
