package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

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

// shutListener shuts down pid's socket listening on addr, through a copy
// of its descriptor taken with pidfd_getfd: the process's accept then
// fails as on a socket that broke. It skips where the kernel or the
// test's rights allow no pidfd_getfd.
func shutListener(t *testing.T, pid int, addr string) {
	t.Helper()
	fd := listeningFD(t, pid, addr)
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
}

// The listener's socket shut down under the running gateway (a copy of
// its descriptor taken with pidfd_getfd and shut down: its accept fails
// with EINVAL, as for a socket that broke): the gateway does not run on
// without it; it says why and stops with exit 1.
func TestAcceptLoopDeathStopsGateway(t *testing.T) {
	g := newGW(t, "5s")
	g.start()
	pid := g.cmd.Process.Pid
	shutListener(t, pid, g.addr)
	err := g.wait()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1", err)
	}
	log := g.stderr.String()
	if !strings.Contains(log, "mailgate: a listener's accept loop died; shutting down") || !strings.Contains(log, "listener=InboundMail") {
		t.Errorf("the gateway does not say why it stopped:\n%s", log)
	}
}
