package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// pollEvery is how often showServerAfter reads a server again while its
// row catches up with the operation's end.
const pollEvery = 200 * time.Millisecond

// waitFallback is how often --wait reads the operation when none of its
// commits arrived: the event stream wakes it at each change, and this
// read still ends a wait whose stream was refused or ended early. Tests
// change it.
var waitFallback = time.Second

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "follow the operation, printing its steps, until it succeeds or fails")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 5*time.Minute, "with --wait, give up after this long")
}

// waitOperation follows an operation until it succeeds or fails, printing
// each step as its status changes. It reads the operation again at each
// of its commits on the live stream (and every waitFallback besides). It
// returns the last operation read and its JSON; a failed operation is an
// error.
func (g *globals) waitOperation(ctx context.Context, id string, minSeq uint64, timeout time.Duration, progress io.Writer) (api.Operation, []byte, error) {
	ctx, stop := interruptible(ctx)
	defer stop()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The stream starts after the write (since), so a commit made before
	// it opens is still delivered, however late it opens.
	commits := g.watch(tctx, operationType, id, minSeq)
	tick := time.NewTicker(waitFallback)
	defer tick.Stop()
	var last api.Operation
	tr := &stepTracker{}
	for {
		var op api.Operation
		rep, err := g.client.get(tctx, "/v1/operations/"+seg(id), nil, minSeq, &op)
		switch {
		case err == nil:
			last = op
			for _, line := range tr.changes(op) {
				fmt.Fprintln(progress, line)
			}
			if op.Status == "succeeded" || op.Status == "failed" {
				return op, rep.raw, opError(op)
			}
		case !isStatus(err, http.StatusServiceUnavailable): // 503: the read model is behind; retry
			return last, nil, waitError(ctx, tctx, id, last, timeout, err)
		}
		select {
		case <-tctx.Done():
			return last, nil, waitError(ctx, tctx, id, last, timeout, tctx.Err())
		case seq, ok := <-commits:
			if !ok {
				commits = nil // the stream is gone: the fallback reads go on alone
				continue
			}
			minSeq = max(minSeq, seq) // read the operation as of this commit
			tick.Reset(waitFallback)
		case <-tick.C:
		}
	}
}

// operationType is the aggregate type of operations on the event stream.
const operationType = "operation"

// watch follows one aggregate's commits after sequence since on the live
// stream and sends each one's sequence. The channel is closed when the
// stream cannot be opened or ends; its errors are not reported, since the
// caller reads the aggregate anyway and only waits less with it.
func (g *globals) watch(ctx context.Context, aggType, id string, since uint64) <-chan uint64 {
	seqs := make(chan uint64)
	go func() {
		defer close(seqs)
		q := query("aggregate_type", aggType, "aggregate_id", id, "since", strconv.FormatUint(since, 10))
		resp, err := g.client.stream(ctx, "/v1/events/stream", q)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		_ = api.ReadSSE(resp.Body, func(event string, data []byte) error {
			if event != "commit" {
				return nil
			}
			var c api.Commit
			if err := json.Unmarshal(data, &c); err != nil {
				return err
			}
			select {
			case seqs <- c.Sequence:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return seqs
}

// opError is the error of a failed operation, nil otherwise.
func opError(op api.Operation) error {
	if op.Status != "failed" {
		return nil
	}
	return fmt.Errorf("operation %s (%s) failed: %s", op.ID, op.Kind, deref(op.Error))
}

// waitError explains why waiting stopped before the operation ended.
func waitError(ctx, tctx context.Context, id string, last api.Operation, timeout time.Duration, err error) error {
	follow := "follow it with: keel operation show " + id
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; operation %s goes on; %s", id, follow)
	case errors.Is(tctx.Err(), context.DeadlineExceeded):
		state := last.Status
		if state == "" {
			state = "unread"
		}
		if last.CurrentStep != nil {
			state += " (step " + *last.CurrentStep + ")"
		}
		return fmt.Errorf("gave up after %s: operation %s is still %s; %s", timeout, id, state, follow)
	}
	return err
}

// stepTracker remembers what --wait has printed.
type stepTracker struct {
	seen   map[string]string // step name -> status printed
	status string            // operation status printed
}

// changes returns one line per step whose status changed since the last
// call, e.g. "  schedule   succeeded  12ms".
func (t *stepTracker) changes(op api.Operation) []string {
	if t.seen == nil {
		t.seen = map[string]string{}
	}
	width := 0
	for _, s := range op.Steps {
		width = max(width, len(s.Name))
	}
	var lines, undone []string // undone: compensated and skipped steps, shown after the failure
	for _, s := range op.Steps {
		if s.Status == "pending" || t.seen[s.Name] == s.Status {
			continue
		}
		t.seen[s.Name] = s.Status
		line := strings.TrimRight(fmt.Sprintf("  %-*s  %-11s  %s", width, s.Name, s.Status, stepDetail(s)), " ")
		if s.Status == "compensated" || s.Status == "skipped" {
			undone = append(undone, line)
		} else {
			lines = append(lines, line)
		}
	}
	if op.Status == "compensating" && t.status != op.Status {
		lines = append(lines, "  compensating: "+deref(op.Error))
	}
	t.status = op.Status
	return append(lines, undone...)
}

// stepDetail is a step's duration, once it has one, and its error.
func stepDetail(s api.Step) string {
	d := ""
	if s.StartedAt != nil && s.FinishedAt != nil {
		d = fmtDuration(s.FinishedAt.Sub(*s.StartedAt))
	}
	if s.Error != nil {
		d = strings.TrimSpace(d + "  " + *s.Error)
	}
	return d
}

// projectionSeq is the sequence the named projection has applied (with
// name "", the highest of all).
func (g *globals) projectionSeq(ctx context.Context, name string) (uint64, error) {
	var out struct {
		Items []api.ProjectionStatus `json:"items"`
	}
	if _, err := g.client.get(ctx, "/v1/projections", nil, 0, &out); err != nil {
		return 0, err
	}
	var seq uint64
	for _, p := range out.Items {
		if name == "" || p.Name == name {
			seq = max(seq, p.Sequence)
		}
	}
	return seq, nil
}
