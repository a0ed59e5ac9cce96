package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/libvirt"
)

// libvirtHost connects to the node's libvirtd and makes its host: the
// libvirt driver and what the node registers with. The returned function
// closes the connection.
func libvirtHost(ctx context.Context, f agentFlags, link *hostlink.Client, log *slog.Logger) (agent.Host, func(), error) {
	name := f.hostName
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return agent.Host{}, nil, fmt.Errorf("--host-name: %w", err)
		}
	}
	l, uri, err := dialLibvirt(f.libvirtURI)
	if err != nil {
		return agent.Host{}, nil, err
	}
	closeConn := func() { _ = l.Disconnect() }
	accel := libvirt.Accel{DomainType: "test", Why: "the test driver"}
	switch {
	case uri == golibvirt.TestDefault:
	case f.accel == "kvm":
		accel = libvirt.Accel{DomainType: "kvm", CPUMode: "host-model", Why: "--accel kvm"}
	case f.accel == "tcg":
		accel = libvirt.Accel{DomainType: "qemu", Why: "--accel tcg"}
	case f.accel == "auto":
		accel = libvirt.DetectAccel(ctx, "qemu-system-x86_64")
	default:
		closeConn()
		return agent.Host{}, nil, fmt.Errorf("--accel %q: auto, kvm or tcg", f.accel)
	}
	// Lifecycle events come on a connection of their own.
	events, _, err := dialLibvirt(f.libvirtURI)
	if err != nil {
		closeConn()
		return agent.Host{}, nil, err
	}
	closeConn = func() { _ = l.Disconnect(); disconnectWithin(events, 3*time.Second, log) }
	redial := func() (*golibvirt.Libvirt, error) { l, _, err := dialLibvirt(f.libvirtURI); return l, err }
	d, err := libvirt.New(libvirt.Config{Conn: l, Events: events, Dial: redial, Dir: f.dataDir, DomainType: accel.DomainType, CPUMode: accel.CPUMode, StopTimeout: f.stopTimeout, Log: log,
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) { return link.Image(ctx, name, object) }})
	if err != nil {
		closeConn()
		return agent.Host{}, nil, err
	}
	info, err := d.HostInfo(name)
	if err != nil {
		closeConn()
		return agent.Host{}, nil, err
	}
	log.Info("libvirt node", "host", name, "uri", f.libvirtURI, "domain_type", accel.DomainType, "cpu_mode", accel.CPUMode, "why", accel.Why,
		"vcpus", info.VCPUs, "ram_mib", info.RAMMiB, "disk_gib", info.DiskGiB, "cpu_model", info.CPUModel, "data_dir", f.dataDir)
	return agent.Host{Info: info, Driver: d}, closeConn, nil
}

// disconnectWithin closes the lifecycle events' connection, giving up
// after d: go-libvirt can deadlock a connection whose event stream is shut
// down while libvirtd still sends it events (a domain destroyed as the
// agent stops; digitalocean/go-libvirt#191), and a stopping agent must not
// hang on it. The process is ending: what is left goes with it.
func disconnectWithin(l *golibvirt.Libvirt, d time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { _ = l.Disconnect(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		log.Warn("the libvirt events connection did not close in time; stopping without it", "waited", d)
	}
}

// dialLibvirt connects to libvirtd as uri says: qemu:///system or
// test:///default, with ?socket=PATH for a libvirtd on another socket.
func dialLibvirt(raw string) (*golibvirt.Libvirt, golibvirt.ConnectURI, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("--libvirt-uri %q: %w", raw, err)
	}
	var uri golibvirt.ConnectURI
	switch u.Scheme + "://" + u.Host + u.Path {
	case "qemu:///system":
		uri = golibvirt.QEMUSystem
	case "test:///default":
		uri = golibvirt.TestDefault
	default:
		return nil, "", fmt.Errorf("--libvirt-uri %q: qemu:///system or test:///default (with ?socket=PATH)", raw)
	}
	sock := u.Query().Get("socket")
	if sock == "" {
		sock = "/run/libvirt/libvirt-sock"
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock)))
	if err := l.ConnectToURI(uri); err != nil {
		return nil, "", fmt.Errorf("connect to libvirtd at %s (%s): %w", sock, uri, err)
	}
	return l, uri, nil
}
