package main

import (
	"crypto/md5"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// A listener's accept loop killed under the running gateway (a copy of
// its socket's descriptor taken with pidfd_getfd and shut down: accept
// fails as on a socket that broke): the Critical alert is committed
// before the gateway stops on it, and reaches the administrator, before
// the exit or after the next start.
func TestAlertListenerDies(t *testing.T) {
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{})
	g.start()
	pid := g.cmd.Process.Pid
	shutListener(t, pid, g.addr)
	g.waitLog(`Info: A System/Critical alert was sent to admin@alerts\.test with subject "Critical-mx\.test: \(System\) Listener InboundMail stopped accepting connections"\.\n`)
	// The gateway stops on a dead listener: the alert goes before it
	// exits, or from the spool at the next start.
	const re = `^Critical-mx\.test: \(System\) Listener InboundMail stopped accepting connections$`
	exited := false
	wait.Until(t, "the alert, or the gateway's exit", func() bool {
		if len(alertsReceived(hop, re)) > 0 {
			return true
		}
		select {
		case <-g.exited:
			exited = true
			return true
		default:
			return false
		}
	})
	if exited && len(alertsReceived(hop, re)) == 0 {
		g.start()
		waitAlert(t, hop, re)
	}
	if got := alertsReceived(hop, re); len(got) != 1 {
		t.Errorf("alerts %q, want one", got)
	}
}

// clamdAt runs ClamAV's clamd on addr with a one-signature database under
// dir, until stopped or the test ends; it returns once clamd answers PING.
func clamdAt(t *testing.T, dir, addr string) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/clamd"); err != nil {
			if os.Getenv("CI") == "1" {
				t.Fatal("clamd is not installed")
			}
			t.Skip("clamd is not installed (scripts/test-deps.sh installs it)")
		}
	}
	db := filepath.Join(dir, "db")
	os.MkdirAll(db, 0o755)
	const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
	if err := os.WriteFile(filepath.Join(db, "test.hdb"), fmt.Appendf(nil, "%x:%d:Eicar-Test-Signature\n", md5.Sum([]byte(eicar)), len(eicar)), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	user := ""
	if os.Geteuid() == 0 {
		user = "User root\n"
	}
	conf := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "TCPSocket %s\nTCPAddr %s\nDatabaseDirectory %s\nForeground yes\n%sLogFile %s\nMaxThreads 2\n",
		port, host, db, user, filepath.Join(dir, "clamd.log")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := smtptest.NewLog()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	t.Cleanup(stop)
	wait.UntilWithin(t, time.Minute, "clamd answers PING on "+addr, func() bool {
		select {
		case <-exited:
			t.Fatalf("clamd exited:\n%s", out)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("zPING\x00"))
		b := make([]byte, 5)
		n, _ := io.ReadFull(c, b)
		return string(b[:n]) == "PONG\x00"
	})
	return stop
}

// A scanner killed: ClamAV's clamd answers, is killed (SIGKILL), and the
// Anti-Virus Critical alert follows; started again, "Cleared".
func TestAlertScannerKilled(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	kill := clamdAt(t, dir, addr)
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{top: "scanners:\n  clamav: {address: \"" + addr + "\", timeout: 2s}", alerts: "  probe_timeout: 2s"})
	g.start()
	kill()
	subj := waitAlert(t, hop, `^Critical-mx\.test: \(Anti-Virus\) ClamAV \(clamd `+regexp.QuoteMeta(addr)+`\) is unreachable$`)
	g.waitLog(`Info: A Anti-Virus/Critical alert was sent to admin@alerts\.test with subject "` + regexp.QuoteMeta(subj) + `"\.\n`)
	clamdAt(t, dir, addr)
	waitAlert(t, hop, `^Information-mx\.test: \(Anti-Virus\) Cleared: ClamAV \(clamd `+regexp.QuoteMeta(addr)+`\) is unreachable$`)
	if got := alertsReceived(hop, `Anti-Virus`); len(got) != 2 {
		t.Errorf("alerts %q: want the Critical and its Cleared (none while clamd answered)", got)
	}
}
