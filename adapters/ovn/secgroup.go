package ovn

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/secgroup"
)

// EnsureSecurityGroup makes or repairs the group's Port_Group and its
// ACLs (one per rule; see acl.go), and keel_drop, in one transaction. The
// members are the ports' business (EnsurePort).
func (c *Client) EnsureSecurityGroup(ctx context.Context, g secgroup.State) error {
	var l opList
	c.groupOps(&l, g)
	if l.err != nil {
		return l.err
	}
	return c.transact(ctx, "ensure security group "+string(g.ID), l.ops)
}

// DeleteSecurityGroup deletes the group's Port_Group; its ACLs go with it.
func (c *Client) DeleteSecurityGroup(ctx context.Context, id secgroup.ID) error {
	var l opList
	pg, err := c.findPortGroup(PortGroupName(string(id)))
	if err != nil {
		return err
	}
	if pg != nil {
		l.add(c.nb.Where(pg).Delete())
	}
	return c.transact(ctx, "delete security group "+string(id), l.ops)
}

func (c *Client) findPortGroup(name string) (*nbdb.PortGroup, error) {
	pgs, err := list(c, func(pg *nbdb.PortGroup) bool { return pg.Name == name })
	if err != nil || len(pgs) == 0 {
		return nil, err
	}
	return &pgs[0], nil
}

// groupOps brings g's port group and ACLs in line.
func (c *Client) groupOps(l *opList, g secgroup.State) {
	want := nbdb.PortGroup{
		Name:        PortGroupName(string(g.ID)),
		ExternalIDs: map[string]string{KeySecGroup: string(g.ID), KeyProject: g.Project},
	}
	c.portGroupOps(l, want, groupACLs(g))
	c.dropGroupOps(l)
}

// dropGroupOps makes keel_drop, with members, when it is missing, and
// repairs its ACLs when it is there. It reports whether it made it.
func (c *Client) dropGroupOps(l *opList, members ...string) bool {
	want := nbdb.PortGroup{Name: DropPortGroup, ExternalIDs: map[string]string{KeyOwner: "keel"}, Ports: members}
	return c.portGroupOps(l, want, dropACLs())
}

// portGroupOps makes port group want with acls, or brings the one of its
// name in line (external ids and Keel's ACLs; members are left as they
// are). It reports whether it made the group.
func (c *Client) portGroupOps(l *opList, want nbdb.PortGroup, acls []nbdb.ACL) bool {
	cur, err := c.findPortGroup(want.Name)
	if err != nil {
		l.fail(err)
		return false
	}
	if cur == nil {
		want.UUID = namedUUID("pg", want.Name)
		want.ACLs = c.createACLs(l, want.Name, acls)
		l.add(c.nb.Create(&want))
		return true
	}
	if !maps.Equal(cur.ExternalIDs, want.ExternalIDs) {
		want.UUID = cur.UUID
		l.add(c.nb.Where(&want).Update(&want, &want.ExternalIDs))
	}
	c.aclOps(l, cur, acls)
	return false
}

// createACLs adds the creation of acls to l and returns their named UUIDs.
func (c *Client) createACLs(l *opList, pg string, acls []nbdb.ACL) []string {
	var uuids []string
	for i := range acls {
		acls[i].UUID = namedUUID("acl", fmt.Sprintf("%s_%d", pg, i))
		l.add(c.nb.Create(&acls[i]))
		uuids = append(uuids, acls[i].UUID)
	}
	return uuids
}

// aclOps makes pg's Keel ACLs exactly acls: missing ones are made, Keel's
// ACLs not wanted (or altered, or twice there) are dropped from the group.
// ACLs without Keel's ids are left alone.
func (c *Client) aclOps(l *opList, pg *nbdb.PortGroup, acls []nbdb.ACL) {
	have, err := list(c, func(a *nbdb.ACL) bool { return slices.Contains(pg.ACLs, a.UUID) })
	if err != nil {
		l.fail(err)
		return
	}
	wanted := map[string]bool{}
	for _, a := range acls {
		wanted[aclKey(a)] = true
	}
	kept := map[string]bool{}
	var drop []string
	for _, a := range have {
		k := aclKey(a)
		switch {
		case a.ExternalIDs[KeySecGroup] == "" && a.ExternalIDs[KeyOwner] == "":
		case wanted[k] && !kept[k]:
			kept[k] = true
		default:
			drop = append(drop, a.UUID)
		}
	}
	var missing []nbdb.ACL
	for _, a := range acls {
		if !kept[aclKey(a)] {
			missing = append(missing, a)
		}
	}
	if len(drop) > 0 {
		l.add(c.mutate(pg, &pg.UUID, mutateDelete(&pg.ACLs, drop...)))
	}
	if uuids := c.createACLs(l, pg.Name, missing); len(uuids) > 0 {
		l.add(c.mutate(pg, &pg.UUID, mutateInsert(&pg.ACLs, uuids...)))
	}
}
