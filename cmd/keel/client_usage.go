package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func usageCmd(g *globals) *cobra.Command {
	var project, from, to string
	cmd := &cobra.Command{
		Use:   "usage [--project ID|NAME] [--from TIME] [--to TIME]",
		Short: "Show how long a project's servers ran, and what it costs",
		Long: `Show how long each server of a project ran (power RUNNING) within
[--from, --to), to the second, with vCPU-hours, RAM GiB-hours and the cost
from keel serve's price table (--prices). An interval still running counts
up to now.

Times are RFC 3339 (2025-03-01T00:00:00Z) or UTC dates (2025-03-01).
Defaults: the token's project, from the start of the current UTC month to
now. Only cloud admins may name another project.`,
		Args:    cobra.NoArgs,
		PreRunE: g.prepare,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := api.UsageQuery{Project: project}
			var err error
			if q.From, err = parseWhen("--from", from); err != nil {
				return err
			}
			if q.To, err = parseWhen("--to", to); err != nil {
				return err
			}
			u, res, err := api.GetUsage(cmd.Context(), g.client.c, q, api.Opts{})
			rep, err := g.client.send(res, err)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeUsage(w, u) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&project, "project", "", "project id or name (default: the token's; another is for cloud admins)")
	f.StringVar(&from, "from", "", "start of the window, included (default: the start of the current UTC month)")
	f.StringVar(&to, "to", "", "end of the window, excluded (default: now)")
	return cmd
}

// parseWhen reads an RFC 3339 time or a UTC date; "" is the zero time
// (the API's default).
func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2025-03-01T00:00:00Z) or a UTC date (2025-03-01)", flag, s)
}

func writeUsage(w io.Writer, u api.Usage) error {
	currency := u.Currency
	if currency == "" {
		currency = "(no price table)"
	}
	err := writeFields(w, []field{{"PROJECT", u.ProjectID}, {"FROM", fmtTime(u.From)}, {"TO", fmtTime(u.To)}, {"CURRENCY", currency}})
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(u.Lines)+1)
	for _, l := range u.Lines {
		rows = append(rows, []string{l.Name, l.ResourceID, l.Flavor.Name, fmtSeconds(l.Seconds), num(l.Hours), num(l.VCPUHours), num(l.RAMGiBHours), num(l.Cost)})
	}
	t := u.Totals
	rows = append(rows, []string{"TOTAL", "", "", "", num(t.ServerHours), num(t.VCPUHours), num(t.RAMGiBHours), num(t.Cost)})
	return writeTable(w, []string{"NAME", "ID", "FLAVOR", "RUNNING", "HOURS", "VCPU-HOURS", "RAM-GIB-HOURS", "COST"}, rows)
}

// fmtSeconds shows a running time as hours, minutes and seconds.
func fmtSeconds(s int64) string { return (time.Duration(s) * time.Second).String() }

// num shows a figure of the bill with no more decimals than it has.
func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
