package main

import (
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/adapters/postgres"
)

func flavorCmd(g *globals) *cobra.Command {
	cmd := g.group("flavor", "Manage flavors (the sizes servers are built with)", "flavors")
	cmd.AddCommand(flavorCreateCmd(g), flavorListCmd(g), flavorShowCmd(g), flavorDeleteCmd(g))
	return cmd
}

func flavorCreateCmd(g *globals) *cobra.Command {
	var body struct {
		Name    string `json:"name"`
		VCPUs   int    `json:"vcpus"`
		RAMMiB  int    `json:"ram_mib"`
		DiskGiB int    `json:"disk_gib"`
	}
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME --vcpus N --ram-mib N [--disk-gib N]",
		Short: "Create a flavor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			var f postgres.Flavor
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPost, path: "/v1/flavors", body: body, idemKey: key}, &f)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeFlavors(w, f) })
		},
	}
	cmd.Flags().IntVar(&body.VCPUs, "vcpus", 0, "virtual CPUs")
	cmd.Flags().IntVar(&body.RAMMiB, "ram-mib", 0, "RAM in MiB")
	cmd.Flags().IntVar(&body.DiskGiB, "disk-gib", 0, "root disk in GiB")
	_ = cmd.MarkFlagRequired("vcpus")
	_ = cmd.MarkFlagRequired("ram-mib")
	idemFlag(cmd, &key)
	return cmd
}

func flavorListCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "list [--name NAME]",
		Short:   "List flavors",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raws, raw, err := g.listAll(cmd.Context(), "/v1/flavors", query("name", name))
			if err != nil {
				return err
			}
			items, err := decodeItems[postgres.Flavor](raws)
			if err != nil {
				return err
			}
			return g.emit(raw, func(w io.Writer) error { return writeFlavors(w, items...) })
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "only the flavor with this name")
	return cmd
}

func flavorShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show a flavor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var f postgres.Flavor
			rep, err := g.client.get(cmd.Context(), "/v1/flavors/"+seg(args[0]), nil, 0, &f)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeFlavors(w, f) })
		},
	}
}

func flavorDeleteCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:     "delete ID|NAME",
		Short:   "Delete a flavor (servers keep their copy of it)",
		Aliases: []string{"rm"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := call{method: http.MethodDelete, path: "/v1/flavors/" + seg(args[0]), idemKey: key}
			if _, err := g.client.doJSON(cmd.Context(), c, nil); err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(g.out, "flavor %s deleted\n", args[0])
			}
			return nil
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

func writeFlavors(w io.Writer, items ...postgres.Flavor) error {
	rows := make([][]string, 0, len(items))
	for _, f := range items {
		rows = append(rows, []string{f.ID, f.Name, itoa(f.VCPUs), itoa(f.RAMMiB), itoa(f.DiskGiB), fmtTime(f.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "VCPUS", "RAM_MIB", "DISK_GIB", "CREATED"}, rows)
}
