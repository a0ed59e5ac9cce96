package server_test

import (
	"slices"
	"testing"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

const (
	opAttach = "op-attach"
	opDetach = "op-detach"
	portA    = "port-a"
	portB    = "port-b"
)

var (
	nicA = server.NIC{Port: portA, Network: "net-a", MAC: "fa:16:3e:00:00:0a", IPs: []string{"10.0.0.5"}}
	nicB = server.NIC{Port: portB, Network: "net-b", MAC: "fa:16:3e:00:00:0b", IPs: []string{"10.0.1.5"}}
)

// Histories of interface changes, named as a user sees the server.
var (
	attachAsked   = plus(active, &server.InterfaceAttachRequested{Host: h1, Operation: opAttach, Network: "net-b", At: t0})
	attachPlugged = plus(attachAsked, &server.InterfacePortSet{Host: h1, Operation: opAttach, NIC: nicB, At: t0})
	withTwoNICs   = plus(attachPlugged, &server.InterfaceAttached{Host: h1, Operation: opAttach, NIC: nicB, At: t0})
	detachAsked   = plus(withTwoNICs, &server.InterfaceDetachRequested{Host: h1, Operation: opDetach, NIC: nicB, At: t0})
	withNICA      = plus(active, &server.InterfaceAttachRequested{Host: h1, Operation: "op-a", Network: "net-a", At: t0},
		&server.InterfacePortSet{Host: h1, Operation: "op-a", NIC: nicA, At: t0}, &server.InterfaceAttached{Host: h1, Operation: "op-a", NIC: nicA, At: t0})
)

func attach(network string) server.AttachInterface {
	return server.AttachInterface{Operation: opNew, Network: network, At: t1}
}

// withNICs is an ACTIVE server with n NICs attached one by one.
func withNICs(n int) []domain.Event {
	h := active
	for i := range n {
		op := "op-" + string(rune('a'+i))
		nic := server.NIC{Port: "port-" + op, Network: "net-1", MAC: "fa:16:3e:00:00:0" + string(rune('0'+i))}
		h = plus(h, &server.InterfaceAttachRequested{Host: h1, Operation: op, Network: "net-1"},
			&server.InterfacePortSet{Host: h1, Operation: op, NIC: nic}, &server.InterfaceAttached{Host: h1, Operation: op, NIC: nic})
	}
	return h
}

// An interface is attached to an ACTIVE or STOPPED server with no task and
// fewer than 8 NICs; anything else is refused with the reason.
func TestAttachInterface(t *testing.T) {
	run(t, []tc{
		{"active", active, attach("net-b"), then(&server.InterfaceAttachRequested{Host: h1, Operation: opNew, Network: "net-b", At: t1})},
		{"stopped", stopped, attach("net-b"), then(&server.InterfaceAttachRequested{Host: h1, Operation: opNew, Network: "net-b", At: t1})},
		{"seven NICs", withNICs(7), attach("net-b"), then(&server.InterfaceAttachRequested{Host: h1, Operation: opNew, Network: "net-b", At: t1})},
		{"eight NICs", withNICs(8), attach("net-b"), refused(domain.Conflict, "it has 8 NICs, the most a server can have")},
		{"no network", active, attach(""), refused(domain.Invalid, "a network is needed")},
		{"while another attach", attachAsked, attach("net-c"), refused(domain.Conflict, "cannot attach an interface to server srv-1: it is attaching_interface (operation op-attach)")},
		{"while stopping", stopping, attach("net-b"), refused(domain.Conflict, "it is powering_off")},
		{"building", building, attach("net-b"), refused(domain.Conflict, "it is scheduling")},
		{"error", errored, attach("net-b"), refused(domain.Conflict, "it is ERROR; only an ACTIVE or STOPPED server")},
		{"deleted", deleted, attach("net-b"), refused(domain.NotFound, "not found")},
	})
}

// The port made for the interface is recorded once; another port, or a
// port for another operation, is refused.
func TestSetInterfacePort(t *testing.T) {
	set := server.SetInterfacePort{Operation: opAttach, NIC: nicB, At: t1}
	run(t, []tc{
		{"recorded", attachAsked, set, then(&server.InterfacePortSet{Host: h1, Operation: opAttach, NIC: nicB, At: t1})},
		{"again: no change", attachPlugged, set, then()},
		{"another port", attachPlugged, server.SetInterfacePort{Operation: opAttach, NIC: server.NIC{Port: "port-c", Network: "net-b", MAC: "fa:16:3e:00:00:0c"}},
			refused(domain.Conflict, "has its port port-b already")},
		{"on another network", attachAsked, server.SetInterfacePort{Operation: opAttach, NIC: nicA}, refused(domain.Invalid, "want a port on network net-b")},
		{"another operation", attachAsked, server.SetInterfacePort{Operation: opStart, NIC: nicB}, refused(domain.Conflict, "not attaching the interface of operation op-start")},
		{"no attach", active, set, refused(domain.Conflict, "not attaching")},
	})
}

func ifaceReport(kind server.ReportKind, port string) server.Report {
	return server.Report{Host: h1, Kind: kind, Port: port, Reason: "the host could not", At: t1}
}

// The host's report on the interface in progress ends the task: the NIC is
// added or removed, or stays as it was when the host could not.
func TestInterfaceReports(t *testing.T) {
	run(t, []tc{
		{"attached", attachPlugged, ifaceReport(server.ReportInterfaceAttached, portB),
			then(&server.InterfaceAttached{Host: h1, Operation: opAttach, NIC: nicB, At: t1})},
		{"attach failed", attachPlugged, ifaceReport(server.ReportInterfaceFailed, portB),
			then(&server.InterfaceFailed{Host: h1, Task: server.AttachingInterface, Operation: opAttach, Port: portB, MAC: nicB.MAC, Reason: "the host could not", At: t1})},
		{"detached", detachAsked, ifaceReport(server.ReportInterfaceDetached, portB),
			then(&server.InterfaceDetached{Host: h1, Operation: opDetach, Port: portB, At: t1})},
		{"detach failed", detachAsked, ifaceReport(server.ReportInterfaceFailed, portB),
			then(&server.InterfaceFailed{Host: h1, Task: server.DetachingInterface, Operation: opDetach, Port: portB, MAC: nicB.MAC, Reason: "the host could not", At: t1})},
		{"attached, another port (stale)", attachPlugged, ifaceReport(server.ReportInterfaceAttached, portA), refused(domain.Conflict, `on port "port-a" does not answer`)},
		{"attached, before a port was made", attachAsked, ifaceReport(server.ReportInterfaceAttached, ""), refused(domain.Conflict, "does not answer")},
		{"detached while attaching", attachPlugged, ifaceReport(server.ReportInterfaceDetached, portB), refused(domain.Conflict, "which is attaching_interface")},
		{"attached with no task", withTwoNICs, ifaceReport(server.ReportInterfaceAttached, portB), refused(domain.Conflict, "which is ACTIVE")},
	})
}

// A NIC is detached by its port, from an ACTIVE or STOPPED server with no task.
func TestDetachInterface(t *testing.T) {
	detach := func(port string) server.DetachInterface {
		return server.DetachInterface{Operation: opNew, Port: port, At: t1}
	}
	run(t, []tc{
		{"attached NIC", withTwoNICs, detach(portB), then(&server.InterfaceDetachRequested{Host: h1, Operation: opNew, NIC: nicB, At: t1})},
		{"unknown port", withTwoNICs, detach("port-z"), refused(domain.NotFound, `server srv-1 has no interface with port "port-z"`)},
		{"while detaching", detachAsked, detach(portB), refused(domain.Conflict, "it is detaching_interface")},
		{"building", building, detach(portB), refused(domain.Conflict, "it is scheduling")},
	})
}

// A deadline ends an interface change as failed.
func TestAbortInterfaceChange(t *testing.T) {
	abort := server.AbortTask{Reason: "step attach did not finish within 1m0s", At: t1}
	run(t, []tc{
		{"attach before its port", attachAsked, abort, then(&server.InterfaceFailed{Host: h1, Task: server.AttachingInterface, Operation: opAttach, Reason: abort.Reason, At: t1})},
		{"attach with its port", attachPlugged, abort, then(&server.InterfaceFailed{Host: h1, Task: server.AttachingInterface, Operation: opAttach, Port: portB, MAC: nicB.MAC, Reason: abort.Reason, At: t1})},
		{"detach", detachAsked, abort, then(&server.InterfaceFailed{Host: h1, Task: server.DetachingInterface, Operation: opDetach, Port: portB, MAC: nicB.MAC, Reason: abort.Reason, At: t1})},
	})
}

// What each interface event leaves: the NICs, the task, what the server
// holds for its ports' release.
func TestInterfaceStates(t *testing.T) {
	derived := func(i int) string { return "derived-" + string(rune('0'+i)) }
	attachPort := func(op string) string { return "attach-port-of-" + op }
	for _, c := range []struct {
		name  string
		given []domain.Event
		task  server.Task
		nics  []string
		ports []string
	}{
		{"attach asked", attachAsked, server.AttachingInterface, nil, []string{"attach-port-of-op-attach"}},
		{"port made", attachPlugged, server.AttachingInterface, nil, []string{portB, "attach-port-of-op-attach"}},
		{"attached", withTwoNICs, server.NoTask, []string{portB}, []string{portB}},
		{"detach asked", detachAsked, server.DetachingInterface, []string{portB}, []string{portB}},
		{"detached", plus(detachAsked, &server.InterfaceDetached{Host: h1, Port: portB}), server.NoTask, nil, nil},
		{"detach failed", plus(detachAsked, &server.InterfaceFailed{Task: server.DetachingInterface, Port: portB, Reason: "no"}), server.NoTask, []string{portB}, []string{portB}},
		{"attach failed", plus(attachPlugged, &server.InterfaceFailed{Task: server.AttachingInterface, Port: portB, Reason: "no"}), server.NoTask, nil, []string{"attach-port-of-op-attach"}},
		{"two NICs", plus(withNICA, withTwoNICs[len(active):]...), server.NoTask, []string{portA, portB}, []string{portA, portB}},
		{"deleted while attaching", plus(attachPlugged, &server.DeleteRequested{Host: h1, Superseded: opAttach, Operation: opDelete}), server.DeleteTask, nil, []string{portB, "attach-port-of-op-attach"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fold(c.given)
			var nics []string
			for _, n := range s.NICs {
				nics = append(nics, n.Port)
			}
			if s.Task != c.task || !slices.Equal(nics, c.nics) {
				t.Fatalf("task %q NICs %v; want %q %v", s.Task, nics, c.task, c.nics)
			}
			if got := s.Ports(derived, attachPort); !slices.Equal(got, c.ports) {
				t.Fatalf("ports %v; want %v", got, c.ports)
			}
		})
	}
	// A server created with networks owns their ports by derived ids too.
	s := fold(plus(none, &server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opCreate, Networks: []string{"n1", "n2"}}))
	if got := s.Ports(derived, attachPort); !slices.Equal(got, []string{"derived-0", "derived-1"}) {
		t.Fatalf("ports of a server with networks: %v", got)
	}
	if s := fold(attachPlugged); s.Status != server.StatusActive {
		t.Fatalf("attaching: status %s, want ACTIVE", s.Status)
	}
	if s := fold(plus(attachPlugged, &server.InterfaceFailed{Task: server.AttachingInterface, Reason: "no"})); s.Status != server.StatusActive || s.Reason != "no" {
		t.Fatalf("attach failed: status %s reason %q", s.Status, s.Reason)
	}
}
