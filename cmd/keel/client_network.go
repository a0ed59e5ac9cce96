package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// The networking commands: network, subnet, port and security-group share
// list, show and delete (client_resource.go); each declares its resource
// and its create.

var nameFilter = filter{flag: "name", meta: "NAME", usage: "only those with this name"}

var networks = resource[api.Network]{kind: "network", path: api.Networks, scoped: true, table: writeNetworks, filters: []filter{nameFilter},
	detail: func(_ context.Context, w io.Writer, n api.Network) error {
		return writeFields(w, []field{{"ID", n.ID}, {"NAME", n.Name}, {"KIND", n.Kind}, {"PHYSICAL NETWORK", deref(n.PhysicalNetwork)},
			{"VLAN", intOrEmpty(n.VLAN)}, {"EXTERNAL", strconv.FormatBool(n.External)}, {"MTU", strconv.Itoa(n.MTU)},
			{"SUBNETS", strings.Join(n.Subnets, ", ")}, {"PROJECT", n.ProjectID}, {"CREATED", fmtTime(n.CreatedAt)}})
	}}

var subnets = resource[api.Subnet]{kind: "subnet", path: api.Subnets, scoped: true, table: writeSubnets,
	filters: []filter{nameFilter, {flag: "network", meta: "NETWORK", usage: "only the subnets of this network (id or name)"}},
	detail: func(_ context.Context, w io.Writer, s api.Subnet) error {
		return writeFields(w, []field{{"ID", s.ID}, {"NAME", deref(s.Name)}, {"NETWORK", s.NetworkID}, {"CIDR", s.CIDR}, {"GATEWAY", deref(s.Gateway)},
			{"DHCP", strconv.FormatBool(s.DHCP)}, {"DNS", strings.Join(s.DNS, ", ")}, {"POOLS", pools(s.Pools)}, {"ROUTES", routes(s.Routes)},
			{"IN USE", strconv.Itoa(s.InUse)}, {"PROJECT", s.ProjectID}, {"CREATED", fmtTime(s.CreatedAt)}})
	}}

var ports = resource[api.Port]{kind: "port", path: api.Ports, scoped: true, table: writePorts,
	filters: []filter{nameFilter, {flag: "network", meta: "NETWORK", usage: "only the ports of this network (id or name)"},
		{flag: "security-group", param: "security_group", meta: "GROUP", usage: "only the ports in this security group (id or name)"}},
	detail: func(_ context.Context, w io.Writer, p api.Port) error {
		return writeFields(w, []field{{"ID", p.ID}, {"NAME", deref(p.Name)}, {"NETWORK", p.NetworkID}, {"MAC", p.MAC}, {"FIXED IPS", fixedIPs(p.FixedIPs)},
			{"SECURITY GROUPS", strings.Join(p.SecurityGroups, ", ")}, {"PORT SECURITY", strconv.FormatBool(p.PortSecurity)},
			{"DEVICE", strings.TrimSpace(deref(p.DeviceOwner) + " " + deref(p.DeviceID))}, {"HOST", deref(p.Host)},
			{"PROJECT", p.ProjectID}, {"CREATED", fmtTime(p.CreatedAt)}})
	}}

var securityGroups = resource[api.SecurityGroup]{kind: "security group", path: api.SecurityGroups, scoped: true, table: writeSecurityGroups,
	filters: []filter{nameFilter},
	detail: func(_ context.Context, w io.Writer, g api.SecurityGroup) error {
		if err := writeFields(w, []field{{"ID", g.ID}, {"NAME", g.Name}, {"DESCRIPTION", g.Description}, {"DEFAULT", strconv.FormatBool(g.Default)},
			{"PROJECT", g.ProjectID}, {"CREATED", fmtTime(g.CreatedAt)}}); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nRULES")
		return writeRules(w, g.Rules)
	}}

func networkCmd(g *globals) *cobra.Command {
	cmd := g.group("network", "Manage networks (a project's layer-2 networks)", "networks", "net")
	var body api.NetworkBody
	var key string
	create := &cobra.Command{
		Use:   "create NAME [--kind overlay|vlan|flat] [--physical-network P] [--vlan N] [--external] [--mtu N]",
		Short: "Create a network; give it a subnet before its ports",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			return createAndRead(cmd.Context(), g, networks, body, key, func(n api.Network) string { return n.ID })
		},
	}
	f := create.Flags()
	f.StringVar(&body.Kind, "kind", "", "overlay (the default), vlan or flat")
	f.StringVar(&body.PhysicalNetwork, "physical-network", "", "a provider network's physical network")
	f.IntVar(&body.VLAN, "vlan", 0, "a vlan network's VLAN id")
	f.BoolVar(&body.External, "external", false, "floating IPs come from it (provider networks only)")
	f.IntVar(&body.MTU, "mtu", 0, "MTU (default 1442 for an overlay, 1500 for a provider network)")
	idemFlag(create, &key)
	cmd.AddCommand(create, listCmd(g, networks, "List networks"), showCmd(g, networks, "Show a network"),
		deleteCmd(g, networks, "Delete a network without ports or subnets"))
	return cmd
}

func subnetCmd(g *globals) *cobra.Command {
	cmd := g.group("subnet", "Manage subnets (IPv4 ranges on a network that hand out its ports' addresses)", "subnets")
	var body api.SubnetBody
	var poolArgs, routeArgs []string
	var noDHCP bool
	var key string
	create := &cobra.Command{
		Use:   "create --network NETWORK --cidr CIDR [--name NAME] [--gateway IP|none] [--no-dhcp] [--dns IP]... [--pool START-END]... [--route DEST=NEXTHOP]...",
		Short: "Create a subnet on a network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if body.Pools, err = parsePools(poolArgs); err != nil {
				return err
			}
			if body.Routes, err = parseRoutes(routeArgs); err != nil {
				return err
			}
			if noDHCP {
				off := false
				body.DHCP = &off
			}
			return createAndRead(cmd.Context(), g, subnets, body, key, func(s api.Subnet) string { return s.ID })
		},
	}
	f := create.Flags()
	f.StringVar(&body.Network, "network", "", "the network (id or name)")
	f.StringVar(&body.CIDR, "cidr", "", "an IPv4 network from /16 to /30, e.g. 10.0.0.0/24")
	f.StringVar(&body.Name, "name", "", "a name")
	f.StringVar(&body.Gateway, "gateway", "", "the gateway (default: the first usable address; none: no gateway)")
	f.BoolVar(&noDHCP, "no-dhcp", false, "no DHCP on the subnet")
	f.StringSliceVar(&body.DNS, "dns", nil, "a DNS server DHCP gives out (repeat for more)")
	f.StringSliceVar(&poolArgs, "pool", nil, "an allocation pool START-END (repeat for more; default: every usable address but the gateway)")
	f.StringSliceVar(&routeArgs, "route", nil, "a host route DEST=NEXTHOP, e.g. 192.168.0.0/16=10.0.0.254")
	_ = create.MarkFlagRequired("network")
	_ = create.MarkFlagRequired("cidr")
	idemFlag(create, &key)
	cmd.AddCommand(create, listCmd(g, subnets, "List subnets"), showCmd(g, subnets, "Show a subnet and how many addresses it has handed out"),
		deleteCmd(g, subnets, "Delete a subnet no port holds an address of"))
	return cmd
}

func portCmd(g *globals) *cobra.Command {
	cmd := g.group("port", "Manage ports (network interfaces with a MAC and an address)", "ports")
	var body api.PortBody
	var noSecurity bool
	var key string
	create := &cobra.Command{
		Use:   "create --network NETWORK [--name NAME] [--subnet SUBNET] [--ip IP] [--security-group GROUP]... [--no-port-security]",
		Short: "Create a port with an address from the network's subnet",
		Long: `Create a port on a network. Its address comes from --subnet (default: the
network's first subnet): --ip, or the next free one. Without --security-group
it joins the project's default group (all egress, and ingress from the
group's members). A full subnet answers "subnet exhausted".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if noSecurity {
				off := false
				body.PortSecurity = &off
			}
			return createAndRead(cmd.Context(), g, ports, body, key, func(p api.Port) string { return p.ID })
		},
	}
	f := create.Flags()
	f.StringVar(&body.Network, "network", "", "the network (id or name)")
	f.StringVar(&body.Name, "name", "", "a name")
	f.StringVar(&body.Subnet, "subnet", "", "the subnet its address comes from (id or name)")
	f.StringVar(&body.IP, "ip", "", "the address to ask for")
	f.StringSliceVar(&body.SecurityGroups, "security-group", nil, "a security group to join (id or name; repeat for more)")
	f.BoolVar(&noSecurity, "no-port-security", false, "no security group applies and the port may use any address")
	_ = create.MarkFlagRequired("network")
	idemFlag(create, &key)
	cmd.AddCommand(create, listCmd(g, ports, "List ports"), showCmd(g, ports, "Show a port"),
		portGroupsCmd(g), deleteCmd(g, ports, "Delete a port (its address goes back to its subnet)"))
	return cmd
}

func portGroupsCmd(g *globals) *cobra.Command {
	var key string
	var none bool
	cmd := &cobra.Command{
		Use:   "set-security-groups PORT GROUP... | PORT --none",
		Short: "Replace a port's security groups (a server's NIC's too)",
		Long: `Put the port in exactly these security groups (ids or names) of its project;
the network adapter changes its memberships in OVN. --none takes it out of
every group: with port security on, it then takes no traffic.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if none != (len(args) == 1) {
				return errors.New("name the groups, or give --none to take the port out of every group")
			}
			body := api.PortSecurityGroupsBody{SecurityGroups: append([]string{}, args[1:]...)}
			c := call{method: http.MethodPut, path: api.Path(api.Ports, args[0], "security-groups"), body: body, idemKey: key}
			return actAndShow(cmd.Context(), g, c, api.Path(api.Ports, args[0]), ports)
		},
	}
	cmd.Flags().BoolVar(&none, "none", false, "no security group at all")
	idemFlag(cmd, &key)
	return cmd
}

func securityGroupCmd(g *globals) *cobra.Command {
	cmd := g.group("security-group", "Manage security groups and their rules", "security-groups", "secgroup")
	var body api.SecurityGroupBody
	var key string
	create := &cobra.Command{
		Use:   "create NAME [--description TEXT]",
		Short: "Create a security group (it allows all egress; add rules to let traffic in)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			return createAndRead(cmd.Context(), g, securityGroups, body, key, func(sg api.SecurityGroup) string { return sg.ID })
		},
	}
	create.Flags().StringVar(&body.Description, "description", "", "what the group is for")
	idemFlag(create, &key)
	cmd.AddCommand(create, listCmd(g, securityGroups, "List security groups"), showCmd(g, securityGroups, "Show a security group and its rules"),
		deleteCmd(g, securityGroups, "Delete a security group no port is in"), ruleCmd(g))
	return cmd
}

func ruleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rule", Short: "Add, list and remove a security group's rules", Aliases: []string{"rules"}}
	cmd.AddCommand(ruleAddCmd(g), ruleListCmd(g), ruleDeleteCmd(g))
	return cmd
}

func ruleAddCmd(g *globals) *cobra.Command {
	var body api.SecurityGroupRuleBody
	var portRange, key string
	cmd := &cobra.Command{
		Use:   "add GROUP --direction ingress|egress [--protocol P] [--port N[-M]] [--remote-cidr CIDR | --remote-group GROUP]",
		Short: "Allow traffic of one kind in one direction",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if body.PortMin, body.PortMax, err = parsePortRange(portRange); err != nil {
				return err
			}
			var r api.SecurityGroupRule
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPost, path: api.Path(api.SecurityGroups, args[0], "rules"), body: body, idemKey: key}, &r)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeRules(w, []api.SecurityGroupRule{r}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&body.Direction, "direction", "", "ingress or egress")
	f.StringVar(&body.Protocol, "protocol", "", "tcp, udp, icmp, any (the default) or a protocol number")
	f.StringVar(&portRange, "port", "", "tcp or udp destination port N, or range N-M")
	f.StringVar(&body.RemoteCIDR, "remote-cidr", "", "where traffic comes from (ingress) or goes to (egress)")
	f.StringVar(&body.RemoteGroup, "remote-group", "", "or: the members of this group (id or name)")
	f.StringVar(&body.Description, "description", "", "what the rule is for")
	_ = cmd.MarkFlagRequired("direction")
	idemFlag(cmd, &key)
	return cmd
}

func ruleListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list GROUP", Short: "List a security group's rules", Aliases: []string{"ls"}, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l api.List[api.SecurityGroupRule]
			rep, err := g.client.get(cmd.Context(), api.Path(api.SecurityGroups, args[0], "rules"), nil, 0, &l)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeRules(w, l.Items) })
		},
	}
}

func ruleDeleteCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "delete GROUP RULE_ID", Short: "Remove a rule from a security group", Aliases: []string{"rm"}, Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.deleteResource(cmd.Context(), "rule", api.Path(api.SecurityGroups, args[0], "rules", seg(args[1])), args[1], key)
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

func writeNetworks(w io.Writer, items []api.Network) error {
	rows := make([][]string, 0, len(items))
	for _, n := range items {
		rows = append(rows, []string{n.ID, n.Name, n.Kind, strconv.Itoa(len(n.Subnets)), strconv.Itoa(n.MTU), fmtTime(n.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "KIND", "SUBNETS", "MTU", "CREATED"}, rows)
}

func writeSubnets(w io.Writer, items []api.Subnet) error {
	rows := make([][]string, 0, len(items))
	for _, s := range items {
		rows = append(rows, []string{s.ID, deref(s.Name), s.NetworkID, s.CIDR, deref(s.Gateway), strconv.Itoa(s.InUse)})
	}
	return writeTable(w, []string{"ID", "NAME", "NETWORK", "CIDR", "GATEWAY", "IN USE"}, rows)
}

func writePorts(w io.Writer, items []api.Port) error {
	rows := make([][]string, 0, len(items))
	for _, p := range items {
		rows = append(rows, []string{p.ID, deref(p.Name), p.NetworkID, p.MAC, fixedIPs(p.FixedIPs), deref(p.DeviceID)})
	}
	return writeTable(w, []string{"ID", "NAME", "NETWORK", "MAC", "FIXED IPS", "DEVICE"}, rows)
}

func writeSecurityGroups(w io.Writer, items []api.SecurityGroup) error {
	rows := make([][]string, 0, len(items))
	for _, g := range items {
		rows = append(rows, []string{g.ID, g.Name, strconv.Itoa(len(g.Rules)), strconv.FormatBool(g.Default), g.Description})
	}
	return writeTable(w, []string{"ID", "NAME", "RULES", "DEFAULT", "DESCRIPTION"}, rows)
}

func writeRules(w io.Writer, items []api.SecurityGroupRule) error {
	rows := make([][]string, 0, len(items))
	for _, r := range items {
		span := ""
		if r.PortMin != 0 {
			span = fmt.Sprintf("%d-%d", r.PortMin, r.PortMax)
		}
		remote := r.RemoteCIDR
		if r.RemoteGroup != "" {
			remote = "group " + r.RemoteGroup
		}
		rows = append(rows, []string{r.ID, r.Direction, r.Protocol, span, remote})
	}
	return writeTable(w, []string{"ID", "DIRECTION", "PROTOCOL", "PORTS", "REMOTE"}, rows)
}

func fixedIPs(ips []api.FixedIP) string {
	out := make([]string, len(ips))
	for i, f := range ips {
		out[i] = f.IP
	}
	return strings.Join(out, ", ")
}

func pools(ps []api.Pool) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Start + "-" + p.End
	}
	return strings.Join(out, ", ")
}

func routes(rs []api.Route) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Destination + " via " + r.Nexthop
	}
	return strings.Join(out, ", ")
}

func intOrEmpty(n *int) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(*n)
}

func parsePools(args []string) ([]api.Pool, error) {
	var out []api.Pool
	for _, a := range args {
		start, end, ok := strings.Cut(a, "-")
		if !ok {
			return nil, fmt.Errorf("--pool %q: want START-END, e.g. 10.0.0.10-10.0.0.99", a)
		}
		out = append(out, api.Pool{Start: start, End: end})
	}
	return out, nil
}

func parseRoutes(args []string) ([]api.Route, error) {
	var out []api.Route
	for _, a := range args {
		dest, hop, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("--route %q: want DEST=NEXTHOP, e.g. 192.168.0.0/16=10.0.0.254", a)
		}
		out = append(out, api.Route{Destination: dest, Nexthop: hop})
	}
	return out, nil
}

// parsePortRange reads N or N-M ("" is every port).
func parsePortRange(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.Atoi(lo)
	last, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("--port %q: want a port N or a range N-M", s)
	}
	return first, last, nil
}
