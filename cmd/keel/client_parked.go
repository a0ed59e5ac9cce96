package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func parkedCmd(g *globals) *cobra.Command {
	cmd := g.group("parked", "Inspect, retry and skip commits whose saga or agent reaction kept failing")
	cmd.AddCommand(parkedListCmd(g), parkedVerbCmd(g, "retry", http.StatusAccepted,
		"Run a parked commit's reaction again (within the subscription's --park-poll)"),
		parkedVerbCmd(g, "skip", http.StatusOK, "Forget a parked commit without running its reaction again"))
	return cmd
}

func parkedListCmd(g *globals) *cobra.Command {
	var sub string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List parked commits with their attempts and last error",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raws, raw, err := g.listAll(cmd.Context(), "/v1/admin/parked", query("subscription", sub))
			if err != nil {
				return err
			}
			items, err := decodeItems[api.ParkedCommit](raws)
			if err != nil {
				return err
			}
			return g.emit(raw, func(w io.Writer) error { return writeParked(w, items) })
		},
	}
	cmd.Flags().StringVar(&sub, "subscription", "", "only this subscription's commits (saga-servers-v1, dispatch-hosts-v1, host-work)")
	return cmd
}

// parkedVerbCmd is retry or skip: a POST on one parked commit.
func parkedVerbCmd(g *globals, verb string, status int, short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   verb + " SUBSCRIPTION SEQUENCE",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("sequence %q: want a stream sequence from keel parked list", args[1])
			}
			var out api.ParkedCommit
			c := call{method: http.MethodPost, path: "/v1/admin/parked/" + seg(args[0]) + "/" + args[1] + "/" + verb, idemKey: key}
			rep, err := g.client.doJSON(cmd.Context(), c, &out)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error {
				if status == http.StatusAccepted {
					_, err := fmt.Fprintf(w, "commit %d of %s marked for retry; keel parked list shows it until it succeeds\n", seq, cell(args[0]))
					return err
				}
				_, err := fmt.Fprintf(w, "commit %d of %s skipped; its reaction will not run\n", seq, cell(args[0]))
				return err
			})
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

// maxReasonCell bounds the reason column; -o json has all of it.
const maxReasonCell = 120

func writeParked(w io.Writer, items []api.ParkedCommit) error {
	rows := make([][]string, 0, len(items))
	for _, p := range items {
		reason := []rune(p.Reason)
		if len(reason) > maxReasonCell {
			reason = append(reason[:maxReasonCell-1], '…')
		}
		rows = append(rows, []string{p.Subscription, strconv.FormatUint(p.Sequence, 10), p.AggregateType + "/" + p.AggregateID,
			itoa(p.Attempts), p.State, fmtTime(p.ParkedAt), string(reason)})
	}
	return writeTable(w, []string{"SUBSCRIPTION", "SEQUENCE", "AGGREGATE", "ATTEMPTS", "STATE", "PARKED", "REASON"}, rows)
}
