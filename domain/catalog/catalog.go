// Package catalog lists every aggregate's event registry, so that readers of
// the whole log (projections, sagas, replay) can decode any commit. It holds
// no behaviour of its own.
package catalog

import (
	"fmt"

	"github.com/keel-cloud/keel/domain"
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

// Registries maps aggregate types to their event registries.
var Registries = map[string]domain.Registry{
	flavor.AggregateType:        flavor.Decider.Registry,
	image.AggregateType:         image.Decider.Registry,
	keypair.AggregateType:       keypair.Decider.Registry,
	server.AggregateType:        server.Decider.Registry,
	operation.AggregateType:     operation.Decider.Registry,
	host.AggregateType:          host.Decider.Registry,
	servergroup.AggregateType:   servergroup.Decider.Registry,
	hostaggregate.AggregateType: hostaggregate.Decider.Registry,
	project.AggregateType:       project.Decider.Registry,
	user.AggregateType:          user.Decider.Registry,
	token.AggregateType:         token.Decider.Registry,
	network.AggregateType:       network.Decider.Registry,
	subnet.AggregateType:        subnet.Decider.Registry,
	port.AggregateType:          port.Decider.Registry,
	secgroup.AggregateType:      secgroup.Decider.Registry,
	router.AggregateType:        router.Decider.Registry,
	floatingip.AggregateType:    floatingip.Decider.Registry,
}

// Decode returns the typed events of a commit.
func Decode(env domain.Envelope) ([]domain.Event, error) {
	r, ok := Registries[env.AggregateType]
	if !ok {
		return nil, fmt.Errorf("commit %d: unknown aggregate type %q", env.Sequence, env.AggregateType)
	}
	return r.DecodeAll(env.Events)
}

// EventTypes lists every event type name, for docs and validation.
func EventTypes() []string {
	var out []string
	for _, r := range Registries {
		for t := range r {
			out = append(out, t)
		}
	}
	return out
}
