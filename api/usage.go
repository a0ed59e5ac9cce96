package api

import "time"

// Usage is what a project's servers ran within a window, and its price.
type Usage struct {
	ProjectID string      `json:"project_id" format:"uuid"`
	From      time.Time   `json:"from" doc:"Start of the window (included)"`
	To        time.Time   `json:"to" doc:"End of the window (excluded)"`
	Currency  string      `json:"currency" doc:"The price table's currency; empty when keel serve has no price table (every cost is 0)"`
	Totals    UsageTotals `json:"totals"`
	Lines     []UsageLine `json:"lines" doc:"One per server and flavor that ran within the window, by server name"`
}

// UsageTotals sum the lines of a usage.
type UsageTotals struct {
	ServerHours float64 `json:"server_hours"`
	VCPUHours   float64 `json:"vcpu_hours"`
	RAMGiBHours float64 `json:"ram_gib_hours"`
	Cost        float64 `json:"cost"`
}

// UsageLine is how long one server ran at one flavor within the window.
type UsageLine struct {
	ResourceType string      `json:"resource_type" enum:"server"`
	ResourceID   string      `json:"resource_id" format:"uuid"`
	Name         string      `json:"name" doc:"The server's name at create"`
	Flavor       UsageFlavor `json:"flavor"`
	Seconds      int64       `json:"seconds" doc:"Running time inside the window, to the second"`
	Hours        float64     `json:"hours"`
	VCPUHours    float64     `json:"vcpu_hours"`
	RAMGiBHours  float64     `json:"ram_gib_hours"`
	Cost         float64     `json:"cost" doc:"Hours × the flavor's hourly price (rounded to 6 decimals)"`
}

// UsageFlavor is the size a server ran at.
type UsageFlavor struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	VCPUs  int    `json:"vcpus"`
	RAMMiB int    `json:"ram_mib"`
}
