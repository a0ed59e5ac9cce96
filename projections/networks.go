package projections

import (
	"encoding/json"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// Networks is the networking read model: networks, subnets, the addresses
// subnets have handed out (subnet_addresses, which the address sweep reads
// to find addresses no port holds), ports and security groups with their
// rules. Deleted resources leave no row.
var Networks = Projection{Name: "networks", Version: 1,
	Tables: []string{"networks", "subnets", "subnet_addresses", "ports", "security_groups"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			var err error
			switch env.AggregateType {
			case network.AggregateType:
				applyNetwork(w, t, env, ev)
			case subnet.AggregateType:
				err = applySubnet(w, t, env, ev)
			case port.AggregateType:
				err = applyPort(w, t, env, ev)
			case secgroup.AggregateType:
				err = applySecurityGroup(w, t, env, ev)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}}

func applyNetwork(w *Writer, t Tables, env domain.Envelope, ev domain.Event) {
	id := env.AggregateID
	switch e := ev.(type) {
	case *network.Created:
		w.Exec(id, `INSERT INTO `+t.T("networks")+` (id, project_id, name, kind, physical_network, vlan, external, mtu, created_at, seq)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO NOTHING`,
			id, e.Project, e.Name, string(e.Kind), nullable(e.PhysicalNetwork), nullableInt(e.VLAN), e.External, e.MTU, e.CreatedAt, env.Sequence)
	case *network.Renamed:
		w.Exec(id, `UPDATE `+t.T("networks")+` SET name=$2, seq=$3 WHERE id=$1`, id, e.Name, env.Sequence)
	case *network.Deleted:
		w.Exec(id, `DELETE FROM `+t.T("networks")+` WHERE id=$1`, id)
	}
}

func applySubnet(w *Writer, t Tables, env domain.Envelope, ev domain.Event) error {
	id := env.AggregateID
	switch e := ev.(type) {
	case *subnet.Created:
		dns, pools, routes, err := jsons(nonNil(e.DNS), nonNil(e.Pools), nonNil(e.Routes))
		if err != nil {
			return err
		}
		w.Exec(id, `INSERT INTO `+t.T("subnets")+` (id, network_id, project_id, name, cidr, gateway, dhcp, dns, pools, routes, created_at, seq)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (id) DO NOTHING`,
			id, e.Network, e.Project, nullable(e.Name), e.CIDR, nullable(e.Gateway), e.DHCP, dns, pools, routes, e.CreatedAt, env.Sequence)
	case *subnet.AddressAllocated:
		w.Exec(id, `INSERT INTO `+t.T("subnet_addresses")+` (subnet_id, ip, key, allocated_at, seq) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (subnet_id, ip) DO UPDATE SET key=EXCLUDED.key, allocated_at=EXCLUDED.allocated_at, seq=EXCLUDED.seq`,
			id, e.IP, e.Key, e.At, env.Sequence)
	case *subnet.AddressReleased:
		w.Exec(id, `DELETE FROM `+t.T("subnet_addresses")+` WHERE subnet_id=$1 AND ip=$2`, id, e.IP)
	case *subnet.Deleted:
		w.Exec(id, `DELETE FROM `+t.T("subnets")+` WHERE id=$1`, id)
	}
	return nil
}

func applyPort(w *Writer, t Tables, env domain.Envelope, ev domain.Event) error {
	id, pt := env.AggregateID, t.T("ports")
	switch e := ev.(type) {
	case *port.Created:
		ips, groups, err := jsons2(nonNil(e.FixedIPs), nonNil(e.SecurityGroups))
		if err != nil {
			return err
		}
		w.Exec(id, `INSERT INTO `+pt+` (id, network_id, project_id, name, mac, fixed_ips, security_groups, port_security, device_owner, device_id, created_at, seq)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (id) DO NOTHING`,
			id, e.Network, e.Project, nullable(e.Name), e.MAC, ips, groups, e.PortSecurity, nullable(e.DeviceOwner), nullable(e.DeviceID), e.CreatedAt, env.Sequence)
	case *port.Bound:
		w.Exec(id, `UPDATE `+pt+` SET host=$2, seq=$3 WHERE id=$1`, id, e.Host, env.Sequence)
	case *port.Unbound:
		w.Exec(id, `UPDATE `+pt+` SET host=NULL, seq=$2 WHERE id=$1`, id, env.Sequence)
	case *port.DeviceAttached:
		w.Exec(id, `UPDATE `+pt+` SET device_owner=$2, device_id=$3, seq=$4 WHERE id=$1`, id, e.DeviceOwner, e.DeviceID, env.Sequence)
	case *port.DeviceDetached:
		w.Exec(id, `UPDATE `+pt+` SET device_owner=NULL, device_id=NULL, host=NULL, seq=$2 WHERE id=$1`, id, env.Sequence)
	case *port.SecurityGroupsSet:
		groups, err := json.Marshal(nonNil(e.SecurityGroups))
		if err != nil {
			return err
		}
		w.Exec(id, `UPDATE `+pt+` SET security_groups=$2, seq=$3 WHERE id=$1`, id, groups, env.Sequence)
	case *port.Deleted:
		w.Exec(id, `DELETE FROM `+pt+` WHERE id=$1`, id)
	}
	return nil
}

func applySecurityGroup(w *Writer, t Tables, env domain.Envelope, ev domain.Event) error {
	id, sg := env.AggregateID, t.T("security_groups")
	switch e := ev.(type) {
	case *secgroup.Created:
		rules, err := json.Marshal(nonNil(e.Rules))
		if err != nil {
			return err
		}
		w.Exec(id, `INSERT INTO `+sg+` (id, project_id, name, description, is_default, rules, created_at, seq)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`, id, e.Project, e.Name, e.Description, e.Default, rules, e.At, env.Sequence)
	case *secgroup.RuleAdded:
		rule, err := json.Marshal(e.Rule)
		if err != nil {
			return err
		}
		w.Exec(id, `UPDATE `+sg+` SET rules = rules || jsonb_build_array($2::jsonb), seq=$3 WHERE id=$1`, id, rule, env.Sequence)
	case *secgroup.RuleRemoved:
		w.Exec(id, `UPDATE `+sg+` SET rules = (SELECT coalesce(jsonb_agg(r ORDER BY n), '[]') FROM jsonb_array_elements(rules) WITH ORDINALITY AS x(r, n)
			WHERE r->>'id' <> $2), seq=$3 WHERE id=$1`, id, e.RuleID, env.Sequence)
	case *secgroup.Deleted:
		w.Exec(id, `DELETE FROM `+sg+` WHERE id=$1`, id)
	}
	return nil
}

// nonNil makes a nil slice an empty one, so that it is stored as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nullableInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func jsons(a, b, c any) ([]byte, []byte, []byte, error) {
	ja, err := json.Marshal(a)
	if err != nil {
		return nil, nil, nil, err
	}
	jb, jc, err := jsons2(b, c)
	return ja, jb, jc, err
}

func jsons2(a, b any) ([]byte, []byte, error) {
	ja, err := json.Marshal(a)
	if err != nil {
		return nil, nil, err
	}
	jb, err := json.Marshal(b)
	return ja, jb, err
}
