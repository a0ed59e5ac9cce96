package api

import "time"

// The router and floating IP collections.
const (
	Routers     = "/v1/routers"
	FloatingIPs = "/v1/floating-ips"
)

// RouterGateway is a router's leg on an external network (a router's
// gateway is null when it has none).
type RouterGateway struct {
	NetworkID string `json:"network_id" format:"uuid"`
	SubnetID  string `json:"subnet_id" format:"uuid"`
	PortID    string `json:"port_id" format:"uuid" doc:"The gateway's port (owner network:router_gateway)"`
	IP        string `json:"ip" format:"ipv4"`
	SNAT      bool   `json:"snat" doc:"The router's subnets reach the outside through ip"`
}

// RouterInterface is a router's leg on one of its project's subnets.
type RouterInterface struct {
	SubnetID string `json:"subnet_id" format:"uuid"`
	CIDR     string `json:"cidr"`
	PortID   string `json:"port_id" format:"uuid" doc:"The interface's port (owner network:router_interface)"`
	IP       string `json:"ip" format:"ipv4" doc:"The subnet's gateway address"`
}

// Router connects a project's subnets to each other and, through its
// gateway, to an external network.
type Router struct {
	ID         string            `json:"id" format:"uuid"`
	ProjectID  string            `json:"project_id" format:"uuid"`
	Name       string            `json:"name"`
	Gateway    *RouterGateway    `json:"gateway"`
	Interfaces []RouterInterface `json:"interfaces"`
	CreatedAt  time.Time         `json:"created_at"`
}

// FloatingIP is an address of an external network a project holds; a
// router translates it to the fixed IP of the port it is associated with.
type FloatingIP struct {
	ID        string    `json:"id" format:"uuid"`
	ProjectID string    `json:"project_id" format:"uuid"`
	NetworkID string    `json:"network_id" format:"uuid" doc:"The external network it comes from"`
	SubnetID  string    `json:"subnet_id" format:"uuid"`
	IP        string    `json:"ip" format:"ipv4"`
	PortID    *string   `json:"port_id" doc:"The port it points at (null: none)"`
	FixedIP   *string   `json:"fixed_ip" doc:"The port's address it is translated to"`
	RouterID  *string   `json:"router_id" doc:"The router that translates it"`
	CreatedAt time.Time `json:"created_at"`
}

// RouterBody is a router to create in the caller's project.
type RouterBody struct {
	Name string `json:"name" minLength:"1" maxLength:"255"`
}

// RouterInterfaceBody names the subnet a router gets an interface on.
type RouterInterfaceBody struct {
	Subnet string `json:"subnet" minLength:"1" maxLength:"255" doc:"Subnet id or name; the interface takes its gateway address"`
}

// RouterGatewayBody names the external network of a router's gateway.
type RouterGatewayBody struct {
	Network string `json:"network" minLength:"1" maxLength:"255" doc:"External network id or name"`
	SNAT    *bool  `json:"snat,omitempty" doc:"Default true: the router's subnets reach the outside through the gateway's address"`
}

// FloatingIPBody is a floating IP to take from an external network.
type FloatingIPBody struct {
	Network string `json:"network" minLength:"1" maxLength:"255" doc:"External network id or name"`
}

// FloatingIPAssociationBody names the port a floating IP points at.
type FloatingIPAssociationBody struct {
	Port string `json:"port" minLength:"1" maxLength:"255" doc:"Port id or name"`
}
