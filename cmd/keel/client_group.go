package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// maxMemberLookups bounds the server lookups `server-group show` makes to
// name its members.
const maxMemberLookups = 100

func serverGroupCmd(g *globals) *cobra.Command {
	cmd := g.group("server-group", "Manage server groups (affinity and anti-affinity)", "server-groups", "sg")
	cmd.AddCommand(groupCreateCmd(g),
		listCmd(g, groups(g), "List server groups (keel server-group show lists members)"),
		showCmd(g, groups(g), "Show a server group, its members and their hosts"),
		deleteCmd(g, groups(g), "Delete a server group without members"))
	return cmd
}

func groups(g *globals) resource[api.ServerGroup] {
	return resource[api.ServerGroup]{kind: "server group", path: api.ServerGroups, scoped: true, table: writeGroups,
		detail: func(ctx context.Context, w io.Writer, sg api.ServerGroup) error {
			return writeGroup(w, sg, g.memberNames(ctx, sg.Members))
		},
		filters: []filter{{flag: "name", meta: "NAME", usage: "only the group with this name"}}}
}

func groupCreateCmd(g *globals) *cobra.Command {
	var body api.GroupBody
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME --policy P [--max-per-host N]",
		Short: "Create a server group; servers join it with keel server create --group",
		Long: `Create a server group. Servers join it when created with
'keel server create --group NAME'. Policies:

  affinity             every member on one host, or the create fails
  anti-affinity        every member on a different host, or the create fails
  soft-affinity        prefer hosts with more members
  soft-anti-affinity   prefer hosts with fewer members

--max-per-host caps the members on one host (0: no cap); it does not apply
to hard affinity.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			// The answer is built from the command's result: the group is
			// read back so that it can be named right away.
			return createAndRead(cmd.Context(), g, groups(g), body, key, func(sg api.ServerGroup) string { return sg.ID })
		},
	}
	cmd.Flags().StringVar(&body.Policy, "policy", "", "affinity, anti-affinity, soft-affinity or soft-anti-affinity")
	cmd.Flags().IntVar(&body.MaxPerHost, "max-per-host", 0, "at most this many members on one host (0: no limit)")
	_ = cmd.MarkFlagRequired("policy")
	idemFlag(cmd, &key)
	return cmd
}

func (g *globals) memberNames(ctx context.Context, ms []api.GroupMember) map[string]string {
	names := map[string]string{}
	for i, m := range ms {
		if i == maxMemberLookups {
			break
		}
		var s api.Server
		if _, err := g.client.get(ctx, "/v1/servers/"+seg(m.ServerID), nil, 0, &s); err == nil {
			names[m.ServerID] = s.Name
		}
	}
	return names
}

func writeGroups(w io.Writer, items []api.ServerGroup) error {
	rows := make([][]string, 0, len(items))
	for _, sg := range items {
		rows = append(rows, []string{sg.ID, sg.Name, sg.Policy, maxPerHost(sg.Policy, sg.MaxPerHost), fmtTime(sg.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "POLICY", "MAX_PER_HOST", "CREATED"}, rows)
}

// writeGroup shows a group, then its members with their names (when
// names is not nil) and hosts.
func writeGroup(w io.Writer, sg api.ServerGroup, names map[string]string) error {
	err := writeFields(w, []field{
		{"ID", sg.ID}, {"NAME", sg.Name}, {"POLICY", sg.Policy}, {"MAX_PER_HOST", maxPerHost(sg.Policy, sg.MaxPerHost)},
		{"MEMBERS", itoa(len(sg.Members))}, {"HOSTS", memberHosts(sg.Members)}, {"CREATED", fmtTime(sg.CreatedAt)},
	})
	if err != nil || len(sg.Members) == 0 {
		return err
	}
	fmt.Fprintln(w)
	header := []string{"SERVER_ID", "HOST"}
	if names != nil {
		header = []string{"SERVER_ID", "NAME", "HOST"}
	}
	rows := make([][]string, 0, len(sg.Members))
	for _, m := range sg.Members {
		if names != nil {
			rows = append(rows, []string{m.ServerID, names[m.ServerID], m.Host})
		} else {
			rows = append(rows, []string{m.ServerID, m.Host})
		}
	}
	return writeTable(w, header, rows)
}

// memberHosts counts members per host: "sim-1 (2), sim-2 (1)".
func memberHosts(ms []api.GroupMember) string {
	count := map[string]int{}
	var hosts []string
	for _, m := range ms {
		if count[m.Host] == 0 {
			hosts = append(hosts, m.Host)
		}
		count[m.Host]++
	}
	slices.Sort(hosts)
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = fmt.Sprintf("%s (%d)", h, count[h])
	}
	return strings.Join(parts, ", ")
}

// maxPerHost shows a group's cap of members per host; hard anti-affinity
// caps at one whatever max_per_host says.
func maxPerHost(policy string, n int) string {
	switch {
	case policy == "anti-affinity":
		return "1"
	case n == 0:
		return "no limit"
	}
	return itoa(n)
}
