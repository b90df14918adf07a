package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// socketFD finds the descriptor of pid's socket listening on addr: the
// socket's inode in /proc/PID/net/tcp, then the fd whose link names it.
func socketFD(t *testing.T, pid int, addr string) int {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	port := fmt.Sprintf(":%04X", ap.Port)
	inode := ""
	for _, l := range strings.Split(string(tcp), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && strings.HasSuffix(f[1], port) && f[3] == "0A" { // 0A: LISTEN
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

// A listener's accept loop killed under the running gateway (a copy of
// its socket's descriptor taken with pidfd_getfd and shut down: accept
// fails as on a socket that broke): the Critical alert is committed at
// once and reaches the administrator. (Should the gateway stop on it, the
// alert is in the spool and goes at the next start.)
func TestAlertListenerDies(t *testing.T) {
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{})
	g.start()
	pid := g.cmd.Process.Pid
	fd := socketFD(t, pid, g.addr)
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
	g.waitLog(`Info: A System/Critical alert was sent to admin@alerts\.test with subject "Critical-mx\.test: \(System\) Listener InboundMail stopped accepting connections"\.\n`)
	select {
	case <-g.exited:
		g.start() // the gateway stopped on it: the alert goes at the next start
	default:
	}
	waitAlert(t, hop, `^Critical-mx\.test: \(System\) Listener InboundMail stopped accepting connections$`)
}
