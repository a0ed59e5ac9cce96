package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain/secgroup"
)

// SecurityGroupOutput is one security group.
type SecurityGroupOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.SecurityGroup
}

// RuleOutput is one security group rule.
type RuleOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.SecurityGroupRule
}

// RuleParams name a rule of a group.
type RuleParams struct {
	RefParam
	RuleID string `path:"rule_id" maxLength:"64" doc:"The rule's id"`
}

func (a *API) registerSecurityGroups(hapi huma.API) {
	tags := []string{"security-groups"}
	path := api.SecurityGroups + "/{id}"
	huma.Register(hapi, huma.Operation{OperationID: "create-security-group", Method: http.MethodPost, Path: api.SecurityGroups,
		Summary: "Create a security group", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A group of the caller's project with one rule, all egress; add ingress rules to let traffic in. Counts against the project's security_groups quota."},
		a.createSecurityGroup)
	huma.Register(hapi, huma.Operation{OperationID: "list-security-groups", Method: http.MethodGet, Path: api.SecurityGroups,
		Summary: "List security groups", Description: "Security groups with their rules, a page at a time; filter by exact name.", Tags: tags}, a.listSecurityGroups)
	huma.Register(hapi, huma.Operation{OperationID: "get-security-group", Method: http.MethodGet, Path: path,
		Summary: "Show a security group", Description: "One group by id or name, with its rules.", Tags: tags}, a.getSecurityGroup)
	huma.Register(hapi, huma.Operation{OperationID: "delete-security-group", Method: http.MethodDelete, Path: path,
		Summary: "Delete a security group", Description: "409 while ports are in it, and for the project's default group.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteSecurityGroup)
	huma.Register(hapi, huma.Operation{OperationID: "create-security-group-rule", Method: http.MethodPost, Path: path + "/rules",
		Summary: "Add a rule to a security group", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "409 when the group has a rule that allows the same traffic."}, a.createRule)
	huma.Register(hapi, huma.Operation{OperationID: "list-security-group-rules", Method: http.MethodGet, Path: path + "/rules",
		Summary: "List a security group's rules", Description: "Every rule of the group (at most 500), in the order they were added.", Tags: tags}, a.listRules)
	huma.Register(hapi, huma.Operation{OperationID: "get-security-group-rule", Method: http.MethodGet, Path: path + "/rules/{rule_id}",
		Summary: "Show a security group rule", Description: "One rule of a group.", Tags: tags}, a.getRule)
	huma.Register(hapi, huma.Operation{OperationID: "delete-security-group-rule", Method: http.MethodDelete, Path: path + "/rules/{rule_id}",
		Summary: "Remove a rule from a security group", Description: "The traffic it allowed is dropped unless another rule allows it.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteRule)
}

func (a *API) createSecurityGroup(ctx context.Context, in *struct{ Body api.SecurityGroupBody }) (*SecurityGroupOutput, error) {
	res, err := a.App.CreateSecurityGroup(ctx, in.Body.Name, in.Body.Description, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &SecurityGroupOutput{Written: Written{res.Seq}, Location: api.SecurityGroups + "/" + id, Body: securityGroupView(res.State)}, nil
}

func (a *API) listSecurityGroups(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name string `query:"name" maxLength:"255" doc:"Only groups with this name"`
}) (*ListOutput[api.SecurityGroup], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	items, next, err := a.Read.SecurityGroups(ctx, postgres.SecurityGroupFilter{Scope: scope, Name: in.Name}, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, securityGroupOut), nil
}

func (a *API) getSecurityGroup(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*SecurityGroupOutput, error) {
	g, err := a.readGroup(ctx, in.ReadAfter, in.ID)
	if err != nil {
		return nil, err
	}
	return &SecurityGroupOutput{Body: securityGroupOut(g)}, nil
}

// readGroup reads a group the caller may see.
func (a *API) readGroup(ctx context.Context, r ReadAfter, ref string) (postgres.SecurityGroup, error) {
	if err := a.waitRead(ctx, r); err != nil {
		return postgres.SecurityGroup{}, err
	}
	id, err := a.securityGroupID(ctx, ref)
	if err != nil {
		return postgres.SecurityGroup{}, err
	}
	g, err := a.Read.SecurityGroup(ctx, id)
	if err != nil {
		return g, a.notFoundOr(ctx, err, "security group", ref)
	}
	if !visible(ctx, &g.ProjectID, false) {
		return g, notFound(ctx, "security group", ref)
	}
	return g, nil
}

// deleteSecurityGroup refuses a group ports are in (the group does not
// know its ports: the read model does).
func (a *API) deleteSecurityGroup(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.securityGroupID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := a.waitMinSeq(ctx); err != nil { // the ports it counts include the caller's writes
		return nil, err
	}
	if g, err := a.Read.SecurityGroup(ctx, id); err == nil && !visible(ctx, &g.ProjectID, false) {
		return nil, notFound(ctx, "security group", in.ID) // before saying anything of its ports
	}
	if n, err := a.Read.CountPorts(ctx, postgres.PortFilter{SecurityGroup: id}); err != nil {
		return nil, a.fail(ctx, err)
	} else if n > 0 {
		markVolatile(ctx)
		return nil, problem(ctx, http.StatusConflict, fmt.Sprintf("security group %s still has %d port(s) in it; take them out or delete them first", in.ID, n))
	}
	res, err := a.App.DeleteSecurityGroup(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{Written{res.Seq}}, nil
}

func (a *API) createRule(ctx context.Context, in *struct {
	RefParam
	Body api.SecurityGroupRuleBody
}) (*RuleOutput, error) {
	id, err := a.securityGroupID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	rule := secgroup.Rule{Direction: b.Direction, EtherType: b.EtherType, Protocol: b.Protocol, PortMin: b.PortMin, PortMax: b.PortMax,
		ICMPType: b.ICMPType, ICMPCode: b.ICMPCode, RemoteCIDR: b.RemoteCIDR, Description: b.Description}
	if b.RemoteGroup != "" {
		if rule.RemoteGroup, err = a.securityGroupID(ctx, b.RemoteGroup); err != nil {
			return nil, unprocessable(err)
		}
	}
	res, rule, err := a.App.AddSecurityGroupRule(ctx, id, rule, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &RuleOutput{Written: Written{res.Seq}, Location: api.SecurityGroups + "/" + id + "/rules/" + rule.ID, Body: ruleView(rule)}, nil
}

func (a *API) listRules(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*ListOutput[api.SecurityGroupRule], error) {
	g, err := a.readGroup(ctx, in.ReadAfter, in.ID)
	if err != nil {
		return nil, err
	}
	return listOut(all(g.Rules, ruleView), ""), nil
}

func (a *API) getRule(ctx context.Context, in *struct {
	ReadAfter
	RuleParams
}) (*RuleOutput, error) {
	g, err := a.readGroup(ctx, in.ReadAfter, in.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range g.Rules {
		if r.ID == in.RuleID {
			return &RuleOutput{Body: ruleView(r)}, nil
		}
	}
	return nil, notFound(ctx, "security group rule", in.RuleID)
}

func (a *API) deleteRule(ctx context.Context, in *RuleParams) (*DeletedOutput, error) {
	id, err := a.securityGroupID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.RemoveSecurityGroupRule(ctx, id, in.RuleID, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{Written{res.Seq}}, nil
}

func (a *API) securityGroupID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "security group", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.SecurityGroups(ctx, postgres.SecurityGroupFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(g postgres.SecurityGroup) string { return g.ID }), err
	})
}
