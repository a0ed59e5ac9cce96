package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func serverCmd(g *globals) *cobra.Command {
	cmd := g.group("server", "Manage servers (virtual machines)", "servers")
	cmd.AddCommand(serverCreateCmd(g), listCmd(g, servers, "List servers"), showCmd(g, servers, "Show a server"), serverDeleteCmd(g),
		serverActionCmd(g, "start", "Start a stopped server"),
		serverActionCmd(g, "stop", "Stop a running server"),
		serverRebootCmd(g), serverConsoleLogCmd(g), serverConsoleCmd(g), serverLoginInfoCmd(g),
		serverAttachInterfaceCmd(g), serverDetachInterfaceCmd(g))
	return cmd
}

func serverConsoleLogCmd(g *globals) *cobra.Command {
	var maxBytes int
	cmd := &cobra.Command{
		Use:   "console-log ID|NAME [--max-bytes N]",
		Short: "Print the end of a server's serial console log, read from its host",
		Long: `Print the end of a server's serial console log, as its host holds it now
(what the guest printed at boot: kernel messages, cloud-init, login prompt).
The guest wrote it: control characters are shown escaped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := api.ConsoleLog(cmd.Context(), g.client.c, args[0], maxBytes)
			if err != nil {
				return g.client.explain(err)
			}
			log = bytes.ReplaceAll(log, []byte("\r\n"), []byte("\n"))
			_, err = g.out.Write(log)
			return err
		},
	}
	cmd.Flags().IntVar(&maxBytes, "max-bytes", 0, "how much of the log's end to print (default 64 KiB, at most 1 MiB)")
	return cmd
}

var servers = resource[api.Server]{kind: "server", path: api.Servers, scoped: true, table: writeServers,
	detail: func(_ context.Context, w io.Writer, s api.Server) error { return writeServer(w, s) },
	filters: []filter{
		{flag: "status", meta: "S", usage: "only servers in this status (BUILDING, ACTIVE, STOPPED, REBOOTING, DELETING, ERROR)"},
		{flag: "host", meta: "H", usage: "only servers on this host"},
		{flag: "name", meta: "N", usage: "only servers with this name"},
	}}

func serverCreateCmd(g *globals) *cobra.Command {
	var body api.ServerBody
	var key, userData string
	var keepRunning bool
	var networks []string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "create NAME --flavor F --image I [--network NET]... [--key-name K] [--user-data FILE] [--group G] [--az Z] [--target-host H] [--wait]",
		Short: "Create a server from a flavor and an image",
		Long: `Create a server from a flavor and an image. Scheduler hints: --group makes
it a member of a server group (its policy applies), --az places it in an
availability zone (see keel az list), --target-host places it on that host
or nowhere. --network gives it a NIC on a network of its project (a port
made before it is placed, deleted with it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			if cmd.Flags().Changed("keep-running") {
				body.KeepRunning = &keepRunning
			}
			for _, n := range networks {
				body.Networks = append(body.Networks, api.ServerNetwork{Network: n})
			}
			if userData != "" {
				b, err := os.ReadFile(userData)
				if err != nil {
					return err
				}
				body.UserData = base64.StdEncoding.EncodeToString(b)
			}
			return g.accept(cmd.Context(), call{method: http.MethodPost, path: "/v1/servers", body: body, idemKey: key}, w)
		},
	}
	cmd.Flags().StringArrayVar(&networks, "network", nil, "network id or name to give the server a NIC on (repeatable, in NIC order, at most 8)")
	cmd.Flags().IntSliceVar(&body.DataDisksGiB, "data-disk", nil, "attach a blank data disk of this many GiB (repeatable, at most 8)")
	cmd.Flags().BoolVar(&keepRunning, "keep-running", true, "start the server again when it is found stopped behind Keel's back (--keep-running=false: leave it STOPPED)")
	cmd.Flags().StringVar(&userData, "user-data", "", "file given to the guest at first boot (NoCloud user-data, at most 64 KiB)")
	cmd.Flags().StringVar(&body.Flavor, "flavor", "", "flavor id or name")
	cmd.Flags().StringVar(&body.Image, "image", "", "image id or name")
	cmd.Flags().StringVar(&body.KeyName, "key-name", "", "keypair id or name whose public key the admin user keel gets (see keel keypair)")
	cmd.Flags().StringVar(&body.ServerGroup, "group", "", "server group id or name to join")
	cmd.Flags().StringVar(&body.AvailabilityZone, "az", "", "availability zone to place the server in")
	cmd.Flags().StringVar(&body.TargetHost, "target-host", "", "place the server on this host or not at all")
	_ = cmd.MarkFlagRequired("flavor")
	_ = cmd.MarkFlagRequired("image")
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

func serverConsoleCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "console ID|NAME",
		Short: "Print a short-lived URL of a server's graphical console (VNC over a websocket)",
		Long: `Print a URL of the server's graphical console: a websocket of keel serve that
relays to the server's display on its host, as noVNC speaks to it (point
noVNC's "path" at it, or any RFB-over-websocket client). It opens once,
within 30 seconds; ask again for another.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rc api.RemoteConsole
			rep, err := g.client.get(cmd.Context(), api.Path(api.Servers, args[0], "console"), nil, 0, &rc)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error {
				return writeFields(w, []field{{"PROTOCOL", rc.Protocol}, {"URL", rc.URL}, {"EXPIRES", fmtTime(rc.ExpiresAt)}})
			})
		},
	}
}

func serverLoginInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "login-info ID|NAME",
		Short: "Show the admin user and the password Keel generated for a server",
		Long: `Show the admin user (keel) and the password Keel generated for a server at
create. Log in on its console, or over SSH with the keypair given at create.
The password is printed on stdout: mind your terminal's scrollback.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var li api.LoginInfo
			rep, err := g.client.get(cmd.Context(), api.Path(api.Servers, args[0], "login-info"), nil, 0, &li)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error {
				return writeFields(w, []field{{"USERNAME", li.Username}, {"PASSWORD", li.Password}})
			})
		},
	}
}

func serverDeleteCmd(g *globals) *cobra.Command {
	var key string
	var w waitFlags
	cmd := &cobra.Command{
		Use:     "delete ID|NAME [--wait]",
		Short:   "Delete a server, in any state",
		Aliases: []string{"rm"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.accept(cmd.Context(), call{method: http.MethodDelete, path: "/v1/servers/" + seg(args[0]), idemKey: key}, w)
		},
	}
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

func serverActionCmd(g *globals, action, short string) *cobra.Command {
	var key string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   action + " ID|NAME [--wait]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/servers/" + seg(args[0]) + "/" + action
			return g.accept(cmd.Context(), call{method: http.MethodPost, path: path, idemKey: key}, w)
		},
	}
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

// accept sends a call answered with 202 {server, operation_id}, and with
// --wait follows the operation to its end.
func (g *globals) accept(ctx context.Context, c call, w waitFlags) error {
	var acc api.Accepted
	rep, err := g.client.doJSON(ctx, c, &acc)
	if err != nil {
		return err
	}
	if !w.wait {
		return g.emit(rep.raw, func(out io.Writer) error { return writeAccepted(out, acc) })
	}
	progress := g.out
	if g.json() {
		progress = g.errOut // keep stdout one JSON document
	}
	fmt.Fprintf(progress, "server %s (%s): operation %s\n", acc.Server.Name, acc.Server.ID, acc.OperationID)
	op, raw, err := g.waitOperation(ctx, acc.OperationID, rep.seq, w.timeout, progress)
	if g.json() && raw != nil {
		if perr := writeIndented(g.out, raw); perr != nil {
			return perr
		}
	}
	if err != nil || g.json() {
		return err
	}
	fmt.Fprintf(g.out, "operation %s %s in %s\n", op.ID, op.Status, fmtMS(op.DurationMS))
	if op.Kind == "server.delete" {
		fmt.Fprintf(g.out, "server %s (%s) deleted\n", acc.Server.Name, acc.Server.ID)
		return nil
	}
	return g.showServerAfter(ctx, acc.Server.ID)
}

// showServerAfter shows a server as it is after an operation ended. The
// operation's end is in the read model; the server's row, written by
// another projection, may be a moment behind it: it is read again until
// its task is over (a few seconds at most). Reading at the head of the
// projections (Keel-Min-Sequence) would do it in one read, but listing
// the projections is a cloud admin's call.
func (g *globals) showServerAfter(ctx context.Context, id string) error {
	var s api.Server
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := g.client.get(ctx, "/v1/servers/"+seg(id), nil, 0, &s); err != nil {
			if isStatus(err, http.StatusNotFound) {
				fmt.Fprintf(g.out, "server %s is gone\n", id)
				return nil
			}
			return err
		}
		if s.Task == nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	fmt.Fprintln(g.out)
	return writeServer(g.out, s)
}

func writeServers(w io.Writer, items []api.Server) error {
	rows := make([][]string, 0, len(items))
	for _, s := range items {
		rows = append(rows, []string{s.ID, s.Name, s.Status, s.Power, deref(s.Task), deref(s.Host), s.Flavor.Name})
	}
	return writeTable(w, []string{"ID", "NAME", "STATUS", "POWER", "TASK", "HOST", "FLAVOR"}, rows)
}

func serverFields(s api.Server) []field {
	fl := s.Flavor
	return []field{
		{"ID", s.ID}, {"NAME", s.Name}, {"STATUS", s.Status}, {"REASON", deref(s.Reason)},
		{"DESIRED", s.Desired}, {"KEEP_RUNNING", fmt.Sprint(s.KeepRunning)}, {"DATA_DISKS_GIB", fmtInts(s.DataDisksGiB)}, {"ADDRESSES", strings.Join(s.Addresses, ", ")}, {"NICS", fmtNICs(s.NICs)}, {"POWER", s.Power}, {"TASK", deref(s.Task)}, {"HOST", deref(s.Host)},
		{"FLAVOR", fmt.Sprintf("%s (%d vCPU, %d MiB RAM, %d GiB disk)", fl.Name, fl.VCPUs, fl.RAMMiB, fl.DiskGiB)},
		{"IMAGE", s.ImageID}, {"KEYPAIR", deref(s.KeyName)}, {"OPERATION", deref(s.OperationID)}, {"VERSION", fmt.Sprint(s.Version)},
		{"CREATED", fmtTime(s.CreatedAt)}, {"UPDATED", fmtTime(s.UpdatedAt)},
	}
}

func writeServer(w io.Writer, s api.Server) error { return writeFields(w, serverFields(s)) }

// writeAccepted shows a server whose operation has just begun.
func writeAccepted(w io.Writer, a api.Accepted) error {
	fields := serverFields(a.Server)
	for i := range fields {
		if fields[i].name == "OPERATION" {
			fields[i].value = a.OperationID
		}
	}
	if err := writeFields(w, fields); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nFollow it with: keel operation show %s\n", a.OperationID)
	return err
}

func serverRebootCmd(g *globals) *cobra.Command {
	var key string
	var hard bool
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "reboot ID|NAME [--hard] [--wait]",
		Short: "Reboot a running server: a graceful shutdown then a start, or with --hard a reset",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/servers/" + seg(args[0]) + "/reboot"
			if hard {
				path += "?type=hard"
			}
			return g.accept(cmd.Context(), call{method: http.MethodPost, path: path, idemKey: key}, w)
		},
	}
	cmd.Flags().BoolVar(&hard, "hard", false, "reset the guest at once instead of shutting it down first")
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

func serverAttachInterfaceCmd(g *globals) *cobra.Command {
	var key, network string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "attach-interface ID|NAME --network NET [--wait]",
		Short: "Give an ACTIVE or STOPPED server a new NIC: a port on the network, plugged in as its last NIC",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.accept(cmd.Context(), call{method: http.MethodPost, path: "/v1/servers/" + seg(args[0]) + "/interfaces",
				body: api.InterfaceBody{Network: network}, idemKey: key}, w)
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "network id or name (of the server's project)")
	_ = cmd.MarkFlagRequired("network")
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

func serverDetachInterfaceCmd(g *globals) *cobra.Command {
	var key string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "detach-interface ID|NAME PORT [--wait]",
		Short: "Unplug a server's NIC (named by its port id, see keel server show) and delete the port",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.accept(cmd.Context(), call{method: http.MethodDelete, path: "/v1/servers/" + seg(args[0]) + "/interfaces/" + seg(args[1]), idemKey: key}, w)
		},
	}
	idemFlag(cmd, &key)
	w.add(cmd)
	return cmd
}

// fmtNICs shows a server's NICs as "port mac ips; ...", or "-" for none.
func fmtNICs(nics []api.ServerNIC) string {
	if len(nics) == 0 {
		return "-"
	}
	parts := make([]string, len(nics))
	for i, n := range nics {
		parts[i] = strings.TrimSpace(n.PortID + " " + n.MAC + " " + strings.Join(n.IPs, ","))
	}
	return strings.Join(parts, "; ")
}

// fmtInts shows sizes as "5, 7", or "-" for none.
func fmtInts(v []int) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
