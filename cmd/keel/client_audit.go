package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func auditCmd(g *globals) *cobra.Command {
	cmd := g.group("audit", "Read the audit trail, and verify its hash chain")
	cmd.AddCommand(auditListCmd(g), auditVerifyCmd(g))
	return cmd
}

// auditPage is how many records each request of audit list asks for.
const auditPage = 1000

func auditListCmd(g *globals) *cobra.Command {
	var from, to, project string
	var all bool
	var limit int
	cmd := &cobra.Command{
		Use:     "list [--from TIME] [--to TIME] [--project ID] [--all-projects] [--limit N]",
		Short:   "Print audit records as JSON lines (CADF-style events), oldest first",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := query("from", from, "to", to, "project", project)
			if all {
				q.Set("all_projects", "true")
			}
			enc := json.NewEncoder(g.out)
			for n := 0; limit <= 0 || n < limit; {
				page := auditPage
				if limit > 0 {
					page = min(page, limit-n)
				}
				q.Set("limit", strconv.Itoa(page))
				evs, err := api.AuditList(cmd.Context(), g.client.c, q)
				if err != nil {
					return g.client.explain(err)
				}
				for _, ev := range evs {
					if err := enc.Encode(ev); err != nil {
						return err
					}
				}
				n += len(evs)
				if len(evs) < page {
					break
				}
				q.Set("after", strconv.FormatUint(evs[len(evs)-1].Seq, 10))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "records at or after this time (RFC 3339, e.g. 2026-01-02T15:04:05Z)")
	fl.StringVar(&to, "to", "", "records before this time (RFC 3339)")
	fl.StringVar(&project, "project", "", "records of this project id (project admins: their own only)")
	fl.BoolVar(&all, "all-projects", false, "every project's records (cloud admins)")
	fl.IntVar(&limit, "limit", 0, "at most this many records (0: all)")
	return cmd
}

func auditVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit chain; fail naming the first record changed, removed or reordered (cloud admins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v api.AuditVerification
			rep, err := g.client.doJSON(cmd.Context(), call{method: "POST", path: api.AuditVerifyPath}, &v)
			if err != nil {
				return err
			}
			if err := g.emit(rep.raw, func(w io.Writer) error { return writeVerification(w, v) }); err != nil {
				return err
			}
			if p := v.First; p != nil {
				id := ""
				if p.ID != "" {
					id = " (record " + p.ID + ")"
				}
				return fmt.Errorf("audit chain broken at seq %d%s: %s: %s", p.Seq, id, p.Kind, escapeText(p.Detail, false))
			}
			return nil
		},
	}
}

func writeVerification(w io.Writer, v api.AuditVerification) error {
	if v.OK {
		_, err := fmt.Fprintf(w, "audit chain intact: %d records, up to seq %d (the audit stream's last: %d)\n", v.Records, v.Last, v.StreamLast)
		return err
	}
	_, err := fmt.Fprintf(w, "audit chain broken: %d problems in %d records (up to seq %d; the audit stream's last: %d)\n",
		v.Problems, v.Records, v.Last, v.StreamLast)
	return err
}
