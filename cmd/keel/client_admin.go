package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func projectionsCmd(g *globals) *cobra.Command {
	cmd := g.group("projections", "Inspect and rebuild the read-model projections", "projection")
	cmd.AddCommand(projectionsListCmd(g), projectionsRebuildCmd(g))
	return cmd
}

func projectionsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List projections with their checkpoint and lag",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Items []api.ProjectionStatus `json:"items"`
			}
			rep, err := g.client.get(cmd.Context(), "/v1/projections", nil, 0, &out)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeProjections(w, out.Items) })
		},
	}
}

func projectionsRebuildCmd(g *globals) *cobra.Command {
	var all bool
	var key string
	cmd := &cobra.Command{
		Use:   "rebuild NAME|--all",
		Short: "Rebuild a projection (or all of them) from the start of the event log",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return errors.New("name one projection or pass --all (see keel projections list)")
			}
			name := "all"
			if !all {
				name = args[0]
			}
			var out struct {
				Items []api.RebuildResult `json:"items"`
			}
			c := call{method: http.MethodPost, path: "/v1/projections/" + seg(name) + "/rebuild", idemKey: key}
			rep, err := g.client.doJSON(cmd.Context(), c, &out)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeRebuilds(w, out.Items) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "rebuild every projection")
	idemFlag(cmd, &key)
	return cmd
}

func writeProjections(w io.Writer, items []api.ProjectionStatus) error {
	rows := make([][]string, 0, len(items))
	for _, p := range items {
		rows = append(rows, []string{p.Name, itoa(p.Version), fmt.Sprint(p.Sequence), fmt.Sprint(p.Lag), fmtTime(p.UpdatedAt)})
	}
	return writeTable(w, []string{"NAME", "VERSION", "SEQUENCE", "LAG", "UPDATED"}, rows)
}

func writeRebuilds(w io.Writer, items []api.RebuildResult) error {
	rows := make([][]string, 0, len(items))
	for _, r := range items {
		rows = append(rows, []string{r.Projection, fmt.Sprint(r.Commits), fmt.Sprint(r.Sequence), fmtDuration(r.Duration)})
	}
	return writeTable(w, []string{"PROJECTION", "COMMITS", "SEQUENCE", "DURATION"}, rows)
}
