package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// Every client command sends a bearer token: --token, else KEEL_TOKEN,
// else the one `keel login` saved for the API in use. Without --api and
// KEEL_API, the API in use is the saved login's.

// credentials is the login `keel login` saves (credentialsPath), mode 0600.
type credentials struct {
	API       string    `json:"api"`
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	User      string    `json:"user"`
	ProjectID string    `json:"project_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// credentialsPath is <user config dir>/keel/credentials.json.
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no directory to keep the login in: %w", err)
	}
	return filepath.Join(dir, "keel", "credentials.json"), nil
}

// insecureCredentialsError is a credentials file others may read: it is
// not used.
type insecureCredentialsError struct {
	path string
	mode fs.FileMode
}

func (e *insecureCredentialsError) Error() string {
	return fmt.Sprintf("the saved login %s has mode %04o: group or others may read it, so it is not used.\n"+
		"If no one else could have read it, run: chmod 600 %s\n"+
		"Else log in again (keel login replaces it) and revoke the old token (keel token list, keel token revoke ID)",
		e.path, e.mode.Perm(), e.path)
}

// readCredentials reads the saved login: nil without one. A file that
// group or others may read, or that does not hold a login, is an error.
func readCredentials(path string) (*credentials, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the saved login: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the saved login: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("the saved login %s is not a regular file: remove it and run keel login", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, &insecureCredentialsError{path: path, mode: st.Mode()}
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the saved login: %w", err)
	}
	var c credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("the saved login %s is not valid JSON (%v): run keel login to replace it", path, err)
	}
	if c.API == "" || c.Token == "" {
		return nil, fmt.Errorf("the saved login %s has no api or token: run keel login to replace it", path)
	}
	return &c, nil
}

// writeCredentials saves a login: to a 0600 file in a 0700 directory,
// renamed into place so that a reader never sees half of it.
func writeCredentials(path string, c credentials) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return err
	}
	err = func() error {
		if err := tmp.Chmod(0o600); err != nil {
			return err
		}
		if _, err := tmp.Write(append(raw, '\n')); err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		return tmp.Close()
	}()
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}
	return err
}

// authInfo is the API and token a command uses and where the token came
// from, to word the error when the API refuses it.
type authInfo struct {
	base      string
	token     string
	source    string       // "--token", "KEEL_TOKEN", "saved login" or "" (none)
	saved     *credentials // the saved login, when it was read
	savedPath string
}

// apiExplicit reports whether --api or KEEL_API names the API.
func apiExplicit(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("api") || os.Getenv("KEEL_API") != ""
}

// resolveAuth picks the API base and the token: --token, else KEEL_TOKEN,
// else the saved login when it is for that API. The saved login is read
// only when it is needed: for the token, or for the API when neither
// --api nor KEEL_API names one.
func (g *globals) resolveAuth(cmd *cobra.Command) (authInfo, error) {
	var a authInfo
	switch {
	case strings.TrimSpace(g.token) != "":
		a.token, a.source = strings.TrimSpace(g.token), "--token"
	case strings.TrimSpace(os.Getenv("KEEL_TOKEN")) != "":
		a.token, a.source = strings.TrimSpace(os.Getenv("KEEL_TOKEN")), "KEEL_TOKEN"
	}
	explicit := apiExplicit(cmd)
	if a.token == "" || !explicit {
		if path, err := credentialsPath(); err == nil {
			saved, err := readCredentials(path)
			if err != nil {
				return a, err
			}
			a.saved, a.savedPath = saved, path
		}
	}
	raw := g.api
	if !explicit && a.saved != nil {
		raw = a.saved.API
	}
	base, err := normalizeAPI(raw)
	if err != nil {
		return a, err
	}
	a.base = base
	if a.token == "" && a.saved != nil && a.saved.API == base {
		a.token, a.source = a.saved.Token, "saved login"
	}
	return a, nil
}

// notLoggedInError is a 401: no token, or one the API no longer takes.
type notLoggedInError struct {
	p    *problem
	hint string
}

func (e *notLoggedInError) Error() string {
	msg := "not logged in or the token is no longer valid: run keel login"
	if e.hint != "" {
		msg += "\n  " + e.hint
	}
	return msg + "\n  the API answered: " + e.p.Error()
}

func (e *notLoggedInError) Unwrap() error { return e.p }

// hint says, when the API refused the request for want of a token, what
// the CLI sent and why.
func (a authInfo) hint() string {
	switch a.source {
	case "--token":
		return "the token given with --token was refused; pass a valid one, or drop --token to use the saved login"
	case "KEEL_TOKEN":
		return "KEEL_TOKEN is set and comes before the saved login: set it to a valid token, or unset it"
	case "saved login":
		if !a.saved.ExpiresAt.IsZero() && time.Now().After(a.saved.ExpiresAt) {
			return "the saved login (" + a.saved.User + ") expired at " + fmtTime(a.saved.ExpiresAt)
		}
		return "the saved login (" + a.saved.User + ") was refused: revoked, or its user, role or project is gone"
	}
	if a.saved != nil && a.saved.API != a.base {
		return "the saved login is for " + a.saved.API + ", not " + a.base + "; pass --api " + a.saved.API + " to use it"
	}
	return ""
}

// prepareOutput checks --output and sets the writers.
func (g *globals) prepareOutput(cmd *cobra.Command) error {
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("--output must be table or json, not %q", g.output)
	}
	g.out, g.errOut = newTerminalWriter(cmd.OutOrStdout()), newTerminalWriter(cmd.ErrOrStderr())
	return nil
}

// parseExpiresIn reads a token lifetime (a Go duration such as 90m or
// 12h, or whole days such as 30d) as seconds; "" is 0, the API's default.
func parseExpiresIn(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 366 {
			return 0, fmt.Errorf("--expires-in %q: want a duration such as 90m, 12h or 30d (at most 366d)", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--expires-in %q: want a duration such as 90m, 12h or 30d (at most 366d)", s)
		}
	}
	switch {
	case d < time.Second:
		return 0, fmt.Errorf("--expires-in %q: a token must live at least 1s", s)
	case d > 366*24*time.Hour:
		return 0, fmt.Errorf("--expires-in %q: a token may live at most 366 days", s)
	}
	return int((d + time.Second - 1) / time.Second), nil
}

func loginCmd(g *globals) *cobra.Command {
	var user, project, expiresIn string
	var passwordStdin, readOnly bool
	cmd := &cobra.Command{
		Use:   "login [--user NAME] [--project ID|NAME] [--password-stdin] [--read-only] [--expires-in DURATION]",
		Short: "Log in with a password; the other commands then send the token it gets",
		Long: `Log in to the API with a user name and password. The token the API issues
is saved, for the other commands to send, to
<user config dir>/keel/credentials.json (mode 0600), with the API it is for;
without --api and KEEL_API, the commands then talk to that API.

The user is --user, else KEEL_USER, else asked. The password is one line of
stdin with --password-stdin, else KEEL_PASSWORD, else asked on the terminal
without echo. The token acts in --project (id or name); by default in the
admin project for cloud admins, else in the user's only project.

--token and KEEL_TOKEN, when given, come before the saved login.

  keel login --user alice --project dev
  printf '%s\n' "$PW" | keel login --user ci --password-stdin --expires-in 1h`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.prepareLogin(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			secs, err := parseExpiresIn(expiresIn)
			if err != nil {
				return err
			}
			in := newPrompter(cmd.InOrStdin(), g.errOut)
			if user == "" {
				user = os.Getenv("KEEL_USER")
			}
			if user == "" && passwordStdin {
				return errors.New("--password-stdin reads the password from stdin: name the user with --user or KEEL_USER")
			}
			if user == "" {
				if user, err = in.ask("User: "); errors.Is(err, errNoTerminal) {
					return errors.New("no user: pass --user NAME or set KEEL_USER")
				} else if err != nil {
					return err
				}
				if user == "" {
					return errors.New("no user given")
				}
			}
			base := g.client.c.BaseURL
			password, err := in.password(passwordSource{stdin: passwordStdin, env: "KEEL_PASSWORD",
				question: fmt.Sprintf("Password for %s at %s: ", user, base)})
			if err != nil {
				return err
			}
			return g.login(cmd.Context(), api.TokenBody{User: user, Password: password, Project: project, ExpiresIn: secs, ReadOnly: readOnly})
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "user name (default: env KEEL_USER, else asked)")
	f.StringVar(&project, "project", "", "project (id or name) to act in (default: the admin project for cloud admins, else your only project)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.BoolVar(&readOnly, "read-only", false, "the token may only read")
	f.StringVar(&expiresIn, "expires-in", "", "token lifetime, e.g. 90m, 12h, 30d (default: the API's, 12h; at most 366d)")
	return cmd
}

// prepareLogin is prepare for keel login: the API as for every command,
// and no token (a login sends a password). A saved login that others may
// read is not an obstacle: the new one replaces it.
func (g *globals) prepareLogin(cmd *cobra.Command) error {
	if err := g.prepareOutput(cmd); err != nil {
		return err
	}
	raw := g.api
	if !apiExplicit(cmd) {
		if path, err := credentialsPath(); err == nil {
			saved, err := readCredentials(path)
			var insecure *insecureCredentialsError
			switch {
			case errors.As(err, &insecure):
				fmt.Fprintf(g.errOut, "note: %s may be read by others (mode %04o); it is not used, and this login replaces it\n", path, insecure.mode.Perm())
			case err != nil:
				fmt.Fprintf(g.errOut, "note: %v\n", firstLine(err.Error(), 300))
			case saved != nil:
				raw = saved.API
			}
		}
	}
	base, err := normalizeAPI(raw)
	if err != nil {
		return err
	}
	g.client = newAPIClient(base)
	return nil
}

// loginResult is what keel login -o json prints: never the secret.
type loginResult struct {
	API        string    `json:"api"`
	User       string    `json:"user"`
	ProjectID  string    `json:"project_id"`
	Role       string    `json:"role,omitempty"`
	CloudAdmin bool      `json:"cloud_admin"`
	ReadOnly   bool      `json:"read_only"`
	TokenID    string    `json:"token_id"`
	ExpiresAt  time.Time `json:"expires_at"`
	Saved      string    `json:"credentials_file"`
}

// login asks for a token, saves it and says who it stands for.
func (g *globals) login(ctx context.Context, body api.TokenBody) error {
	base := g.client.c.BaseURL
	var it api.IssuedToken
	_, err := g.client.c.WithToken("").Do(ctx, api.Request{Method: http.MethodPost, Path: api.Tokens, Body: body}, &it)
	if err != nil {
		err = g.client.explainRaw(err)
		if isStatus(err, http.StatusUnauthorized) {
			return fmt.Errorf("login to %s refused: %w", base, err)
		}
		return err
	}
	if it.Secret == "" || it.ID == "" {
		return errors.New("the API answered the login without a token")
	}
	authed := g.client.c.WithToken(it.Secret)
	var who api.Whoami
	_, whoErr := authed.Do(ctx, api.Request{Method: http.MethodGet, Path: api.WhoamiPath}, &who)
	whoErr = g.client.explainRaw(whoErr)
	creds := credentials{API: base, Token: it.Secret, TokenID: it.ID, User: body.User, ProjectID: it.ProjectID, ExpiresAt: it.ExpiresAt}
	if whoErr == nil && who.UserName != "" {
		creds.User = who.UserName
	}
	path, err := credentialsPath()
	if err == nil {
		err = writeCredentials(path, creds)
	}
	if err != nil {
		// A token no one kept is of no use to anyone: end it.
		if _, rerr := authed.Do(context.WithoutCancel(ctx), api.Request{Method: http.MethodDelete, Path: api.Path(api.Tokens, it.ID)}, nil); rerr != nil {
			rerr = g.client.explainRaw(rerr)
			return fmt.Errorf("logged in, but could not save the login (%v); revoking the token failed too (%v): it stays valid until %s",
				err, firstLine(rerr.Error(), 200), fmtTime(it.ExpiresAt))
		}
		return fmt.Errorf("logged in, but could not save the login (%w); the token was revoked", err)
	}
	res := loginResult{API: base, User: creds.User, ProjectID: it.ProjectID, ReadOnly: it.ReadOnly, TokenID: it.ID, ExpiresAt: it.ExpiresAt, Saved: path}
	if whoErr == nil {
		res.Role, res.CloudAdmin, res.ReadOnly = who.Role, who.CloudAdmin, who.ReadOnly
	}
	if g.json() {
		raw, err := json.Marshal(res)
		if err != nil {
			return err
		}
		return writeIndented(g.out, raw)
	}
	var role string
	switch {
	case whoErr != nil:
		role = "role unknown: " + firstLine(whoErr.Error(), 200)
	case who.CloudAdmin:
		role = "role " + who.Role + ", cloud admin"
	default:
		role = "role " + who.Role + ", not a cloud admin"
	}
	if res.ReadOnly {
		role += ", read-only"
	}
	fmt.Fprintf(g.out, "logged in as %s in project %s (%s), token expires at %s, saved to %s\n",
		res.User, res.ProjectID, role, fmtTime(res.ExpiresAt), path)
	return nil
}

func logoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved login's token and forget it",
		Long: `Revoke the token keel login saved (at the API it was issued by) and remove
the saved login. A token the API already refuses (expired, revoked) is
only forgotten. When the revoke fails otherwise (the API cannot be reached,
or refuses it) the login is kept, to retry.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.prepareOutput(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := credentialsPath()
			if err != nil {
				return err
			}
			saved, err := readCredentials(path)
			if err != nil {
				return err
			}
			if saved == nil {
				fmt.Fprintf(g.errOut, "not logged in: no saved login at %s\n", path)
				return nil
			}
			what := "the token was revoked"
			if saved.TokenID == "" {
				what = "the token was not revoked (its id was not saved); it stays valid until " + fmtTime(saved.ExpiresAt)
			} else {
				c := newAPIClient(saved.API)
				c.c.Token = saved.Token
				_, err := c.doJSON(cmd.Context(), call{method: http.MethodDelete, path: api.Path(api.Tokens, saved.TokenID)}, nil)
				// A 401 says that the token no longer holds: nothing to
				// revoke. Anything else (a 404 too: the token has just
				// authenticated, so it exists) leaves it valid.
				switch {
				case err == nil:
				case isStatus(err, http.StatusUnauthorized):
					what = "the API no longer took the token (expired or revoked)"
				default:
					return fmt.Errorf("could not revoke the saved login's token at %s, so the login is kept: retry keel logout, "+
						"or remove %s to forget it anyway (the token then stays valid until %s).\n  %w",
						saved.API, path, fmtTime(saved.ExpiresAt), err)
				}
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s, but removing %s failed: %w", what, path, err)
			}
			fmt.Fprintf(g.out, "logged out of %s: %s; removed %s\n", saved.API, what, path)
			return nil
		},
	}
}

func whoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show the user, project, role and token the API sees",
		Args:    cobra.NoArgs,
		PreRunE: g.prepare,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var who api.Whoami
			rep, err := g.client.get(cmd.Context(), api.WhoamiPath, nil, 0, &who)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return writeWhoami(w, who) })
		},
	}
}

func writeWhoami(w io.Writer, who api.Whoami) error {
	return writeFields(w, []field{{"USER", who.UserName}, {"USER ID", who.UserID}, {"PROJECT", who.ProjectID},
		{"ROLE", who.Role}, {"CLOUD ADMIN", yesNo(who.CloudAdmin)}, {"READ ONLY", yesNo(who.ReadOnly)},
		{"TOKEN", who.TokenID}, {"EXPIRES", fmtTime(who.ExpiresAt)}})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
