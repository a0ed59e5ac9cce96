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
	cmd.AddCommand(operationShowCmd(g), operationListCmd(g))
	return cmd
}

func operationShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an operation with its steps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			rep, err := g.client.get(cmd.Context(), "/v1/operations/"+seg(args[0]), nil, 0, &op)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeOperation(w, op) })
		},
	}
}

func operationListCmd(g *globals) *cobra.Command {
	var resource, status, kind string
	cmd := &cobra.Command{
		Use:     "list [--resource ID|NAME] [--status S] [--kind K]",
		Short:   "List operations, oldest first",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := g.serverRef(cmd.Context(), resource)
			if err != nil {
				return err
			}
			raws, raw, err := g.listAll(cmd.Context(), "/v1/operations", query("resource_id", id, "status", status, "kind", kind))
			if err != nil {
				return err
			}
			items, err := decodeItems[api.Operation](raws)
			if err != nil {
				return err
			}
			return g.emit(raw, func(w io.Writer) error { return writeOperations(w, items) })
		},
	}
	cmd.Flags().StringVar(&resource, "resource", "", "only operations on this resource (a server name is looked up)")
	cmd.Flags().StringVar(&status, "status", "", "only operations in this status (pending, running, compensating, succeeded, failed)")
	cmd.Flags().StringVar(&kind, "kind", "", "only operations of this kind (e.g. server.create)")
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

func writeOperation(w io.Writer, o api.Operation) error {
	err := writeFields(w, []field{
		{"ID", o.ID}, {"KIND", o.Kind}, {"RESOURCE", o.ResourceType + " " + o.ResourceID},
		{"STATUS", o.Status}, {"CURRENT_STEP", deref(o.CurrentStep)}, {"DEADLINE", fmtTimePtr(o.Deadline)},
		{"ERROR", deref(o.Error)}, {"CREATED", fmtTime(o.CreatedAt)}, {"FINISHED", fmtTimePtr(o.FinishedAt)},
		{"DURATION", fmtMS(o.DurationMS)},
	})
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
	return writeTable(w, []string{"STEP", "STATUS", "STARTED", "TOOK", "TIMEOUT", "ERROR"}, rows)
}
