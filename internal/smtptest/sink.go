package smtptest

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/mailgate/mailgate/internal/wait"
)

// SinkPath is Postfix's smtp-sink, installed by scripts/test-deps.sh.
const SinkPath = "/usr/sbin/smtp-sink"

// Sink runs smtp-sink on addr ("127.0.0.1:0" for a free port) with the
// given options (see smtp-sink(1): -c, -e, -p, -B, ...) until the test
// ends, and returns the address it listens on. It drops root to nobody,
// as smtp-sink requires.
func Sink(t testing.TB, addr string, args ...string) string {
	t.Helper()
	if _, err := os.Stat(SinkPath); err != nil {
		t.Fatalf("smtp-sink is not installed (scripts/test-deps.sh installs it): %v", err)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if port == "0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	cmd := exec.Command(SinkPath, append(args, addr, "1000")...)
	stderr := NewLog()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("smtp-sink: %s", stderr)
		}
	})
	wait.Until(t, "smtp-sink listens on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}
