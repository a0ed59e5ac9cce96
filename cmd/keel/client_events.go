package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func eventsCmd(g *globals) *cobra.Command {
	cmd := g.group("events", "Read the event log: its history, or follow it live", "event")
	cmd.AddCommand(eventsListCmd(g), eventsTailCmd(g))
	return cmd
}

// eventFilter is the filter flags shared by list and tail.
type eventFilter struct {
	typ, aggType, aggID string
	since               uint64
	allProjects         bool
}

func (f *eventFilter) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "only commits with an event of this type (e.g. server.created)")
	fl.StringVar(&f.aggType, "aggregate-type", "", "only this aggregate type (server, flavor, image, host, operation)")
	fl.StringVar(&f.aggID, "aggregate-id", "", "only this aggregate (needs --aggregate-type to narrow the live stream)")
	fl.Uint64Var(&f.since, "since", 0, "only commits after this stream sequence")
	fl.BoolVar(&f.allProjects, "all-projects", false, "every project's commits, not only the token's project's (cloud admins)")
}

func (f *eventFilter) query() url.Values {
	q := query("type", f.typ, "aggregate_type", f.aggType, "aggregate_id", f.aggID)
	if f.since > 0 {
		q.Set("since", strconv.FormatUint(f.since, 10))
	}
	if f.allProjects {
		q.Set("all_projects", "true")
	}
	return q
}

// eventsPage is one page of GET /v1/events.
type eventsPage struct {
	Items     []api.Commit `json:"items"`
	NextSince uint64       `json:"next_since"`
}

func eventsListCmd(g *globals) *cobra.Command {
	var f eventFilter
	var limit int
	cmd := &cobra.Command{
		Use:     "list [--type T] [--aggregate-type A] [--aggregate-id ID] [--since N] [--limit N]",
		Short:   "List commits of the event log, oldest first",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := f.query()
			q.Set("limit", strconv.Itoa(limit))
			var page eventsPage
			rep, err := g.client.get(cmd.Context(), "/v1/events", q, 0, &page)
			if err != nil {
				return err
			}
			if err := g.emit(rep.raw, func(w io.Writer) error { return writeCommits(w, page.Items, f.typ) }); err != nil {
				return err
			}
			if page.NextSince > 0 && !g.json() {
				fmt.Fprintf(g.errOut, "(more after sequence %d: add --since %d)\n", page.NextSince, page.NextSince)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "commits to show (1 to 1000)")
	return cmd
}

func eventsTailCmd(g *globals) *cobra.Command {
	var f eventFilter
	cmd := &cobra.Command{
		Use:   "tail [--type T] [--aggregate-type A] [--aggregate-id ID] [--since N]",
		Short: "Follow the event log live, one line per event (JSON lines with -o json); Ctrl-C ends it",
		Long: `Follow the event log live: one line per event, or one commit per line as
JSON with -o json. Without --since it starts with the next commit; with
--since N after sequence N (--since 0: the whole history, then live).
Ctrl-C ends it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			err := g.tail(ctx, f, cmd.Flags().Changed("since") && f.since == 0)
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	f.add(cmd)
	return cmd
}

// tail prints commits of the live stream until it ends or ctx is done;
// fromStart prints the whole history first (the stream cannot start
// before sequence 2).
func (g *globals) tail(ctx context.Context, f eventFilter, fromStart bool) error {
	if !g.json() {
		fmt.Fprintf(g.out, eventLineFormat, "SEQ", "TIME", "AGGREGATE", "TYPE")
	}
	if fromStart {
		since, err := g.tailHistory(ctx, f)
		if err != nil {
			return err
		}
		f.since = since
	}
	resp, err := g.client.stream(ctx, "/v1/events/stream", f.query())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	last := f.since
	err = api.ReadSSE(resp.Body, func(event string, data []byte) error {
		if event != "commit" {
			return nil
		}
		var c api.Commit
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("the API sent an unreadable commit: %w", err)
		}
		last = c.Sequence
		return printCommit(g.out, c, g.json(), f.typ)
	})
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("the API closed the event stream")
	}
	if ctx.Err() == nil && last > 0 {
		err = fmt.Errorf("%w (last sequence %d; resume with --since %d)", err, last, last)
	}
	return err
}

// tailHistory prints the matching history and returns the sequence the
// live stream must start after so that nothing is missed or repeated.
func (g *globals) tailHistory(ctx context.Context, f eventFilter) (uint64, error) {
	last, err := g.projectionSeq(ctx, "events") // the history is complete up to here
	if err != nil {
		return 0, err
	}
	q := f.query()
	q.Set("limit", "1000")
	for {
		var page eventsPage
		if _, err := g.client.get(ctx, "/v1/events", q, 0, &page); err != nil {
			return 0, err
		}
		for _, c := range page.Items {
			if err := printCommit(g.out, c, g.json(), f.typ); err != nil {
				return 0, err
			}
			last = max(last, c.Sequence)
		}
		if page.NextSince == 0 {
			return last, nil
		}
		q.Set("since", strconv.FormatUint(page.NextSince, 10))
	}
}

// printCommit prints a commit as event lines (only those of type typ
// when typ is set), or as one line of JSON.
func printCommit(w io.Writer, c api.Commit, asJSON bool, typ string) error {
	if asJSON {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, r := range commitRows(c, typ) {
		if _, err := fmt.Fprintf(w, eventLineFormat, r[0], r[1], r[2], r[3]); err != nil {
			return err
		}
	}
	return nil
}

// eventLineFormat lays out one event of the live stream.
const eventLineFormat = "%-8s %-25s %-47s %s\n"

// commitRows are the rows of a commit: one per event (seq, time,
// aggregate, type), leaving out events of other types than typ when set.
func commitRows(c api.Commit, typ string) [][]string {
	agg := c.AggregateType + "/" + c.AggregateID
	seq, at := strconv.FormatUint(c.Sequence, 10), fmtTime(c.OccurredAt)
	rows := make([][]string, 0, len(c.Events))
	for _, e := range c.Events {
		if typ != "" && e.Type != typ {
			continue
		}
		rows = append(rows, []string{seq, at, agg, e.Type})
	}
	return rows
}

func writeCommits(w io.Writer, commits []api.Commit, typ string) error {
	var rows [][]string
	for _, c := range commits {
		rows = append(rows, commitRows(c, typ)...)
	}
	return writeTable(w, []string{"SEQ", "TIME", "AGGREGATE", "TYPE"}, rows)
}
