package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/billing"
)

// MaxUsageWindow bounds the window of one usage query.
const MaxUsageWindow = 366 * 24 * time.Hour

// UsageOutput is a project's usage over a window.
type UsageOutput struct{ Body api.Usage }

func (a *API) registerUsage(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "get-usage", Method: http.MethodGet, Path: api.UsagePath,
		Summary: "Show a project's usage", Tags: []string{"usage"},
		Description: "How long each server of a project ran (power RUNNING) within [from, to), by server and flavor, to the second, " +
			"with hours, vCPU-hours, RAM GiB-hours and the cost from keel serve's price table. Each running interval is clipped to the window; " +
			"one still running counts up to now. Read from the event log's usage projection, so a rebuild gives the same figures. " +
			"Defaults: the token's project, from the start of the current UTC month to now. Cloud admins may name any project."},
		a.getUsage)
}

// UsageParams pick the project and window.
type UsageParams struct {
	Project string `query:"project" maxLength:"255" doc:"Project id or name (default: the token's); another project than the token's is for cloud admins"`
	From    string `query:"from" maxLength:"64" doc:"Start of the window, included: RFC 3339 or a UTC date (2006-01-02); default the start of the current UTC month"`
	To      string `query:"to" maxLength:"64" doc:"End of the window, excluded: RFC 3339 or a UTC date; default now"`
}

func (a *API) getUsage(ctx context.Context, in *struct {
	ReadAfter
	UsageParams
}) (*UsageOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	from, to, err := usageWindow(in.From, in.To, now)
	if err != nil {
		return nil, problem(ctx, http.StatusBadRequest, err.Error())
	}
	project, err := a.usageProject(ctx, in.Project)
	if err != nil {
		return nil, err
	}
	us, err := a.Read.Usage(ctx, project, from, to, now)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &UsageOutput{Body: usageOut(project, from, to, a.Prices.Bill(us))}, nil
}

// usageProject is the project a usage query reads: the caller's, or the
// one named, which only a cloud admin may name unless it is their own
// (for others another project is not found, as any of its resources).
func (a *API) usageProject(ctx context.Context, ref string) (string, error) {
	p, _ := principalFrom(ctx)
	if ref == "" {
		return p.Project, nil
	}
	id, err := a.projectID(ctx, ref)
	if err != nil {
		return "", err
	}
	if !p.CloudAdmin && id != p.Project {
		return "", notFound(ctx, "project", ref)
	}
	return id, nil
}

// usageWindow parses and checks a usage window; the errors are the user's.
func usageWindow(fromArg, toArg string, now time.Time) (from, to time.Time, err error) {
	from = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	to = now
	if fromArg != "" {
		if from, err = parseWhen("from", fromArg); err != nil {
			return
		}
	}
	if toArg != "" {
		if to, err = parseWhen("to", toArg); err != nil {
			return
		}
	}
	switch {
	case !from.Before(to):
		err = fmt.Errorf("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.Sub(from) > MaxUsageWindow:
		err = fmt.Errorf("the window from %s to %s is longer than 366 days; ask for a shorter one", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from.UTC(), to.UTC(), err
}

// parseWhen reads an RFC 3339 time or a date (midnight UTC).
func parseWhen(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time: give RFC 3339 (2025-03-01T00:00:00Z) or a UTC date (2025-03-01)", name, s)
}

func usageOut(project string, from, to time.Time, b billing.Bill) api.Usage {
	out := api.Usage{ProjectID: project, From: from, To: to, Currency: b.Currency, Lines: make([]api.UsageLine, 0, len(b.Lines)),
		Totals: api.UsageTotals{ServerHours: b.Totals.ServerHours, VCPUHours: b.Totals.VCPUHours, RAMGiBHours: b.Totals.RAMGiBHours, Cost: b.Totals.Cost}}
	for _, l := range b.Lines {
		f := l.Flavor
		out.Lines = append(out.Lines, api.UsageLine{ResourceType: l.ResourceType, ResourceID: l.ResourceID, Name: l.Name,
			Flavor:  api.UsageFlavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAMMiB},
			Seconds: l.Seconds, Hours: l.Hours, VCPUHours: l.VCPUHours, RAMGiBHours: l.RAMGiBHours, Cost: l.Cost})
	}
	return out
}
