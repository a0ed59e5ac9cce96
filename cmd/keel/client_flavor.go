package main

import (
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func flavorCmd(g *globals) *cobra.Command {
	cmd := g.group("flavor", "Manage flavors (the sizes servers are built with)", "flavors")
	cmd.AddCommand(flavorCreateCmd(g), flavorListCmd(g), flavorShowCmd(g), flavorDeleteCmd(g))
	return cmd
}

func flavorCreateCmd(g *globals) *cobra.Command {
	var body struct {
		Name       string            `json:"name"`
		VCPUs      int               `json:"vcpus"`
		RAMMiB     int               `json:"ram_mib"`
		DiskGiB    int               `json:"disk_gib"`
		ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
	}
	var specs []string
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME --vcpus N --ram-mib N [--disk-gib N] [--extra-spec KEY=VALUE ...]",
		Short: "Create a flavor",
		Long: `Create a flavor. Extra specs steer placement:
  --extra-spec trait:NAME=required     only on hosts with the trait
  --extra-spec trait:NAME=forbidden    only on hosts without it
  --extra-spec aggregate:KEY=VALUE     only on hosts in an aggregate with that metadata`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if body.ExtraSpecs, err = parseKV("--extra-spec", specs, kvNeedValue); err != nil {
				return err
			}
			body.Name = args[0]
			var f api.Flavor
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPost, path: "/v1/flavors", body: body, idemKey: key}, &f)
			if err != nil {
				return err
			}
			// The answer is built from the command's result: read the
			// flavor back so that servers can name it right away.
			var read api.Flavor
			if r, err := g.settle(cmd.Context(), "/v1/flavors/"+seg(f.ID), rep.seq, &read); err != nil {
				g.settleNote(err)
			} else {
				rep, f = r, read
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeFlavors(w, f) })
		},
	}
	cmd.Flags().IntVar(&body.VCPUs, "vcpus", 0, "virtual CPUs")
	cmd.Flags().IntVar(&body.RAMMiB, "ram-mib", 0, "RAM in MiB")
	cmd.Flags().IntVar(&body.DiskGiB, "disk-gib", 0, "root disk in GiB")
	cmd.Flags().StringArrayVar(&specs, "extra-spec", nil, "KEY=VALUE placement extra spec (repeatable)")
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
			items, err := decodeItems[api.Flavor](raws)
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
			var f api.Flavor
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
			return g.deleteResource(cmd.Context(), "flavor", "/v1/flavors/"+seg(args[0]), args[0], key)
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

func writeFlavors(w io.Writer, items ...api.Flavor) error {
	rows := make([][]string, 0, len(items))
	for _, f := range items {
		rows = append(rows, []string{f.ID, f.Name, itoa(f.VCPUs), itoa(f.RAMMiB), itoa(f.DiskGiB), fmtKV(f.ExtraSpecs), fmtTime(f.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "VCPUS", "RAM_MIB", "DISK_GIB", "EXTRA_SPECS", "CREATED"}, rows)
}
