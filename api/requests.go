package api

// FlavorBody is a flavor to create.
type FlavorBody struct {
	Name       string            `json:"name" minLength:"1" maxLength:"255" doc:"Unique name"`
	VCPUs      int               `json:"vcpus" minimum:"1" maximum:"1024"`
	RAMMiB     int               `json:"ram_mib" minimum:"1" maximum:"16777216"`
	DiskGiB    int               `json:"disk_gib,omitempty" minimum:"0" doc:"Root disk size; 0 means the image's own size"`
	ExtraSpecs map[string]string `json:"extra_specs,omitempty" doc:"Placement: trait:NAME=required|forbidden, aggregate:KEY=VALUE"`
}

// KeypairBody is a keypair to create: a public key the user brings.
type KeypairBody struct {
	Name      string `json:"name" minLength:"1" maxLength:"255" doc:"Unique name"`
	PublicKey string `json:"public_key" minLength:"1" maxLength:"16384" doc:"One OpenSSH public key line (the .pub file): ssh-ed25519, ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least 2048 bits"`
}

// ImageBody is an image to create.
type ImageBody struct {
	Name       string `json:"name" minLength:"1" maxLength:"255"`
	DiskFormat string `json:"disk_format" enum:"raw,qcow2,iso"`
	MinDiskGiB int    `json:"min_disk_gib,omitempty" minimum:"0" maximum:"1048576" doc:"Smallest flavor disk this image fits on"`
	MinRAMMiB  int    `json:"min_ram_mib,omitempty" minimum:"0" maximum:"16777216" doc:"Smallest flavor RAM this image runs with"`
	Visibility string `json:"visibility,omitempty" enum:"public,private" doc:"private (the default): only the caller's project sees and boots it; public: every project (cloud admins only)"`
}

// ServerBody is a server to create.
type ServerBody struct {
	Name   string `json:"name" minLength:"1" maxLength:"255" doc:"Server names need not be unique"`
	Flavor string `json:"flavor" minLength:"1" maxLength:"255" doc:"Flavor id or name"`
	Image  string `json:"image" minLength:"1" maxLength:"255" doc:"Image id or name"`
	// Scheduler hints.
	AvailabilityZone string `json:"availability_zone,omitempty" maxLength:"255" doc:"Place the server in this availability zone"`
	ServerGroup      string `json:"server_group,omitempty" maxLength:"255" doc:"Server group id or name; its policy applies"`
	TargetHost       string `json:"target_host,omitempty" maxLength:"255" doc:"Place the server on this host or nowhere (an operator's hint)"`
	// UserData is base64, as Nova takes it.
	UserData string `json:"user_data,omitempty" maxLength:"87384" doc:"Base64 of at most 65,535 bytes given to the guest at first boot (NoCloud user-data)"`
	// KeepRunning nil means true.
	DataDisksGiB []int           `json:"data_disks_gib,omitempty" maxItems:"8" doc:"Blank data disks to attach, by size in GiB (1 to 16384 each, at most 8); they count against the host's disk"`
	KeepRunning  *bool           `json:"keep_running,omitempty" doc:"Start the server again when it is found stopped behind Keel's back (a host reboot, a crash, a stop on the hypervisor); default true"`
	KeyName      string          `json:"key_name,omitempty" maxLength:"255" doc:"Keypair id or name; its public key is copied into the server and authorized for the admin user at first boot"`
	Networks     []ServerNetwork `json:"networks,omitempty" maxItems:"8" doc:"Networks (ids or names) of the server's project to give it a NIC on, in order (eth0 first): a port with an address from the network's first subnet and the project's default security group is made on each before the server is placed, and deleted with the server (or when its build fails)"`
}

// ServerNetwork is a network a server gets a NIC on.
type ServerNetwork struct {
	Network string `json:"network" minLength:"1" maxLength:"255" doc:"Network id or name (of the server's project)"`
}

// GroupBody is a server group to create.
type GroupBody struct {
	Name       string `json:"name" minLength:"1" maxLength:"255"`
	Policy     string `json:"policy" enum:"affinity,anti-affinity,soft-affinity,soft-anti-affinity" doc:"Hard policies refuse a placement that breaks them; soft ones only steer it"`
	MaxPerHost int    `json:"max_per_host,omitempty" minimum:"0" maximum:"100000" doc:"At most this many members on one host (0: no limit; hard anti-affinity means 1)"`
}

// AggregateBody is a host aggregate to create.
type AggregateBody struct {
	Name             string            `json:"name" minLength:"1" maxLength:"255"`
	AvailabilityZone string            `json:"availability_zone,omitempty" maxLength:"255" doc:"Makes the aggregate an availability zone"`
	Metadata         map[string]string `json:"metadata,omitempty" doc:"Matched by flavor extra specs aggregate:KEY=VALUE"`
}

// MetadataBody is a host aggregate's new metadata.
type MetadataBody struct {
	Metadata map[string]string `json:"metadata"`
}

// AggregateHostBody names a host to add to a host aggregate.
type AggregateHostBody struct {
	Host string `json:"host" minLength:"1" maxLength:"255"`
}

// ReasonBody explains an administrative change.
type ReasonBody struct {
	Reason string `json:"reason,omitempty" maxLength:"255" doc:"Shown with the host's status"`
}

// RatiosPatch changes some of a host's overcommit ratios.
type RatiosPatch struct {
	CPU  *float64 `json:"cpu,omitempty" doc:"vCPU overcommit ratio; absent keeps the current one"`
	RAM  *float64 `json:"ram,omitempty" doc:"RAM overcommit ratio; absent keeps the current one"`
	Disk *float64 `json:"disk,omitempty" doc:"Disk overcommit ratio; absent keeps the current one"`
}

// HostCredentialsBody names the host to issue agent credentials for.
type HostCredentialsBody struct {
	Host string `json:"host" minLength:"1" maxLength:"255" doc:"The host's name, as its agent registers it (keel agent --host-name); it need not be registered yet"`
}

// InterfaceBody is an interface to attach to a server.
type InterfaceBody struct {
	Network string `json:"network" minLength:"1" maxLength:"255" doc:"Network id or name (of the server's project) to give the server a NIC on: a port with an address from the network's first subnet and the project's default security group is made, then plugged into the server (live when it runs), as its last NIC"`
}
