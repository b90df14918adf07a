package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
)

const healthConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 10s
min_free_space: 4M
listeners:
  - {name: InboundMail, interface: Management, address: %s}
delivery: {suspended: true}
tracking: {enabled: false}
http: {address: "%s"}
`

// /healthz and /readyz of the running binary: ready; not ready while the
// spool's disk is below its floor, and again ready when space returns;
// not ready during the drain of a shutdown, while /healthz still answers.
func TestReadyz(t *testing.T) {
	mnt := tmpfs.Mount(t, 24<<20)
	g := newGW(t, "10s")
	g.dir = filepath.Join(mnt, "data")
	web := freePort(t)
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(healthConfig, g.dir, g.addr, web)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	base := "http://" + web
	readyz := func() (int, string) { return fetch(t, base+"/readyz", "") }
	if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, body := fetch(t, base+"/healthz", ""); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	filler := tmpfs.Fill(t, mnt, "filler", 3<<20)
	wait.Until(t, "not ready below the floor", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk below its free-space floor")
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "ready again", func() bool { code, _ := readyz(); return code == http.StatusOK })

	// A session in DATA holds the drain (up to shutdown_timeout).
	c := dialSMTP(t, g.addr)
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.net>", "250")
	c.Cmd("DATA", "354")
	g.signal(syscall.SIGTERM)
	wait.Until(t, "not ready while shutting down", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	if code, _ := fetch(t, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz while shutting down: %d", code)
	}
	c.Send("Subject: last\r\n\r\nlast\r\n.\r\n")
	c.Expect("250")
	if err := g.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// listeningFD finds the descriptor of pid's socket listening on addr
// (from /proc: the socket's inode in /proc/PID/net/tcp, then the fd whose
// link names it).
func listeningFD(t *testing.T, pid int, addr string) int {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// local_address is the address in hex, little-endian on x86 and arm,
	// and the port; st 0A is LISTEN.
	port := fmt.Sprintf(":%04X", ap.Port)
	inode := ""
	for _, l := range strings.Split(string(tcp), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && strings.HasSuffix(f[1], port) && f[3] == "0A" {
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no listening socket on %s in /proc/%d/net/tcp", addr, pid)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); link == "socket:["+inode+"]" {
			fd, _ := strconv.Atoi(e.Name())
			return fd
		}
	}
	t.Fatalf("no descriptor of socket %s in /proc/%d/fd", inode, pid)
	return -1
}

// The listener's socket shut down under the running gateway (a copy of
// its descriptor taken with pidfd_getfd and shut down: its accept fails
// with EINVAL, as for a socket that broke): the gateway does not run on
// without it; it says why and stops with exit 1.
func TestAcceptLoopDeathStopsGateway(t *testing.T) {
	g := newGW(t, "5s")
	g.start()
	pid := g.cmd.Process.Pid
	fd := listeningFD(t, pid, g.addr)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		t.Skipf("pidfd_getfd (needs ptrace rights over the child): %v", err)
	}
	defer unix.Close(dup)
	if err := unix.Shutdown(dup, unix.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	err = g.wait()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1", err)
	}
	log := g.stderr.String()
	if !strings.Contains(log, "mailgate: a listener's accept loop died; shutting down") || !strings.Contains(log, "listener=InboundMail") {
		t.Errorf("the gateway does not say why it stopped:\n%s", log)
	}
}
