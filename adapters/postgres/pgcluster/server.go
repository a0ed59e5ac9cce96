package pgcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// portFile records the cluster's port; it also marks the cluster as ours.
	portFile = "keel-port"
	// logFile receives the server log, inside the data directory.
	logFile = "server.log"
	// startAttempts bounds the retries of pg_ctl start.
	startAttempts = 20
	// addrInUse is logged when the port is taken.
	addrInUse = "Address already in use"
	// shmemInUse is logged while children of a killed server still run.
	shmemInUse = "pre-existing shared memory block"
)

// serverOptions are the postgres options for a start on port. Settings are
// passed on every start rather than written to postgresql.conf.
func serverOptions(port int) string {
	return strings.Join([]string{
		"-p " + strconv.Itoa(port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=.", // the data directory: short, private
		"-c max_connections=200",
		"-c shared_buffers=128MB",
		"-c fsync=on",
	}, " ")
}

// startServer starts the server with pg_ctl -w and returns its port. It
// retries on a port taken meanwhile (when the port was not asked for) and
// while the shared memory of a killed server is still held by its children.
func (b *binaries) startServer(ctx context.Context, o Options) (int, error) {
	port, err := pickPort(o)
	if err != nil {
		return 0, err
	}
	for attempt := 1; ; attempt++ {
		serverLog, err := b.startOnce(ctx, o, port)
		if err == nil {
			return port, nil
		}
		if attempt >= startAttempts || !retryable(ctx, o, serverLog) {
			return 0, fmt.Errorf("start postgres in %s: %w\nserver log:\n%s", o.Dir, err, serverLog)
		}
		if strings.Contains(serverLog, addrInUse) {
			if port, err = freePort(); err != nil {
				return 0, err
			}
		}
	}
}

// startOnce runs pg_ctl start on port and, when it fails, returns what the
// server logged meanwhile.
func (b *binaries) startOnce(ctx context.Context, o Options, port int) (string, error) {
	o.Logf("pgcluster: starting postgres in %s on port %d", o.Dir, port)
	logPath := filepath.Join(o.Dir, logFile)
	offset := fileSize(logPath)
	err := b.run(ctx, o.Dir, "pg_ctl", "start", "-D", o.Dir, "-w", "-t", "120",
		"-l", logPath, "-o", serverOptions(port))
	if err != nil {
		return strings.TrimSpace(readFrom(logPath, offset)), err
	}
	return "", nil
}

// retryable reports whether a start that failed with serverLog may be tried
// again, after a pause when a killed server's memory is still in use.
func retryable(ctx context.Context, o Options, serverLog string) bool {
	switch {
	case ctx.Err() != nil:
		return false
	case o.Port == 0 && strings.Contains(serverLog, addrInUse):
		return true
	case strings.Contains(serverLog, shmemInUse):
		return sleep(ctx, 250*time.Millisecond)
	}
	return false
}

// pickPort returns o.Port, else the port recorded in o.Dir if it is free,
// else a free loopback port.
func pickPort(o Options) (int, error) {
	if o.Port != 0 {
		return o.Port, nil
	}
	if port := readPortFile(o.Dir); port > 0 && portFree(port) {
		return port, nil
	}
	return freePort()
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readPortFile returns the port recorded in dir, or 0.
func readPortFile(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, portFile))
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(firstLine(data))
	return port
}

// writePortFile records port in dir.
func (b *binaries) writePortFile(dir string, port int) error {
	path := filepath.Join(dir, portFile)
	if err := os.WriteFile(path, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return fmt.Errorf("record postgres port: %w", err)
	}
	if err := b.chown(path); err != nil {
		return fmt.Errorf("record postgres port: %w", err)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the end of the file at path from offset on, at most 8 KiB.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const limit = 8 << 10
	if size := fileSize(path); size-offset > limit {
		offset = size - limit
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(io.LimitReader(f, limit))
	return string(data)
}

// firstLine returns the first line of data without surrounding space.
func firstLine(data []byte) string {
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
