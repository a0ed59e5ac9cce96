package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

func replayCmd(g *globals) *cobra.Command {
	cmd := g.group("replay", "Rebuild an aggregate's state from its events, commit by commit")
	cmd.AddCommand(&cobra.Command{
		Use:   "server ID|NAME",
		Short: "Fold a server's events with the server decider and show the state after each commit",
		Long: `Fetch every commit of a server from the event history, decode its events
with the server decider's registry, fold them with its Evolve, and show
the state after each commit. A deleted server can be replayed by id only.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.replayServer(cmd.Context(), args[0])
		},
	})
	return cmd
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

func (g *globals) replayServer(ctx context.Context, ref string) error {
	id, err := g.serverRef(ctx, ref)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%w\n(a deleted server can be replayed by id only)", err)
		}
		return err
	}
	commits, err := g.serverCommits(ctx, id)
	if err != nil {
		return err
	}
	if len(commits) == 0 {
		return fmt.Errorf("no events for server %s", id)
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

// serverCommits fetches every commit of a server, following next_since.
func (g *globals) serverCommits(ctx context.Context, id string) ([]api.Commit, error) {
	q := query("aggregate_type", server.AggregateType, "aggregate_id", id, "limit", "1000")
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
