package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// roles are the roles a user may have in a project.
var roles = []string{"reader", "member", "admin"}

func checkRole(role string) error {
	for _, r := range roles {
		if role == r {
			return nil
		}
	}
	return fmt.Errorf("role %q: want reader (reads), member (also changes) or admin (also manages members)", role)
}

// Projects.

func projectCmd(g *globals) *cobra.Command {
	cmd := g.group("project", "Manage projects (tenants) and their members", "projects")
	cmd.AddCommand(projectCreateCmd(g),
		listCmd(g, projects, "List projects (yours; every project for cloud admins)"),
		showCmd(g, projects, "Show a project"),
		deleteCmd(g, projects, "Delete a project that owns nothing any more (cloud admins)"),
		projectMembersCmd(g), projectGrantCmd(g), projectRevokeCmd(g))
	return cmd
}

var projects = resource[api.Project]{kind: "project", path: api.Projects, table: writeProjects,
	detail: func(_ context.Context, w io.Writer, p api.Project) error {
		return writeFields(w, []field{{"ID", p.ID}, {"NAME", p.Name}, {"DESCRIPTION", p.Description}, {"CREATED", fmtTime(p.CreatedAt)}})
	},
	filters: []filter{{flag: "name", meta: "NAME", usage: "only the project with this name"}}}

func projectCreateCmd(g *globals) *cobra.Command {
	var body api.ProjectBody
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME [--description TEXT]",
		Short: "Create a project (cloud admins); give users roles in it with keel project grant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			return createAndRead(cmd.Context(), g, projects, body, key, func(p api.Project) string { return p.ID })
		},
	}
	cmd.Flags().StringVar(&body.Description, "description", "", "what the project is for")
	idemFlag(cmd, &key)
	return cmd
}

func membersPath(project string) string { return api.Path(api.Projects, project, "members") }

func projectMembersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "members PROJECT",
		Short:   "List a project's members and their roles",
		Aliases: []string{"member"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list api.MemberList
			rep, err := g.client.get(cmd.Context(), membersPath(args[0]), nil, 0, &list)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeMembers(w, list.Items) })
		},
	}
}

func projectGrantCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "grant PROJECT USER ROLE",
		Short: "Give a user a role in a project: reader, member or admin (replaces any role they had there)",
		Long: `Give a user a role in a project, replacing any role they had there:
  reader   reads the project's resources
  member   also creates, changes and deletes them
  admin    also manages the project's members
Project admins grant in the project of their token; cloud admins in any.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, user, role := args[0], args[1], args[2]
			if err := checkRole(role); err != nil {
				return err
			}
			var m api.Member
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPut, path: membersPath(project) + "/" + seg(user),
				body: api.MemberBody{Role: role}}, &m)
			if err != nil {
				return err
			}
			g.settleMembers(cmd.Context(), project, rep.seq)
			if g.json() {
				return writeIndented(g.out, rep.raw)
			}
			fmt.Fprintf(g.out, "user %s is now %s in project %s\n", user, role, project)
			return nil
		},
	}
}

func projectRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke PROJECT USER",
		Short: "Take a user's role in a project away (their tokens for it stop working)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, user := args[0], args[1]
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodDelete, path: membersPath(project) + "/" + seg(user)}, nil)
			if err != nil {
				return err
			}
			g.settleMembers(cmd.Context(), project, rep.seq)
			if !g.json() {
				fmt.Fprintf(g.out, "user %s no longer has a role in project %s\n", user, project)
			}
			return nil
		},
	}
}

// settleMembers waits until a project's member list shows a change. One
// who took their own role away can no longer read it: that is no failure.
func (g *globals) settleMembers(ctx context.Context, project string, seq uint64) {
	if _, err := g.settle(ctx, membersPath(project), seq, nil); err != nil && !isStatus(err, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound) {
		g.settleNote(err)
	}
}

func writeProjects(w io.Writer, items []api.Project) error {
	rows := make([][]string, 0, len(items))
	for _, p := range items {
		rows = append(rows, []string{p.ID, p.Name, p.Description, fmtTime(p.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "DESCRIPTION", "CREATED"}, rows)
}

func writeMembers(w io.Writer, items []api.Member) error {
	rows := make([][]string, 0, len(items))
	for _, m := range items {
		rows = append(rows, []string{m.UserName, m.UserID, m.Role, fmtTime(m.GrantedAt)})
	}
	return writeTable(w, []string{"USER", "USER_ID", "ROLE", "GRANTED"}, rows)
}

// Users.

func userCmd(g *globals) *cobra.Command {
	cmd := g.group("user", "Manage users and passwords", "users")
	cmd.AddCommand(userCreateCmd(g),
		listCmd(g, users, "List users and their roles (cloud admins)"),
		showCmd(g, users, "Show a user and their roles (yourself; anyone for cloud admins)"),
		deleteCmd(g, users, "Delete a user (cloud admins); their tokens stop working"),
		userPasswordCmd(g))
	return cmd
}

var users = resource[api.User]{kind: "user", path: api.Users, table: writeUsers,
	detail: func(_ context.Context, w io.Writer, u api.User) error {
		return writeFields(w, []field{{"ID", u.ID}, {"NAME", u.Name}, {"ROLES", fmtRoles(u.Roles)}, {"CREATED", fmtTime(u.CreatedAt)}})
	},
	filters: []filter{{flag: "name", meta: "NAME", usage: "only the user with this name"}}}

func userCreateCmd(g *globals) *cobra.Command {
	var body api.UserBody
	var passwordStdin bool
	var key string
	cmd := &cobra.Command{
		Use:   "create NAME [--project ID|NAME [--role ROLE]] [--password-stdin]",
		Short: "Create a user (cloud admins), optionally with a role in a project",
		Long: `Create a user who logs in with keel login. The password (at least 12
characters) is asked twice on the terminal, or is the first line of stdin
with --password-stdin, or KEEL_NEW_PASSWORD for scripts. With --project the user gets --role there (reader,
member or admin; default member); else give one with keel project grant.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if body.Role != "" {
				if body.Project == "" {
					return errors.New("--role needs --project: the project to give the role in")
				}
				if err := checkRole(body.Role); err != nil {
					return err
				}
			}
			body.Name = args[0]
			pw, err := newPrompter(cmd.InOrStdin(), g.errOut).password(passwordSource{stdin: passwordStdin, env: "KEEL_NEW_PASSWORD",
				question: "Password for the new user " + body.Name + ": ", confirm: true})
			if err != nil {
				return err
			}
			body.Password = pw
			return createAndRead(cmd.Context(), g, users, body, key, func(u api.User) string { return u.ID })
		},
	}
	cmd.Flags().StringVar(&body.Project, "project", "", "project (id or name) to give the user a role in")
	cmd.Flags().StringVar(&body.Role, "role", "", "the role in --project: reader, member or admin (default member)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	idemFlag(cmd, &key)
	return cmd
}

func userPasswordCmd(g *globals) *cobra.Command {
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "password NAME [--password-stdin]",
		Short: "Change a password: your own (giving the present one), or anyone's for cloud admins",
		Long: `Change a user's password. The new one is the first line of stdin with
--password-stdin, else KEEL_NEW_PASSWORD, else asked twice on the terminal.
Changing your own also needs the present one: KEEL_CURRENT_PASSWORD, else
asked. Tokens already issued keep working until they expire or are revoked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			var who api.Whoami
			if _, err := g.client.get(ctx, api.WhoamiPath, nil, 0, &who); err != nil {
				return err
			}
			in := newPrompter(cmd.InOrStdin(), g.errOut)
			var body api.PasswordBody
			if name == who.UserName || name == who.UserID {
				cur, err := in.password(passwordSource{env: "KEEL_CURRENT_PASSWORD", question: "Current password: "})
				if errors.Is(err, errNoTerminal) || (err != nil && passwordStdin) {
					return errors.New("changing your own password needs the present one: set KEEL_CURRENT_PASSWORD")
				}
				if err != nil {
					return err
				}
				body.Current = cur
			}
			pw, err := in.password(passwordSource{stdin: passwordStdin, env: "KEEL_NEW_PASSWORD",
				question: "New password for " + name + ": ", confirm: true})
			if err != nil {
				return err
			}
			body.Password = pw
			if _, err := g.client.doJSON(ctx, call{method: http.MethodPut, path: api.Path(api.Users, name, "password"), body: body}, nil); err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(g.out, "password of user %s changed; tokens already issued keep working until they expire or are revoked\n", name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from the first line of stdin")
	return cmd
}

// fmtRoles shows a user's roles as "project:role,...".
func fmtRoles(ms []api.Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.ProjectID + ":" + m.Role
	}
	return strings.Join(parts, ",")
}

func writeUsers(w io.Writer, items []api.User) error {
	rows := make([][]string, 0, len(items))
	for _, u := range items {
		rows = append(rows, []string{u.ID, u.Name, fmtRoles(u.Roles), fmtTime(u.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "ROLES", "CREATED"}, rows)
}

// Tokens.

func tokenCmd(g *globals) *cobra.Command {
	cmd := g.group("token", "Manage your API tokens (keel login makes one)", "tokens")
	cmd.AddCommand(tokenListCmd(g), tokenCreateCmd(g), tokenRevokeCmd(g))
	return cmd
}

var tokens = resource[api.Token]{kind: "token", path: api.Tokens, table: writeTokens}

func tokenListCmd(g *globals) *cobra.Command {
	var live, all bool
	cmd := &cobra.Command{
		Use:     "list [--live] [--all-users]",
		Short:   "List your tokens (never their secrets)",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := query("live", boolParam(live), "all_projects", boolParam(all))
			items, raw, err := listOf(cmd.Context(), g, tokens, q)
			if err != nil {
				return err
			}
			return g.emit(raw, func(w io.Writer) error { return writeTokens(w, items) })
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "leave out revoked and expired tokens")
	cmd.Flags().BoolVar(&all, "all-users", false, "every user's tokens (cloud admins)")
	return cmd
}

func boolParam(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var body api.TokenBody
	var expiresIn string
	cmd := &cobra.Command{
		Use:   "create [--name NAME] [--project ID|NAME] [--read-only] [--expires-in DURATION]",
		Short: "Issue yourself another token, e.g. for a script (its secret is shown once)",
		Long: `Issue yourself another token, at most as strong as the one you use (a
read-only token issues read-only tokens). Its secret is printed once: Keel
keeps only its hash. Give it to a script as KEEL_TOKEN.

  keel token create --name backup --read-only --expires-in 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if body.ExpiresIn, err = parseExpiresIn(expiresIn); err != nil {
				return err
			}
			if g.client.c.Token == "" {
				return errors.New("a token is issued to someone logged in: run keel login first (or pass --token)")
			}
			var it api.IssuedToken
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPost, path: api.Tokens, body: body}, &it)
			if err != nil {
				return err
			}
			if it.Secret == "" {
				return errors.New("the API answered without the token's secret")
			}
			fmt.Fprintln(g.errOut, "The token's secret is shown once, now: Keel keeps only its hash. Store it (e.g. as KEEL_TOKEN for a script).")
			return g.emit(rep.raw, func(w io.Writer) error {
				return writeFields(w, []field{{"ID", it.ID}, {"NAME", it.Name}, {"PROJECT", it.ProjectID},
					{"READ ONLY", yesNo(it.ReadOnly)}, {"EXPIRES", fmtTime(it.ExpiresAt)}, {"TOKEN", it.Secret}})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&body.Name, "name", "", "what the token is for (default: api)")
	f.StringVar(&body.Project, "project", "", "project (id or name) it acts in (default: that of the token you use)")
	f.BoolVar(&body.ReadOnly, "read-only", false, "the token may only read")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime, e.g. 90m, 12h, 30d (default 12h; at most 366d)")
	return cmd
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !isUUID(id) {
				return fmt.Errorf("token id %q is not a UUID: see the ID column of keel token list", id)
			}
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodDelete, path: api.Path(api.Tokens, id)}, nil)
			if err != nil {
				return err
			}
			own := g.client.auth.source == "saved login" && g.client.auth.saved.TokenID == id
			// Read the revocation back, so that keel token list --live no
			// longer shows it; with the token just revoked, that is a 401.
			if !own {
				if _, err := g.settle(cmd.Context(), api.Tokens, rep.seq, nil); err != nil && !isStatus(err, http.StatusUnauthorized) {
					g.settleNote(err)
				}
			}
			if !g.json() {
				fmt.Fprintf(g.out, "token %s revoked\n", id)
				if own {
					fmt.Fprintln(g.errOut, "That was the saved login's token: run keel login to log in again.")
				}
			}
			return nil
		},
	}
}

// tokenState is live, expired or revoked.
func tokenState(t api.Token) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(time.Now()):
		return "expired"
	}
	return "live"
}

func writeTokens(w io.Writer, items []api.Token) error {
	rows := make([][]string, 0, len(items))
	for _, t := range items {
		rows = append(rows, []string{t.ID, t.Name, t.ProjectID, yesNo(t.ReadOnly), tokenState(t), fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "PROJECT", "READ_ONLY", "STATE", "CREATED", "EXPIRES"}, rows)
}

// Quotas.

func quotaCmd(g *globals) *cobra.Command {
	cmd := g.group("quota", "Show and change a project's quotas", "quotas")
	cmd.AddCommand(&cobra.Command{
		Use:   "show PROJECT",
		Short: "Show each resource's limit and what the project holds now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q api.Quotas
			rep, err := g.client.get(cmd.Context(), api.Path(api.Projects, args[0], "quotas"), nil, 0, &q)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeQuotas(w, q) })
		},
	}, &cobra.Command{
		Use:   "set PROJECT RESOURCE=LIMIT...",
		Short: "Set limits (cloud admins): servers, vcpus, ram_mib, ...; -1 removes one",
		Long: `Set a project's limits, e.g. keel quota set web-team servers=10 vcpus=40 ram_mib=81920.
-1 removes a limit; resources not named keep theirs. A limit below what the
project holds now holds back new servers only.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseKV("limit", args[1:], kvNeedValue)
			if err != nil {
				return err
			}
			body := api.QuotasBody{Limits: map[string]int{}}
			for k, v := range kv {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("limit %s=%s: want a whole number (-1: no limit)", k, v)
				}
				body.Limits[k] = n
			}
			var q api.Quotas
			rep, err := g.client.doJSON(cmd.Context(), call{method: http.MethodPut, path: api.Path(api.Projects, args[0], "quotas"), body: body}, &q)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeQuotas(w, q) })
		},
	})
	return cmd
}

func writeQuotas(w io.Writer, q api.Quotas) error {
	rows := make([][]string, 0, len(q.Items))
	for _, it := range q.Items {
		limit := "-"
		if it.Limit != nil {
			limit = strconv.Itoa(*it.Limit)
		}
		rows = append(rows, []string{it.Resource, limit, strconv.Itoa(it.InUse)})
	}
	return writeTable(w, []string{"RESOURCE", "LIMIT", "IN_USE"}, rows)
}
