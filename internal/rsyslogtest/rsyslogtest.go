// Package rsyslogtest runs a real rsyslogd on loopback for tests, with a
// configuration the test writes: one input (udp, tcp or tls), every
// message written to a file with the fields rsyslog parsed from it.
package rsyslogtest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

const rsyslogd = "/usr/sbin/rsyslogd"

// Server is a real rsyslogd on loopback, started with a configuration the
// test writes: one input (udp, tcp or tls), every message written to Out
// with the fields rsyslog parsed from it, one line each:
//
//	facility|severity|hostname|app-name|protocol-version|rawmsg
type Server struct {
	t       *testing.T
	dir     string
	conf    string
	Port    int // on 127.0.0.1
	network string
	Out     string // the file rsyslog writes
	cmd     *exec.Cmd
	exited  chan error
	CA      *smtptest.CA // for tls: the CA of the server's certificate
}

// Need skips the test when rsyslogd (or its TLS driver for tls) is
// not installed, and fails it under CI=1.
func Need(t *testing.T, network string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "1" {
			t.Fatalf("CI=1 and %s: the syslog push tests must run in CI (scripts/test-deps.sh)", what)
		}
		t.Skipf("%s: skipping (scripts/test-deps.sh installs it)", what)
	}
	if _, err := os.Stat(rsyslogd); err != nil {
		missing("no " + rsyslogd)
	}
	if network == "tls" {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
			if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
				missing("no rsyslog TLS driver (package rsyslog-gnutls)")
			}
		}
	}
}

// Start starts rsyslogd and waits until it listens; the test's cleanup
// stops it.
func Start(t *testing.T, network string) *Server {
	t.Helper()
	Need(t, network)
	dir := t.TempDir()
	r := &Server{t: t, dir: dir, network: network, conf: filepath.Join(dir, "rsyslog.conf"),
		Out: filepath.Join(dir, "out.log"), Port: freePort(t, network)}
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"64k\"", dir)
	if network == "tls" {
		r.CA = smtptest.NewCA(t)
		cert, key := serverFiles(t, r.CA, dir, "127.0.0.1")
		fmt.Fprintf(&b, " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=%q"+
			" defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q", r.CA.CertFile, cert, key)
	}
	b.WriteString(")\n")
	switch network {
	case "udp":
		b.WriteString("module(load=\"imudp\")\n")
		fmt.Fprintf(&b, "input(type=\"imudp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"r\")\n", r.Port)
	case "tcp":
		b.WriteString("module(load=\"imtcp\")\n")
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"r\")\n", r.Port)
	case "tls":
		b.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n")
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"r\")\n", r.Port)
	}
	b.WriteString(`template(name="fields" type="string" string="%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%protocol-version%|%rawmsg%\n")` + "\n")
	fmt.Fprintf(&b, "ruleset(name=\"r\") { action(type=\"omfile\" file=%q template=\"fields\") }\n", r.Out)
	if err := os.WriteFile(r.conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	t.Cleanup(r.Stop)
	return r
}

// serverFiles writes a certificate for names, signed by ca, and its key,
// as PEM files for rsyslog's GnuTLS driver.
func serverFiles(t *testing.T, ca *smtptest.CA, dir string, names ...string) (cert, key string) {
	t.Helper()
	c := ca.Server(t, names...).Certificates[0]
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// Restart starts rsyslogd again after Stop, with the same configuration
// and output file.
func (r *Server) Restart() {
	r.t.Helper()
	r.cmd = exec.Command(rsyslogd, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	log := smtptest.NewLog()
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exited = make(chan error, 1)
	go func() { r.exited <- r.cmd.Wait() }()
	wait.Until(r.t, fmt.Sprintf("rsyslogd listens on %s port %d (its output: %s)", r.network, r.Port, log), func() bool {
		select {
		case err := <-r.exited:
			r.t.Fatalf("rsyslogd exited: %v\n%s", err, log)
		default:
		}
		return listening(r.network, r.Port)
	})
}

// Stop ends rsyslogd with SIGTERM, as an administrator's restart does, and
// waits for it: everything it read is in out then.
func (r *Server) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
		r.t.Error("rsyslogd did not stop on SIGTERM")
	}
	r.cmd = nil
}

// Signal sends rsyslogd a signal (SIGSTOP, SIGCONT).
func (r *Server) Signal(s syscall.Signal) {
	if err := r.cmd.Process.Signal(s); err != nil {
		r.t.Fatal(err)
	}
}

// Lines returns what rsyslog wrote so far, one received message each.
func (r *Server) Lines() []string {
	b, err := os.ReadFile(r.Out)
	if err != nil {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// WaitFor waits until a received message's raw text ends with suffix.
func (r *Server) WaitFor(suffix string) []string {
	r.t.Helper()
	var ls []string
	wait.Until(r.t, "rsyslog received a line ending "+suffix, func() bool {
		ls = r.Lines()
		for i := len(ls) - 1; i >= 0; i-- {
			if strings.HasSuffix(ls[i], suffix) {
				return true
			}
		}
		return false
	})
	return ls
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// listening reports whether a socket is bound to 127.0.0.1:port, from
// /proc/net: dialling would put a probe line into the log under test.
func listening(network string, port int) bool {
	file, state := "/proc/net/tcp", "0A" // LISTEN
	if network == "udp" {
		file, state = "/proc/net/udp", "07" // CLOSE: a bound UDP socket
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 3 && f[1] == want && f[3] == state {
			return true
		}
	}
	return false
}
