package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func flavorCmd(g *globals) *cobra.Command {
	cmd := g.group("flavor", "Manage flavors (the sizes servers are built with)", "flavors")
	cmd.AddCommand(flavorCreateCmd(g),
		listCmd(g, flavors, "List flavors"),
		showCmd(g, flavors, "Show a flavor"),
		deleteCmd(g, flavors, "Delete a flavor (servers keep their copy of it)"))
	return cmd
}

var flavors = resource[api.Flavor]{kind: "flavor", path: api.Flavors, table: writeFlavors,
	filters: []filter{{flag: "name", meta: "NAME", usage: "only the flavor with this name"}}}

func flavorCreateCmd(g *globals) *cobra.Command {
	var body api.FlavorBody
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
			return createAndRead(cmd.Context(), g, flavors, body, key, func(f api.Flavor) string { return f.ID })
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

func writeFlavors(w io.Writer, items []api.Flavor) error {
	rows := make([][]string, 0, len(items))
	for _, f := range items {
		rows = append(rows, []string{f.ID, f.Name, itoa(f.VCPUs), itoa(f.RAMMiB), itoa(f.DiskGiB), fmtKV(f.ExtraSpecs), fmtTime(f.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "VCPUS", "RAM_MIB", "DISK_GIB", "EXTRA_SPECS", "CREATED"}, rows)
}
