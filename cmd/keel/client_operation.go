package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func operationCmd(g *globals) *cobra.Command {
	cmd := g.group("operation", "Follow operations (the steps that carry requests out)", "operations", "op")
	ops := resource[api.Operation]{kind: "operation", path: api.Operations, scoped: true, ref: "ID", table: writeOperations,
		detail: func(_ context.Context, w io.Writer, o api.Operation) error { return writeOperation(w, o) },
		filters: []filter{
			{flag: "resource", meta: "ID|NAME", param: "resource_id", lookup: g.serverRef,
				usage: "only operations on this resource (a server name is looked up)"},
			{flag: "status", meta: "S", usage: "only operations in this status (pending, running, compensating, succeeded, failed)"},
			{flag: "kind", meta: "K", usage: "only operations of this kind (e.g. server.create)"},
		}}
	cmd.AddCommand(showCmd(g, ops, "Show an operation with its steps"), listCmd(g, ops, "List operations, oldest first"))
	return cmd
}

// serverRef turns a server name into its id; ids and "" pass as they are.
func (g *globals) serverRef(ctx context.Context, ref string) (string, error) {
	if ref == "" || isUUID(ref) {
		return ref, nil
	}
	var s api.Server
	if _, err := g.client.get(ctx, "/v1/servers/"+seg(ref), nil, 0, &s); err != nil {
		return "", fmt.Errorf("look up server %s: %w", ref, err)
	}
	return s.ID, nil
}

func writeOperations(w io.Writer, items []api.Operation) error {
	rows := make([][]string, 0, len(items))
	for _, o := range items {
		rows = append(rows, []string{o.ID, o.Kind, o.ResourceID, o.Status, deref(o.CurrentStep),
			fmtMS(o.DurationMS), fmtTime(o.CreatedAt), deref(o.Error)})
	}
	return writeTable(w, []string{"ID", "KIND", "RESOURCE", "STATUS", "STEP", "DURATION", "CREATED", "ERROR"}, rows)
}

// writeOperation shows an operation and its steps; a failure's detail (the
// host's own account, for admins) follows its error when there is one.
func writeOperation(w io.Writer, o api.Operation) error {
	fields := []field{
		{"ID", o.ID}, {"KIND", o.Kind}, {"RESOURCE", o.ResourceType + " " + o.ResourceID},
		{"STATUS", o.Status}, {"CURRENT_STEP", deref(o.CurrentStep)}, {"DEADLINE", fmtTimePtr(o.Deadline)},
		{"ERROR", deref(o.Error)},
	}
	if o.Detail != "" {
		fields = append(fields, field{"DETAIL", o.Detail})
	}
	fields = append(fields, field{"CREATED", fmtTime(o.CreatedAt)}, field{"FINISHED", fmtTimePtr(o.FinishedAt)},
		field{"DURATION", fmtMS(o.DurationMS)})
	err := writeFields(w, fields)
	if err != nil || len(o.Steps) == 0 {
		return err
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(o.Steps))
	for _, s := range o.Steps {
		took := ""
		if s.StartedAt != nil && s.FinishedAt != nil {
			took = fmtDuration(s.FinishedAt.Sub(*s.StartedAt))
		}
		timeout := fmtDuration(time.Duration(s.TimeoutMS) * time.Millisecond)
		rows = append(rows, []string{s.Name, s.Status, fmtTimePtr(s.StartedAt), took, timeout, deref(s.Error)})
	}
	if err := writeTable(w, []string{"STEP", "STATUS", "STARTED", "TOOK", "TIMEOUT", "ERROR"}, rows); err != nil {
		return err
	}
	// Details are long (up to 4 KiB): a table of their own, after the steps.
	var details [][]string
	for _, s := range o.Steps {
		if s.Detail != "" {
			details = append(details, []string{s.Name, s.Detail})
		}
	}
	if len(details) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return writeTable(w, []string{"STEP", "DETAIL"}, details)
}
