package commands

import (
	"context"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/secgroup"
)

// DefaultSecurityGroupID is the id of a project's default security group:
// derived from the project's id, so that replicas making it at once make
// one group.
func DefaultSecurityGroupID(projectID string) string {
	return DeriveID("security-group", "default", projectID)
}

// EnsureDefaultSecurityGroup makes the project's default security group
// (all egress, and ingress from the group's members) unless it exists. It
// is made with the project's first network or port, not with the project,
// so that projects made before networking get theirs too. It counts
// against no quota: a project always has it.
func (a *App) EnsureDefaultSecurityGroup(ctx context.Context, projectID string, meta Meta) error {
	if projectID == "" {
		return nil
	}
	id := DefaultSecurityGroupID(projectID)
	if st, _, err := a.SecurityGroups.Load(ctx, id); err == nil && st.Exists {
		return nil
	}
	m := meta
	m.CommandID, m.Scope = "default-security-group/"+projectID, ""
	rules := secgroup.DefaultRules(secgroup.ID(id), DeriveID(id, "egress"), DeriveID(id, "ingress"))
	_, err := a.SecurityGroups.Create(ctx, id, secgroup.Create{ID: secgroup.ID(id), Project: projectID, Default: true,
		Description: "the project's default group: all egress, and ingress from its members", Rules: rules, At: a.Now().UTC()}, m)
	if domain.KindOf(err) == domain.Conflict {
		return nil // made meanwhile
	}
	return err
}

// CreateSecurityGroup reserves a group of the caller's project quota and
// records the group with one rule, all egress (as Neutron does): a new
// group lets its ports reach out and nothing in until rules are added.
func (a *App) CreateSecurityGroup(ctx context.Context, name, description string, meta Meta) (Result[secgroup.State], error) {
	id := DeriveID(meta.CommandID, "security-group")
	cmd := secgroup.Create{ID: secgroup.ID(id), Project: meta.Actor.Project, Name: name, Description: description, At: a.Now().UTC(),
		Rules: []secgroup.Rule{{ID: DeriveID(id, "egress"), Direction: secgroup.Egress}}}
	st, _, err := a.SecurityGroups.LoadLatest(ctx, id)
	if err != nil {
		return Result[secgroup.State]{}, err
	}
	if _, err := secgroup.Decide(st, cmd); err != nil {
		if st.Live() {
			return Result[secgroup.State]{State: st, Duplicate: true}, nil // a retry of a create that landed
		}
		return Result[secgroup.State]{}, err // an abandoned id too, before anything is reserved
	}
	if err := a.reserve(ctx, cmd.Project, id, SecurityGroupQuota, meta); err != nil {
		return Result[secgroup.State]{}, err
	}
	res, err := a.SecurityGroups.Create(ctx, id, cmd, meta)
	if err != nil {
		if st, _, lerr := a.SecurityGroups.LoadLatest(context.WithoutCancel(ctx), id); lerr != nil || !st.Abandoned {
			err = a.giveBack(ctx, cmd.Project, id, SecurityGroupQuota, meta, err)
		}
	}
	return res, err
}

// DeleteSecurityGroup deletes a group (not a project's default one) and
// gives its quota back. Whether ports still use it is the caller's to check
// first (the group does not know its ports).
func (a *App) DeleteSecurityGroup(ctx context.Context, id string, meta Meta) (Result[secgroup.State], error) {
	res, err := a.SecurityGroups.Handle(ctx, id, secgroup.Delete{At: a.Now().UTC()}, meta)
	if err != nil || res.Duplicate {
		return res, err
	}
	a.release(ctx, res.State.Project, id, SecurityGroupQuota, meta)
	return res, nil
}

// AddSecurityGroupRule adds a rule to a group; the rule's id derives from
// the command id. A remote group must be a live group of the same project.
func (a *App) AddSecurityGroupRule(ctx context.Context, groupID string, rule secgroup.Rule, meta Meta) (Result[secgroup.State], secgroup.Rule, error) {
	rule.ID = DeriveID(meta.CommandID, "rule")
	if rule.RemoteGroup != "" && rule.RemoteGroup != groupID {
		st, _, err := a.SecurityGroups.LoadLatest(ctx, groupID)
		if err != nil {
			return Result[secgroup.State]{}, rule, err
		}
		if _, err := a.liveGroup(ctx, rule.RemoteGroup, st.Project); err != nil {
			return Result[secgroup.State]{}, rule, err
		}
	}
	res, err := a.SecurityGroups.Handle(ctx, groupID, secgroup.AddRule{Rule: rule, At: a.Now().UTC()}, meta)
	if err != nil {
		return res, rule, err
	}
	for _, r := range res.State.Rules {
		if r.ID == rule.ID {
			rule = r // normalised
		}
	}
	return res, rule, nil
}

// RemoveSecurityGroupRule removes a rule from a group.
func (a *App) RemoveSecurityGroupRule(ctx context.Context, groupID, ruleID string, meta Meta) (Result[secgroup.State], error) {
	return a.SecurityGroups.Handle(ctx, groupID, secgroup.RemoveRule{RuleID: ruleID, At: a.Now().UTC()}, meta)
}

// liveGroup loads a live group of project projectID; any other is refused
// as not existing (422 at the API: the body names it).
func (a *App) liveGroup(ctx context.Context, id, projectID string) (secgroup.State, error) {
	st, _, err := a.SecurityGroups.LoadLatest(ctx, id)
	if err != nil {
		return st, err
	}
	if !st.Live() || st.Project != projectID {
		return st, domain.Invalidf("security group %s does not exist", id)
	}
	return st, nil
}
