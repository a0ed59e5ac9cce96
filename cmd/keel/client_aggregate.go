package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

func aggregateCmd(g *globals) *cobra.Command {
	cmd := g.group("aggregate", "Manage host aggregates (host metadata and availability zones)", "aggregates", "agg")
	cmd.AddCommand(aggregateCreateCmd(g), listCmd(g, aggregates, "List host aggregates"),
		showCmd(g, aggregates, "Show a host aggregate: zone, hosts and metadata"), aggregateSetMetadataCmd(g),
		aggregateAddHostCmd(g), aggregateRemoveHostCmd(g), deleteCmd(g, aggregates, "Delete a host aggregate without hosts"))
	return cmd
}

var aggregates = resource[api.HostAggregate]{kind: "host aggregate", path: api.Aggregates, table: writeAggregates,
	detail:  func(_ context.Context, w io.Writer, a api.HostAggregate) error { return writeAggregate(w, a) },
	filters: []filter{{flag: "name", meta: "NAME", usage: "only the aggregate with this name"}}}

func aggregateCreateCmd(g *globals) *cobra.Command {
	var body api.AggregateBody
	var md []string
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME [--az ZONE] [--metadata KEY=VALUE ...]",
		Short: "Create a host aggregate, optionally naming an availability zone",
		Long: `Create a host aggregate. Its metadata is matched by flavor extra specs
aggregate:KEY=VALUE; --az makes it an availability zone (stored as the
metadata key ` + hostaggregate.AZKey + `). Add hosts with 'keel aggregate add-host'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseKV("--metadata", md, kvNeedValue)
			if err != nil {
				return err
			}
			body.Name, body.Metadata = args[0], m
			return createAndRead(cmd.Context(), g, aggregates, body, key, func(a api.HostAggregate) string { return a.ID })
		},
	}
	cmd.Flags().StringVar(&body.AvailabilityZone, "az", "", "make the aggregate this availability zone")
	cmd.Flags().StringArrayVar(&md, "metadata", nil, "KEY=VALUE metadata (repeatable)")
	idemFlag(cmd, &key)
	return cmd
}

func aggregateSetMetadataCmd(g *globals) *cobra.Command {
	var key string
	var ifVersion uint64
	cmd := &cobra.Command{
		Use:   "set-metadata ID|NAME KEY=VALUE [KEY= ...] [--if-version N]",
		Short: "Set or remove (KEY=) host aggregate metadata; other keys stay",
		Long: `Set host aggregate metadata. KEY=VALUE sets a key, KEY= removes it; keys
not named stay as they are: the server merges them with the current
metadata, so concurrent changes of other keys are kept. --if-version N
changes nothing unless the aggregate is still at version N. The aggregate's
availability zone is the key ` + hostaggregate.AZKey + ` (refused while it has hosts).`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseKV("metadata", args[1:], kvEmptyValue)
			if err != nil {
				return err
			}
			c := call{method: http.MethodPut, path: "/v1/aggregates/" + seg(args[0]) + "/metadata",
				body: map[string]any{"metadata": m}, idemKey: key, ifMatch: ifVersion}
			return g.aggregateCall(cmd.Context(), c)
		},
	}
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "change nothing unless the aggregate is at this version (If-Match)")
	idemFlag(cmd, &key)
	return cmd
}

func aggregateAddHostCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "add-host ID|NAME HOST",
		Short: "Add a host (by name or id) to a host aggregate",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.hostName(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			c := call{method: http.MethodPost, path: "/v1/aggregates/" + seg(args[0]) + "/hosts",
				body: map[string]string{"host": h}, idemKey: key}
			return g.aggregateCall(cmd.Context(), c)
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

func aggregateRemoveHostCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "remove-host ID|NAME HOST",
		Short: "Remove a host (by name or id) from a host aggregate",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.hostName(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			c := call{method: http.MethodDelete, path: "/v1/aggregates/" + seg(args[0]) + "/hosts/" + seg(h), idemKey: key}
			return g.aggregateCall(cmd.Context(), c)
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

// hostName turns a host id into its name (aggregates list hosts by name);
// names pass as they are.
func (g *globals) hostName(ctx context.Context, ref string) (string, error) {
	if !isUUID(ref) {
		return ref, nil
	}
	var h api.Host
	if _, err := g.client.get(ctx, "/v1/hosts/"+seg(ref), nil, 0, &h); err != nil {
		return "", fmt.Errorf("look up host %s: %w", ref, err)
	}
	return h.Name, nil
}

// aggregateCall sends an aggregate command; the API answers with the
// aggregate once the read model shows the change.
func (g *globals) aggregateCall(ctx context.Context, c call) error {
	var a api.HostAggregate
	rep, err := g.client.doJSON(ctx, c, &a)
	if err != nil {
		return err
	}
	return g.emit(rep.raw, func(w io.Writer) error { return writeAggregate(w, a) })
}

func writeAggregates(w io.Writer, items []api.HostAggregate) error {
	rows := make([][]string, 0, len(items))
	for _, a := range items {
		rows = append(rows, []string{a.ID, a.Name, deref(a.AvailabilityZone), strings.Join(a.Hosts, ","),
			fmtKV(a.Metadata, hostaggregate.AZKey)})
	}
	return writeTable(w, []string{"ID", "NAME", "AZ", "HOSTS", "METADATA"}, rows)
}

// writeAggregate shows an aggregate, then its metadata (the zone included)
// one key a line.
func writeAggregate(w io.Writer, a api.HostAggregate) error {
	err := writeFields(w, []field{
		{"ID", a.ID}, {"NAME", a.Name}, {"AVAILABILITY_ZONE", deref(a.AvailabilityZone)},
		{"HOSTS", strings.Join(a.Hosts, ", ")}, {"CREATED", fmtTime(a.CreatedAt)},
	})
	if err != nil || len(a.Metadata) == 0 {
		return err
	}
	fmt.Fprintln(w)
	keys := make([]string, 0, len(a.Metadata))
	for k := range a.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rows := make([][]string, len(keys))
	for i, k := range keys {
		rows[i] = []string{k, a.Metadata[k]}
	}
	return writeTable(w, []string{"METADATA_KEY", "VALUE"}, rows)
}

func azCmd(g *globals) *cobra.Command {
	cmd := g.group("az", "Inspect availability zones (named by host aggregates)", "availability-zone", "availability-zones")
	zones := resource[api.AvailabilityZone]{kind: "availability zone", path: api.AvailabilityZones, whole: true, table: writeZones}
	cmd.AddCommand(listCmd(g, zones, "List availability zones and their hosts (hosts in no zone are in "+hostaggregate.DefaultAZ+")"))
	return cmd
}

func writeZones(w io.Writer, items []api.AvailabilityZone) error {
	rows := make([][]string, 0, len(items))
	for _, z := range items {
		rows = append(rows, []string{z.Name, strings.Join(z.Hosts, ",")})
	}
	return writeTable(w, []string{"ZONE", "HOSTS"}, rows)
}
