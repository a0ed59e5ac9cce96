package main

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// resource describes one kind of API resource to the commands every kind
// shares: list, show and delete are written once, here, not per resource.
type resource[T any] struct {
	kind string // in messages: "flavor m1 deleted"
	path string // the collection, e.g. api.Flavors
	// ref is what show and delete take (default "ID|NAME").
	ref string
	// whole: the list is one answer {items} (hosts, zones), not pages.
	whole bool
	// scoped: a project's resource, listed for the project of the token;
	// list takes --all-projects (cloud admins).
	scoped bool
	// filters are list flags sent as query parameters, in this order.
	filters []filter
	// table writes a list; detail writes one (nil: table of one).
	table  func(w io.Writer, items []T) error
	detail func(ctx context.Context, w io.Writer, v T) error
}

// filter is a list flag sent as a query parameter.
type filter struct {
	flag, meta, usage string
	param             string // default: flag
	// lookup, when set, turns what the user typed into the parameter.
	lookup func(ctx context.Context, v string) (string, error)
}

func (r resource[T]) refArg() string {
	if r.ref == "" {
		return "ID|NAME"
	}
	return r.ref
}

// listCmd is "list" of a resource: every page, as a table or as the API's
// JSON (one page with every item).
func listCmd[T any](g *globals, r resource[T], short string) *cobra.Command {
	values := make([]string, len(r.filters))
	var allProjects bool
	use := "list"
	for _, f := range r.filters {
		use += " [--" + f.flag + " " + f.meta + "]"
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := r.query(cmd.Context(), values)
			if err != nil {
				return err
			}
			if allProjects {
				q.Set("all_projects", "true")
			}
			items, raw, err := listOf[T](cmd.Context(), g, r, q)
			if err != nil {
				return err
			}
			return g.emit(raw, func(w io.Writer) error { return r.table(w, items) })
		},
	}
	for i, f := range r.filters {
		cmd.Flags().StringVar(&values[i], f.flag, "", f.usage)
	}
	if r.scoped {
		cmd.Use += " [--all-projects]"
		cmd.Flags().BoolVar(&allProjects, "all-projects", false, "every project's, not only the token's project's (cloud admins)")
	}
	return cmd
}

// query builds the list's query from its filters' values.
func (r resource[T]) query(ctx context.Context, values []string) (url.Values, error) {
	q := url.Values{}
	for i, f := range r.filters {
		v := values[i]
		if v != "" && f.lookup != nil {
			var err error
			if v, err = f.lookup(ctx, v); err != nil {
				return nil, err
			}
		}
		param := f.param
		if param == "" {
			param = f.flag
		}
		if v != "" {
			q.Set(param, v)
		}
	}
	return q, nil
}

// listOf reads a whole list and the JSON to print for it.
func listOf[T any](ctx context.Context, g *globals, r resource[T], q url.Values) ([]T, []byte, error) {
	if r.whole {
		var all api.List[T]
		rep, err := g.client.get(ctx, r.path, q, 0, &all)
		return all.Items, rep.raw, err
	}
	raws, raw, err := g.listAll(ctx, r.path, q)
	if err != nil {
		return nil, nil, err
	}
	items, err := decodeItems[T](raws)
	return items, raw, err
}

// showCmd is "show" of a resource.
func showCmd[T any](g *globals, r resource[T], short string) *cobra.Command {
	return &cobra.Command{
		Use:   "show " + r.refArg(),
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v T
			rep, err := g.client.get(cmd.Context(), r.path+"/"+seg(args[0]), nil, 0, &v)
			if err != nil {
				return err
			}
			return g.emit(rep.raw, func(w io.Writer) error { return r.show(cmd.Context(), w, v) })
		},
	}
}

func (r resource[T]) show(ctx context.Context, w io.Writer, v T) error {
	if r.detail != nil {
		return r.detail(ctx, w, v)
	}
	return r.table(w, []T{v})
}

// deleteCmd is "delete" of a resource whose delete is done at once (204).
func deleteCmd[T any](g *globals, r resource[T], short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:     "delete " + r.refArg(),
		Short:   short,
		Aliases: []string{"rm"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.deleteResource(cmd.Context(), r.kind, r.path+"/"+seg(args[0]), args[0], key)
		},
	}
	idemFlag(cmd, &key)
	return cmd
}

// createAndRead posts a body to a resource's collection, then reads the
// resource back once the read model has it (the answer is built from the
// command's result), so that the next command can name it at once.
func createAndRead[T any](ctx context.Context, g *globals, r resource[T], body any, key string, id func(T) string) error {
	var v T
	rep, err := g.client.doJSON(ctx, call{method: http.MethodPost, path: r.path, body: body, idemKey: key}, &v)
	if err != nil {
		return err
	}
	var read T
	if back, err := g.settle(ctx, r.path+"/"+seg(id(v)), rep.seq, &read); err != nil {
		g.settleNote(err)
	} else {
		rep, v = back, read
	}
	return g.emit(rep.raw, func(w io.Writer) error { return r.show(ctx, w, v) })
}
