package catalog_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/keypair"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
	"github.com/keel-cloud/keel/domain/subnet"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
)

// A time with nanoseconds, so that a round trip that drops precision fails.
var at = time.Date(2025, 3, 1, 12, 34, 56, 123456789, time.UTC)

// examples holds one event of every type, with every field set to a value
// that is not the zero value, per aggregate type.
var examples = map[string][]domain.Event{
	flavor.AggregateType: {
		&flavor.Created{ID: "fl-1", Spec: flavor.Spec{Name: "m1.small", VCPUs: 2, RAMMiB: 2048, DiskGiB: 20}, CreatedAt: at},
		&flavor.Deleted{ID: "fl-1", DeletedAt: at},
	},
	keypair.AggregateType: {
		&keypair.Created{ID: "kp-1", Spec: keypair.Spec{Project: "p-1", Name: "alice", Type: "ssh-ed25519", PublicKey: "ssh-ed25519 AAAA alice", Fingerprint: "SHA256:x"}, CreatedAt: at},
		&keypair.Deleted{ID: "kp-1", DeletedAt: at},
	},
	image.AggregateType: {
		&image.Created{ID: "img-1", Spec: image.Spec{Project: "p-1", Name: "cirros", DiskFormat: "qcow2", MinDiskGiB: 1, MinRAMMiB: 64}, CreatedAt: at},
		&image.Uploaded{ID: "img-1", Object: "images/img-1", Size: 1 << 40, SHA256: strings.Repeat("ab", 32), UploadedAt: at},
		&image.ImageDeleted{ID: "img-1", DeletedAt: at},
	},
	server.AggregateType: {
		&server.Created{ID: "srv-1", Project: "p-1", Name: "web-1", Flavor: server.Flavor{ID: "fl-1", Name: "m1.small", VCPUs: 2, RAMMiB: 2048, DiskGiB: 20},
			ImageID: "img-1", Operation: "op-1", Hints: server.Hints{AvailabilityZone: "az1", ServerGroup: "sg-1", TargetHost: "h-1"}, UserData: []byte("#cloud-config\n"),
			KeyName: "alice", PublicKey: "ssh-ed25519 AAAA alice", AdminPasswordSealed: []byte{1, 2, 3}, KeepRunning: new(bool), DataDisksGiB: []int{10},
			Networks: []string{"net-1"}, CreatedAt: at},
		&server.NICsSet{Operation: "op-1", NICs: []server.NIC{{Port: "port-1", Network: "net-1", MAC: "fa:16:3e:00:00:01", IPs: []string{"10.0.0.5"}}}, At: at},
		&server.InterfaceAttachRequested{Host: "h-1", Operation: "op-6", Network: "net-2", At: at},
		&server.InterfacePortSet{Host: "h-1", Operation: "op-6", NIC: server.NIC{Port: "port-2", Network: "net-2", MAC: "fa:16:3e:00:00:02", IPs: []string{"10.0.1.5"}}, At: at},
		&server.InterfaceAttached{Host: "h-1", Operation: "op-6", NIC: server.NIC{Port: "port-2", Network: "net-2", MAC: "fa:16:3e:00:00:02", IPs: []string{"10.0.1.5"}}, At: at},
		&server.InterfaceDetachRequested{Host: "h-1", Operation: "op-7", NIC: server.NIC{Port: "port-2", Network: "net-2", MAC: "fa:16:3e:00:00:02"}, At: at},
		&server.InterfaceDetached{Host: "h-1", Operation: "op-7", Port: "port-2", At: at},
		&server.InterfaceFailed{Host: "h-1", Task: server.AttachingInterface, Operation: "op-8", Port: "port-3", MAC: "fa:16:3e:00:00:03", Reason: "the host could not attach the interface", Detail: "virDomainAttachDeviceFlags: boom", At: at},
		&server.SpawnFailed{Host: "h-1", Reason: "disk full", Attempt: 1, Detail: "write /pool/servers/srv-1/root.qcow2: no space left on device", At: at},
		&server.Scheduled{Host: "h-1", Operation: "op-1", At: at},
		&server.Spawned{Host: "h-1", At: at},
		&server.Failed{Host: "h-1", Reason: "image is corrupt", Operation: "op-1", Detail: "qemu-img: Could not open", At: at},
		&server.StartRequested{Host: "h-1", Operation: "op-2", At: at},
		&server.StopRequested{Host: "h-1", Operation: "op-3", At: at},
		&server.RebootRequested{Host: "h-1", Operation: "op-4", Hard: true, At: at},
		&server.Started{Host: "h-1", At: at},
		&server.Stopped{Host: "h-1", At: at},
		&server.Rebooted{Host: "h-1", At: at},
		&server.ActionFailed{Task: server.RebootTask, Reason: "hung", Detail: "domain keel-srv-1: reset: timed out", At: at},
		&server.DeleteRequested{Host: "h-1", Superseded: "op-4", Operation: "op-5", At: at},
		&server.Deleted{Host: "h-1", Forced: true, Reason: "host did not confirm", At: at},
		&server.PowerObserved{Host: "h-1", Power: server.Shutoff, Previous: server.Running, Desired: server.WantStopped, At: at},
		&server.Lost{Host: "h-1", Reason: "its virtual machine disappeared from host h-1", At: at},
		&server.Abandoned{ID: "7f1c2d4e-0000-4000-8000-000000000001", Reason: "its create was cut short before the server's first commit", At: at},
	},
	operation.AggregateType: {
		&operation.Began{ID: "op-1", Project: "p-1", Kind: "server.create", ResourceType: "server", ResourceID: "srv-1",
			Steps: []operation.StepSpec{{Name: "schedule", Timeout: 30 * time.Second}, {Name: "spawn", Timeout: 5*time.Minute + time.Nanosecond}}, At: at},
		&operation.StepStarted{Step: "spawn", Deadline: at.Add(5 * time.Minute), At: at},
		&operation.StepSucceeded{Step: "schedule", At: at},
		&operation.StepFailed{Step: "spawn", Reason: "disk full", Detail: "write /pool/servers/srv-1/root.qcow2: no space left on device", At: at},
		&operation.Rewound{From: "spawn", To: "schedule", Reason: "disk full on h-1", Detail: "write /pool/servers/srv-1/root.qcow2: no space left on device", At: at},
		&operation.OperationSucceeded{At: at},
		&operation.OperationFailed{Reason: "disk full", Detail: "write /pool/servers/srv-1/root.qcow2: no space left on device", Compensated: []string{"schedule"}, At: at},
	},
	project.AggregateType: {
		&project.Created{ID: "p-1", Name: "web", Description: "the web team", CreatedAt: at},
		&project.Deleted{ID: "p-1", DeletedAt: at},
		&project.QuotasSet{Limits: map[string]int{"servers": 10}, At: at},
		&project.QuotaReserved{Key: "srv-1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: at},
		&project.QuotaReleased{Key: "srv-1", Amounts: map[string]int{"servers": 1, "vcpus": 2}, At: at},
	},
	user.AggregateType: {
		&user.Created{ID: "u-1", Name: "alice", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: at},
		&user.PasswordChanged{ID: "u-1", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaB", ChangedAt: at},
		&user.RoleGranted{ID: "u-1", Project: "p-1", Role: user.Member, At: at},
		&user.RoleRevoked{ID: "u-1", Project: "p-1", At: at},
		&user.Deleted{ID: "u-1", DeletedAt: at},
	},
	token.AggregateType: {
		&token.Issued{ID: "t-1", Spec: token.Spec{User: "u-1", Project: "p-1", Name: "ci", ReadOnly: true, SecretSHA256: strings.Repeat("cd", 32), ExpiresAt: at.Add(time.Hour)}, CreatedAt: at},
		&token.Revoked{ID: "t-1", RevokedAt: at},
	},
	hostaggregate.AggregateType: {
		&hostaggregate.Created{ID: "a-1", Name: "rack-1", Metadata: map[string]string{"availability_zone": "az1"}, At: at},
		&hostaggregate.MetadataSet{Metadata: map[string]string{"ssd": "true"}, At: at},
		&hostaggregate.HostAdded{Host: "h-1", Join: "j-1", At: at},
		&hostaggregate.HostRemoved{Host: "h-1", Join: "j-1", At: at},
		&hostaggregate.Deleted{At: at},
	},
	servergroup.AggregateType: {
		&servergroup.Created{ID: "g-1", Spec: servergroup.Spec{Project: "p-1", Name: "web", Policy: "anti-affinity", MaxPerHost: 1}, At: at},
		&servergroup.MemberAdded{Server: "s-1", Host: "h-1", At: at},
		&servergroup.MemberRemoved{Server: "s-1", At: at},
		&servergroup.Deleted{At: at},
	},
	host.AggregateType: {
		&host.Registered{ID: "h-1", Spec: host.Spec{Name: "node-1", Address: "10.0.0.1", Driver: "fake", Hypervisor: "qemu",
			CPUModel: "EPYC", CPUFeatures: []string{"avx2"}, Traits: []string{"gpu"}, VCPUs: 16, RAMMiB: 65536, DiskGiB: 500},
			Ratios: &host.Ratios{CPU: 4, RAM: 1, Disk: 1}, At: at},
		&host.Enabled{At: at},
		&host.Disabled{Reason: "bad fan", At: at},
		&host.MaintenanceStarted{Reason: "bios update", At: at},
		&host.MaintenanceEnded{At: at},
		&host.RatiosChanged{Ratios: host.Ratios{CPU: 8, RAM: 1.5, Disk: 1}, At: at},
		&host.Claimed{Server: "s-1", Resources: host.Resources{VCPUs: 2, RAMMiB: 2048, DiskGiB: 20}, Operation: "op-1", At: at},
		&host.Released{Server: "s-1", Resources: host.Resources{VCPUs: 2, RAMMiB: 2048, DiskGiB: 20}, Reason: "deleted", At: at},
		&host.WentDown{LastSeen: at, At: at},
		&host.CameUp{At: at},
		&host.Removed{At: at},
		&host.AggregateJoined{Aggregate: "a-1", Name: "rack-1", Zone: "az1", Join: "j-1", At: at},
		&host.AggregateLeft{Aggregate: "a-1", Join: "j-1", At: at},
		&host.UnknownGuestsObserved{Guests: []string{"legacy-db"}, At: at},
	},
	network.AggregateType: {
		&network.Created{ID: "n-1", Project: "p-1", Name: "public", Kind: network.VLAN, PhysicalNetwork: "physnet1", VLAN: 100, External: true, MTU: 1500, CreatedAt: at},
		&network.Renamed{Name: "internet", At: at},
		&network.SubnetAdded{Subnet: "s-1", CIDR: "10.0.0.0/24", At: at},
		&network.SubnetRemoved{Subnet: "s-1", At: at},
		&network.Deleted{At: at},
		&network.Abandoned{ID: "n-1", Reason: "its create was cut short before the network's first commit", At: at},
	},
	subnet.AggregateType: {
		&subnet.Created{ID: "s-1", Network: "n-1", Project: "p-1", Name: "web", CIDR: "10.0.0.0/24", Gateway: "10.0.0.1", DHCP: true,
			DNS: []string{"1.1.1.1"}, Pools: []subnet.Pool{{Start: "10.0.0.2", End: "10.0.0.254"}},
			Routes: []subnet.Route{{Destination: "192.168.0.0/16", Nexthop: "10.0.0.254"}}, CreatedAt: at},
		&subnet.AddressAllocated{Key: "port-1", IP: "10.0.0.2", At: at},
		&subnet.AddressReleased{Key: "port-1", IP: "10.0.0.2", At: at},
		&subnet.Deleted{At: at},
	},
	port.AggregateType: {
		&port.Created{ID: "pt-1", Network: "n-1", Project: "p-1", Name: "nic", MAC: "fa:16:3e:12:34:56", FixedIPs: []port.FixedIP{{Subnet: "s-1", IP: "10.0.0.2"}},
			SecurityGroups: []string{"sg-1"}, PortSecurity: true, DeviceOwner: port.OwnerServer, DeviceID: "srv-1", CreatedAt: at},
		&port.Bound{Host: "node-1", At: at},
		&port.Unbound{Host: "node-1", At: at},
		&port.DeviceAttached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: at},
		&port.DeviceDetached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: at},
		&port.SecurityGroupsSet{SecurityGroups: []string{"sg-1", "sg-2"}, At: at},
		&port.Deleted{FixedIPs: []port.FixedIP{{Subnet: "s-1", IP: "10.0.0.2"}}, At: at},
		&port.Abandoned{ID: "pt-1", Reason: "its create was cut short before the port's first commit", At: at},
	},
	secgroup.AggregateType: {
		&secgroup.Created{ID: "sg-1", Project: "p-1", Name: secgroup.DefaultName, Description: "the project's default", Default: true,
			Rules: secgroup.DefaultRules("sg-1", "r-1", "r-2"), At: at},
		&secgroup.RuleAdded{Rule: secgroup.Rule{ID: "r-3", Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: secgroup.ICMP,
			ICMPType: new(int), ICMPCode: new(int), RemoteCIDR: "10.0.0.0/8", Description: "echo replies"}, At: at},
		&secgroup.RuleRemoved{RuleID: "r-3", At: at},
		&secgroup.Deleted{At: at},
		&secgroup.Abandoned{ID: "sg-1", Reason: "its create was cut short before the group's first commit", At: at},
	},
	router.AggregateType: {
		&router.Created{ID: "r-1", Project: "p-1", Name: "edge", At: at},
		&router.GatewaySet{Gateway: router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: "203.0.113.0/24", Port: "pt-gw", IP: "203.0.113.10", SNAT: true}, At: at},
		&router.GatewayCleared{Gateway: router.Gateway{Network: "ext", Subnet: "ext-s", CIDR: "203.0.113.0/24", Port: "pt-gw", IP: "203.0.113.10", SNAT: true}, At: at},
		&router.InterfaceAdded{Interface: router.Interface{Subnet: "s-1", CIDR: "10.0.0.0/24", Port: "pt-if", IP: "10.0.0.1"}, At: at},
		&router.InterfaceRemoved{Interface: router.Interface{Subnet: "s-1", CIDR: "10.0.0.0/24", Port: "pt-if", IP: "10.0.0.1"}, At: at},
		&router.Deleted{At: at},
		&router.FloatingIPAttached{FloatingIP: router.FloatingIP{ID: "f-1", Subnet: "s-1"}, At: at},
		&router.FloatingIPDetached{FloatingIP: router.FloatingIP{ID: "f-1", Subnet: "s-1"}, At: at},
		&router.Abandoned{ID: "r-1", Reason: "its create was cut short before its first commit", At: at},
	},
	floatingip.AggregateType: {
		&floatingip.Created{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.5", At: at},
		&floatingip.Associated{Association: floatingip.Association{Port: "pt-1", FixedIP: "10.0.0.2", Router: "r-1"}, At: at},
		&floatingip.Disassociated{Association: floatingip.Association{Port: "pt-1", FixedIP: "10.0.0.2", Router: "r-1"}, At: at},
		&floatingip.Deleted{Subnet: "ext-s", IP: "203.0.113.5", At: at},
		&floatingip.Abandoned{ID: "f-1", Reason: "its create was cut short before its first commit", At: at},
	},
}

// Every field of every example is set, so the round trip checks them all.
func TestExamplesAreFullyPopulated(t *testing.T) {
	for _, evs := range examples {
		for _, ev := range evs {
			v := reflect.ValueOf(ev).Elem()
			for i := range v.NumField() {
				if v.Field(i).IsZero() {
					t.Errorf("%s example leaves %s zero", ev.EventType(), v.Type().Field(i).Name)
				}
			}
		}
	}
}

func TestEveryAggregateHasARegistry(t *testing.T) {
	for typ := range examples {
		if _, ok := catalog.Registries[typ]; !ok {
			t.Errorf("no registry for %s", typ)
		}
	}
	if len(catalog.Registries) != len(examples) {
		t.Errorf("%d registries, %d aggregates with examples: add examples for the new aggregate", len(catalog.Registries), len(examples))
	}
}

func TestEveryRegisteredTypeHasAnExample(t *testing.T) {
	for agg, reg := range catalog.Registries {
		var have []string
		for _, ev := range examples[agg] {
			have = append(have, ev.EventType())
		}
		for typ := range reg {
			if !slices.Contains(have, typ) {
				t.Errorf("%s: event type %s has no example here", agg, typ)
			}
		}
		for _, typ := range have {
			if _, ok := reg[typ]; !ok {
				t.Errorf("%s: %s is decided but not registered, so it could never be read back", agg, typ)
			}
		}
	}
}

func TestRegistryKeysMatchEventTypes(t *testing.T) {
	for agg, reg := range catalog.Registries {
		for typ, mk := range reg {
			ev := mk()
			if ev.EventType() != typ {
				t.Errorf("%s: registered as %q but the value says %q", agg, typ, ev.EventType())
			}
			if !strings.HasPrefix(typ, agg+".") {
				t.Errorf("%s: event type %q does not start with %q", agg, typ, agg+".")
			}
			if reflect.TypeOf(ev).Kind() != reflect.Pointer {
				t.Errorf("%s: %s decodes to a %T, not a pointer", agg, typ, ev)
			}
			if mk() == ev {
				t.Errorf("%s: %s constructor returns a shared value", agg, typ)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for agg, evs := range examples {
		reg := catalog.Registries[agg]
		for _, ev := range evs {
			t.Run(ev.EventType(), func(t *testing.T) {
				raw, err := domain.Encode([]domain.Event{ev})
				if err != nil {
					t.Fatal(err)
				}
				got, err := reg.DecodeAll(raw)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
					t.Fatalf("round trip of %s\n got %+v\nwant %+v\njson %s", ev.EventType(), got, ev, raw[0].Data)
				}
			})
		}
	}
}

// A whole commit of one aggregate decodes through catalog.Decode, in order.
func TestDecodeEnvelope(t *testing.T) {
	for agg, evs := range examples {
		raw, err := domain.Encode(evs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := catalog.Decode(domain.Envelope{AggregateType: agg, AggregateID: "x", Events: raw})
		if err != nil {
			t.Fatalf("%s: %v", agg, err)
		}
		if !reflect.DeepEqual(got, evs) {
			t.Fatalf("%s: decoded %+v\nwant %+v", agg, got, evs)
		}
	}
}

func TestDecodeUnknown(t *testing.T) {
	for agg, reg := range catalog.Registries {
		_, err := reg.Decode(agg+".exploded", []byte(`{}`))
		if !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("%s: unknown type gave %v, want ErrUnknownEvent", agg, err)
		}
		// A type of another aggregate is unknown here too.
		_, err = reg.Decode("elsewhere.created", []byte(`{}`))
		if !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("%s: foreign type gave %v, want ErrUnknownEvent", agg, err)
		}
	}
	env := domain.Envelope{AggregateType: server.AggregateType, Sequence: 7,
		Events: []domain.RawEvent{{Type: server.TypeCreated, Schema: 1, Data: []byte(`{}`)}, {Type: "server.exploded", Schema: 1, Data: []byte(`{}`)}}}
	if _, err := catalog.Decode(env); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Errorf("envelope with an unknown event type gave %v, want ErrUnknownEvent", err)
	}
	env.AggregateType = "volume"
	if _, err := catalog.Decode(env); err == nil || !strings.Contains(err.Error(), `commit 7: unknown aggregate type "volume"`) {
		t.Errorf("unknown aggregate type gave %v", err)
	}
}

func TestEventTypesAreUniqueAndComplete(t *testing.T) {
	types := catalog.EventTypes()
	want := 0
	for _, evs := range examples {
		want += len(evs)
	}
	if len(types) != want {
		t.Errorf("%d event types, %d examples", len(types), want)
	}
	seen := map[string]bool{}
	for _, typ := range types {
		if seen[typ] {
			t.Errorf("event type %s appears twice", typ)
		}
		seen[typ] = true
	}
}
