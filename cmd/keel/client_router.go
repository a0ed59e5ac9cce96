package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// The router and floating IP commands: list, show and delete are the
// generic ones (client_resource.go); the verbs on a router's legs and on a
// floating IP's association are calls on the resource's sub-paths, whose
// answer is read back from the resource once the read model has it.

var routers = resource[api.Router]{kind: "router", path: api.Routers, scoped: true, table: writeRouters, filters: []filter{nameFilter},
	detail: func(_ context.Context, w io.Writer, r api.Router) error {
		gw, snat := "", ""
		if g := r.Gateway; g != nil {
			gw, snat = g.IP+" on network "+g.NetworkID+" (port "+g.PortID+")", strconv.FormatBool(g.SNAT)
		}
		if err := writeFields(w, []field{{"ID", r.ID}, {"NAME", r.Name}, {"GATEWAY", gw}, {"SNAT", snat},
			{"PROJECT", r.ProjectID}, {"CREATED", fmtTime(r.CreatedAt)}}); err != nil {
			return err
		}
		_, _ = io.WriteString(w, "\nINTERFACES\n")
		rows := make([][]string, 0, len(r.Interfaces))
		for _, in := range r.Interfaces {
			rows = append(rows, []string{in.SubnetID, in.CIDR, in.IP, in.PortID})
		}
		return writeTable(w, []string{"SUBNET", "CIDR", "IP", "PORT"}, rows)
	}}

var floatingIPs = resource[api.FloatingIP]{kind: "floating IP", path: api.FloatingIPs, ref: "ID|ADDRESS", scoped: true, table: writeFloatingIPs,
	filters: []filter{{flag: "network", meta: "NETWORK", usage: "only those of this external network (id or name)"},
		{flag: "port", meta: "PORT", usage: "only the one pointing at this port (id or name)"}},
	detail: func(_ context.Context, w io.Writer, f api.FloatingIP) error {
		return writeFields(w, []field{{"ID", f.ID}, {"IP", f.IP}, {"NETWORK", f.NetworkID}, {"SUBNET", f.SubnetID}, {"PORT", deref(f.PortID)},
			{"FIXED IP", deref(f.FixedIP)}, {"ROUTER", deref(f.RouterID)}, {"PROJECT", f.ProjectID}, {"CREATED", fmtTime(f.CreatedAt)}})
	}}

func routerCmd(g *globals) *cobra.Command {
	cmd := g.group("router", "Manage routers (a project's subnets to each other and to an external network)", "routers")
	var key string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a router; add interfaces on subnets and a gateway to use it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return createAndRead(cmd.Context(), g, routers, api.RouterBody{Name: args[0]}, key, func(r api.Router) string { return r.ID })
		},
	}
	idemFlag(create, &key)
	cmd.AddCommand(create, listCmd(g, routers, "List routers"), showCmd(g, routers, "Show a router with its gateway and interfaces"),
		deleteCmd(g, routers, "Delete a router without interfaces (its gateway goes with it)"),
		routerVerb(g, "add-interface ROUTER SUBNET", "Connect a router to a subnet (its port takes the subnet's gateway address)", 2,
			func(args []string, _ bool) call {
				return call{method: http.MethodPost, path: api.Path(api.Routers, args[0], "interfaces"), body: api.RouterInterfaceBody{Subnet: args[1]}}
			}),
		routerVerb(g, "remove-interface ROUTER SUBNET", "Disconnect a router from a subnet (its port is deleted)", 2,
			func(args []string, _ bool) call {
				return call{method: http.MethodDelete, path: api.Path(api.Routers, args[0], "interfaces", seg(args[1]))}
			}),
		routerVerb(g, "set-gateway ROUTER NETWORK [--no-snat]", "Give a router a gateway on an external network (SNAT on unless --no-snat)", 2,
			func(args []string, noSNAT bool) call {
				snat := !noSNAT
				return call{method: http.MethodPut, path: api.Path(api.Routers, args[0], "gateway"), body: api.RouterGatewayBody{Network: args[1], SNAT: &snat}}
			}),
		routerVerb(g, "clear-gateway ROUTER", "Take a router's gateway away (refused while floating IPs use it)", 1,
			func(args []string, _ bool) call {
				return call{method: http.MethodDelete, path: api.Path(api.Routers, args[0], "gateway")}
			}))
	return cmd
}

// routerVerb is a call on a router's sub-path; the router is shown after.
func routerVerb(g *globals, use, short string, nargs int, build func(args []string, noSNAT bool) call) *cobra.Command {
	var key string
	var noSNAT bool
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := build(args, noSNAT)
			c.idemKey = key
			return actAndShow(cmd.Context(), g, c, api.Path(api.Routers, args[0]), routers)
		},
	}
	if strings.HasPrefix(use, "set-gateway") {
		cmd.Flags().BoolVar(&noSNAT, "no-snat", false, "the router's subnets do not reach the outside through the gateway's address")
	}
	idemFlag(cmd, &key)
	return cmd
}

func floatingIPCmd(g *globals) *cobra.Command {
	cmd := g.group("floating-ip", "Manage floating IPs (addresses of an external network, translated to a port's)", "floating-ips", "fip")
	var key string
	create := &cobra.Command{
		Use:   "create NETWORK",
		Short: "Take an address of an external network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return createAndRead(cmd.Context(), g, floatingIPs, api.FloatingIPBody{Network: args[0]}, key, func(f api.FloatingIP) string { return f.ID })
		},
	}
	idemFlag(create, &key)
	var akey, dkey string
	associate := &cobra.Command{
		Use: "associate FLOATING_IP PORT", Short: "Point a floating IP at a port (a router with a gateway must reach the port's subnet)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := call{method: http.MethodPut, path: api.Path(api.FloatingIPs, args[0], "association"), body: api.FloatingIPAssociationBody{Port: args[1]}, idemKey: akey}
			return actAndShow(cmd.Context(), g, c, api.Path(api.FloatingIPs, args[0]), floatingIPs)
		},
	}
	idemFlag(associate, &akey)
	disassociate := &cobra.Command{
		Use: "disassociate FLOATING_IP", Short: "Point a floating IP nowhere", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := call{method: http.MethodDelete, path: api.Path(api.FloatingIPs, args[0], "association"), idemKey: dkey}
			return actAndShow(cmd.Context(), g, c, api.Path(api.FloatingIPs, args[0]), floatingIPs)
		},
	}
	idemFlag(disassociate, &dkey)
	cmd.AddCommand(create, listCmd(g, floatingIPs, "List floating IPs"), showCmd(g, floatingIPs, "Show a floating IP"),
		deleteCmd(g, floatingIPs, "Delete a floating IP (its address goes back)"), associate, disassociate)
	return cmd
}

// actAndShow makes a call, then shows the resource at path as the read
// model has it once it applied the call.
func actAndShow[T any](ctx context.Context, g *globals, c call, path string, r resource[T]) error {
	rep, err := g.client.doJSON(ctx, c, nil)
	if err != nil {
		return err
	}
	var v T
	back, err := g.settle(ctx, path, rep.seq, &v)
	if err != nil {
		return err
	}
	return g.emit(back.raw, func(w io.Writer) error { return r.show(ctx, w, v) })
}

func writeRouters(w io.Writer, items []api.Router) error {
	rows := make([][]string, 0, len(items))
	for _, r := range items {
		gw := ""
		if r.Gateway != nil {
			gw = r.Gateway.IP
		}
		rows = append(rows, []string{r.ID, r.Name, gw, strconv.Itoa(len(r.Interfaces)), fmtTime(r.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "GATEWAY", "INTERFACES", "CREATED"}, rows)
}

func writeFloatingIPs(w io.Writer, items []api.FloatingIP) error {
	rows := make([][]string, 0, len(items))
	for _, f := range items {
		rows = append(rows, []string{f.ID, f.IP, deref(f.FixedIP), deref(f.PortID), deref(f.RouterID)})
	}
	return writeTable(w, []string{"ID", "IP", "FIXED IP", "PORT", "ROUTER"}, rows)
}
