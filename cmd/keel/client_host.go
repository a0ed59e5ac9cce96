package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func hostCmd(g *globals) *cobra.Command {
	cmd := g.group("host", "Inspect and administer hosts", "hosts")
	cmd.AddCommand(
		listCmd(g, hosts, "List hosts with their capacity and what their servers use (used/total, total after overcommit)"),
		showCmd(g, hosts, "Show a host: state, traits, overcommit and capacity"),
		hostActionCmd(g, "enable", "enable", "Enable a host: it takes new servers again", false),
		hostActionCmd(g, "disable", "disable", "Disable a host: no new servers are placed on it from now on", true),
		hostActionCmd(g, "maintenance", "maintenance", "Put a host in maintenance: no new servers are placed on it", true),
		hostActionCmd(g, "maintenance-end", "maintenance/end", "End a host's maintenance", false),
		hostOvercommitCmd(g), hostCredentialsCmd(g), hostRevokeCmd(g),
		deleteCmd(g, hosts, "Remove a host from the fleet (refused while servers are placed on it; its credentials are revoked)"))
	return cmd
}

var hosts = resource[api.Host]{kind: "host", path: api.Hosts, whole: true, table: writeHosts,
	detail: func(_ context.Context, w io.Writer, h api.Host) error { return writeHost(w, h) }}

func hostActionCmd(g *globals, use, path, short string, withReason bool) *cobra.Command {
	var key, reason string
	cmd := &cobra.Command{
		Use:   use + " ID|NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := call{method: http.MethodPost, path: "/v1/hosts/" + seg(args[0]) + "/" + path, idemKey: key}
			if reason != "" {
				c.body = map[string]string{"reason": reason}
			}
			return g.hostCall(cmd.Context(), c)
		},
	}
	if withReason {
		cmd.Use += " [--reason R]"
		cmd.Flags().StringVar(&reason, "reason", "", "why, shown with the host's status (at most 255 characters)")
	}
	idemFlag(cmd, &key)
	return cmd
}

func hostOvercommitCmd(g *globals) *cobra.Command {
	var key string
	var ifVersion uint64
	var r api.Ratios
	cmd := &cobra.Command{
		Use:   "set-overcommit ID|NAME [--cpu X] [--ram Y] [--disk Z] [--if-version N]",
		Short: "Set a host's overcommit ratios (refused while its servers would no longer fit)",
		Long: `Set a host's overcommit ratios: total capacity is physical capacity times
the ratio. Ratios are above 0 and at most 64. A ratio left out keeps its
current value: only the ratios given are sent, and the server merges them
with the host's current ratios, so a concurrent change of another ratio is
kept. --if-version N changes nothing unless the host is still at version N
(the version 'keel host show -o json' gives). The API refuses (409) ratios
under which the servers already on the host would no longer fit.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var p api.RatiosPatch
			if fl.Changed("cpu") {
				p.CPU = &r.CPU
			}
			if fl.Changed("ram") {
				p.RAM = &r.RAM
			}
			if fl.Changed("disk") {
				p.Disk = &r.Disk
			}
			if p == (api.RatiosPatch{}) {
				return errors.New("give at least one of --cpu, --ram and --disk")
			}
			c := call{method: http.MethodPatch, path: "/v1/hosts/" + seg(args[0]) + "/overcommit", body: p, idemKey: key, ifMatch: ifVersion}
			return g.hostCall(cmd.Context(), c)
		},
	}
	cmd.Flags().Float64Var(&r.CPU, "cpu", 0, "vCPU overcommit ratio (e.g. 4)")
	cmd.Flags().Float64Var(&r.RAM, "ram", 0, "RAM overcommit ratio (e.g. 1.5)")
	cmd.Flags().Float64Var(&r.Disk, "disk", 0, "disk overcommit ratio (e.g. 1)")
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "change nothing unless the host is at this version (If-Match)")
	idemFlag(cmd, &key)
	return cmd
}

func hostCredentialsCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "credentials NAME -o FILE",
		Short: "Issue the credentials a compute node's agent connects with",
		Long: `Issue new credentials for the host NAME (it need not be registered yet) and
write them to FILE, readable by its owner only. Copy FILE to that host and
run: keel agent --driver libvirt --credentials FILE. With them its agent
reads only its own host's work and speaks only for its own host. Keel keeps
only their public keys; issuing again replaces them (the earlier ones no
longer connect).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("give the file to write them to: -o FILE")
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists; remove it first (new credentials replace the old ones for good)", out)
			}
			if err != nil {
				return err
			}
			var issued api.IssuedHostCredentials
			_, err = g.client.doJSON(cmd.Context(), call{method: http.MethodPost, path: api.HostCredentials, body: api.HostCredentialsBody{Host: args[0]}}, &issued)
			if err == nil {
				_, err = f.WriteString(issued.Credentials)
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "credentials of host %s written to %s (mode 0600); copy it to that host and run: keel agent --driver libvirt --credentials FILE\n", issued.Host, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the credentials to (created, mode 0600; must not exist)")
	return cmd
}

func hostRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-credentials NAME",
		Short: "Take a compute node's credentials away (a compromised or retired node)",
		Long: `Revoke the credentials of the host NAME: its agent is disconnected at once and
cannot connect again, so the host goes down; its work waits until new
credentials are issued (keel host credentials NAME -o FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.client.doJSON(cmd.Context(), call{method: http.MethodDelete, path: api.HostCredentials + "/" + seg(args[0])}, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "credentials of host %s revoked: its agent is disconnected and cannot connect again\n", args[0])
			return nil
		},
	}
}

func (g *globals) hostCall(ctx context.Context, c call) error {
	var h api.Host
	rep, err := g.client.doJSON(ctx, c, &h)
	if err != nil {
		return err
	}
	return g.emit(rep.raw, func(w io.Writer) error { return writeHost(w, h) })
}

func writeHosts(w io.Writer, items []api.Host) error {
	rows := make([][]string, 0, len(items))
	for _, h := range items {
		rows = append(rows, []string{h.Name, h.Status, h.State, h.Driver, itoa(h.Servers), usage(h.Used.VCPUs, h.Total.VCPUs),
			usage(h.Used.RAMMiB, h.Total.RAMMiB), usage(h.Used.DiskGiB, h.Total.DiskGiB)})
	}
	return writeTable(w, []string{"NAME", "STATUS", "STATE", "DRIVER", "SERVERS", "VCPUS", "RAM_MIB", "DISK_GIB"}, rows)
}

func writeHost(w io.Writer, h api.Host) error {
	err := writeFields(w, []field{
		{"ID", h.ID}, {"NAME", h.Name}, {"STATUS", h.Status}, {"STATUS_REASON", deref(h.Reason)},
		{"STATE", h.State}, {"DOWN_SINCE", fmtTimePtr(h.DownSince)}, {"DRIVER", h.Driver},
		{"ADDRESS", deref(h.Address)}, {"HYPERVISOR", deref(h.Hypervisor)}, {"CPU_MODEL", deref(h.CPUModel)},
		{"CPU_FEATURES", strings.Join(h.CPUFeatures, ", ")}, {"TRAITS", strings.Join(h.Traits, ", ")},
		{"UNKNOWN_GUESTS", strings.Join(h.UnknownGuests, ", ")},
		{"OVERCOMMIT", fmtRatios(h.Ratios)}, {"SERVERS", itoa(h.Servers)}, {"UPDATED", fmtTimePtr(h.UpdatedAt)},
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	row := func(name string, ratio float64, get func(api.Resources) int) []string {
		return []string{name, itoa(get(h.Physical)), fmtRatio(ratio), itoa(get(h.Total)), itoa(get(h.Used)), itoa(get(h.Free))}
	}
	return writeTable(w, []string{"RESOURCE", "PHYSICAL", "RATIO", "TOTAL", "USED", "FREE"}, [][]string{
		row("VCPUS", h.Ratios.CPU, func(r api.Resources) int { return r.VCPUs }),
		row("RAM_MIB", h.Ratios.RAM, func(r api.Resources) int { return r.RAMMiB }),
		row("DISK_GIB", h.Ratios.Disk, func(r api.Resources) int { return r.DiskGiB }),
	})
}

// fmtRatio shows an overcommit ratio without trailing zeros: 4, 1.5.
func fmtRatio(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

func fmtRatios(r api.Ratios) string {
	return fmt.Sprintf("cpu %s, ram %s, disk %s", fmtRatio(r.CPU), fmtRatio(r.RAM), fmtRatio(r.Disk))
}
