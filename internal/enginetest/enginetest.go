// Package enginetest starts the real scanning engines for the clients'
// tests: rspamd, SpamAssassin's spamd and ClamAV's clamd from Debian's
// packages, each with a configuration written to a temporary directory,
// listening on loopback ports chosen free (and clamd and spamd on a Unix
// socket too). One instance serves a whole test binary (Shared); it is
// stopped by the binary's TestMain. Outside CI a missing engine skips the
// test; with CI=1 it fails it.
//
// For the faults a real engine cannot be made to show (garbage, a reply
// held back, too many connections), Peer stands in for one on loopback,
// and CheckConcurrency checks a client's limit against it.
package enginetest

import (
	"bufio"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EICAR is the anti-virus test string: every engine reports it as a virus
// (here, by the test database Clamd writes).
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// GTUBE is the anti-spam test string: rspamd rejects it and SpamAssassin
// scores it 1000.
const GTUBE = `XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X`

// Engine is a running engine.
type Engine struct {
	Dir  string // its temporary directory (configuration, logs)
	TCP  string // 127.0.0.1:port of its scanning service
	Unix string // the path of its Unix socket; "" when it has none
	Log  string // its log file

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// ErrNotInstalled is returned when the engine's program is not on the system.
var ErrNotInstalled = errors.New("not installed")

// Stop ends the engine (and its workers: the process group) and removes
// its directory.
func (e *Engine) Stop() {
	if e == nil || e.cmd == nil {
		return
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.done
	}
	os.RemoveAll(e.Dir)
}

// freePort returns a loopback port free at the time of the call.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs a program in its own process group with its output in
// dir/output.log, and waits until ready reports success, the process exits,
// or bound passes.
func start(dir string, bound time.Duration, ready func() error, name string, args ...string) (*Engine, error) {
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &Engine{Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(bound)
	pause := 20 * time.Millisecond
	for {
		err := ready()
		if err == nil {
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("%s exited: %v\n%s", name, cmd.ProcessState, tail(filepath.Join(dir, "output.log")))
		case <-time.After(pause):
		}
		if time.Now().After(deadline) {
			e.Stop()
			return nil, fmt.Errorf("%s not ready after %v: %v\n%s", name, bound, err, tail(filepath.Join(dir, "output.log")))
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// tail returns the end of a file, for a failure's message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// retry runs start up to three times: a port found free may be taken by
// the time the engine binds it.
func retry(f func() (*Engine, error)) (*Engine, error) {
	var err error
	for range 3 {
		var e *Engine
		if e, err = f(); err == nil {
			return e, nil
		}
	}
	return nil, err
}

// Rspamd starts rspamd's normal worker and controller on loopback. Its
// DNS goes to a closed loopback port, so that no lookup leaves the machine
// or waits: lookups fail at once.
func Rspamd() (*Engine, error) {
	bin, err := exec.LookPath("rspamd")
	if err != nil {
		return nil, fmt.Errorf("rspamd: %w", ErrNotInstalled)
	}
	return retry(func() (*Engine, error) {
		dir, err := os.MkdirTemp("", "mailgate-rspamd-")
		if err != nil {
			return nil, err
		}
		normal, err1 := freePort()
		controller, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`.include "$CONFDIR/common.conf"
options {
    pidfile = "%[1]s/rspamd.pid";
    .include "$CONFDIR/options.inc"
    dns { nameserver = ["127.0.0.1:1"]; timeout = 100ms; retransmits = 1; }
}
logging { type = "file"; filename = "%[1]s/rspamd.log"; level = "info"; }
worker "normal" {
    bind_socket = "127.0.0.1:%[2]d";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}
worker "controller" {
    bind_socket = "127.0.0.1:%[3]d";
    .include "$CONFDIR/worker-controller.inc"
}
`, dir, normal, controller)
		if err := os.WriteFile(filepath.Join(dir, "rspamd.conf"), []byte(conf), 0o644); err != nil {
			return nil, err
		}
		tcp := fmt.Sprintf("127.0.0.1:%d", normal)
		ping := func() error {
			c := http.Client{Timeout: time.Second}
			resp, err := c.Get("http://" + tcp + "/ping")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if strings.TrimSpace(string(b)) != "pong" {
				return fmt.Errorf("ping: %q", b)
			}
			return nil
		}
		// -i: as root its workers would run as root, which rspamd refuses
		// without it; a test has no _rspamd user to give it.
		e, err := start(dir, 3*time.Minute, ping, bin, "-f", "-i", "-c", filepath.Join(dir, "rspamd.conf"),
			"--var", "DBDIR="+dir, "--var", "RUNDIR="+dir, "--var", "LOGDIR="+dir, "--var", "LOCAL_CONFDIR="+filepath.Join(dir, "local"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		e.TCP, e.Log = tcp, filepath.Join(dir, "rspamd.log")
		return e, nil
	})
}

// Spamd starts spamd with SpamAssassin's shipped rules, without network
// tests or Bayes, on a loopback port and a Unix socket.
func Spamd() (*Engine, error) {
	bin, err := exec.LookPath("spamd")
	if err != nil {
		return nil, fmt.Errorf("spamd: %w", ErrNotInstalled)
	}
	return retry(func() (*Engine, error) {
		dir, err := os.MkdirTemp("", "mailgate-spamd-")
		if err != nil {
			return nil, err
		}
		// spamd's children run as nobody and read the site configuration.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		site := filepath.Join(dir, "site")
		if err := os.Mkdir(site, 0o755); err != nil {
			return nil, err
		}
		// The .pre files load the plugins; without them nothing is scanned.
		pres, _ := filepath.Glob("/etc/spamassassin/*.pre")
		for _, p := range pres {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(site, filepath.Base(p)), b, 0o644); err != nil {
				return nil, err
			}
		}
		local := "use_bayes 0\nskip_rbl_checks 1\ndns_available no\n"
		if err := os.WriteFile(filepath.Join(site, "local.cf"), []byte(local), 0o644); err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		tcp := fmt.Sprintf("127.0.0.1:%d", port)
		unix := filepath.Join(dir, "spamd.sock")
		args := []string{"-x", "--listen", tcp, "--listen", unix, "--pidfile", filepath.Join(dir, "spamd.pid"),
			"--syslog", "stderr", "--siteconfigpath", site, "-m", "3", "--min-children", "1"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody")
		}
		ping := func() error {
			c, err := net.DialTimeout("tcp", tcp, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("PING SPAMC/1.5\r\n\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			if !strings.Contains(line, "PONG") {
				return fmt.Errorf("ping: %q %v", line, err)
			}
			return nil
		}
		e, err := start(dir, 2*time.Minute, ping, bin, args...)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		e.TCP, e.Unix, e.Log = tcp, unix, filepath.Join(dir, "output.log")
		return e, nil
	})
}

// Clamd starts clamd with a database of two signatures, the EICAR string
// anywhere in a file and its MD5 (ClamAV reports it "Eicar-Test-Signature.UNOFFICIAL"), a
// StreamMaxLength of streamMax bytes, encrypted archives reported
// (AlertEncrypted), on a loopback port and a Unix socket.
func Clamd(streamMax int64) (*Engine, error) { return ClamdWith(streamMax, "") }

// ClamdWith is Clamd with more clamd.conf lines (limits, alerts), each
// ending in a newline.
func ClamdWith(streamMax int64, conf string) (*Engine, error) {
	bin, err := exec.LookPath("clamd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/clamd"); err != nil {
			return nil, fmt.Errorf("clamd: %w", ErrNotInstalled)
		}
	}
	return retry(func() (*Engine, error) {
		dir, err := os.MkdirTemp("", "mailgate-clamd-")
		if err != nil {
			return nil, err
		}
		db := filepath.Join(dir, "db")
		if err := os.Mkdir(db, 0o755); err != nil {
			return nil, err
		}
		sig := fmt.Sprintf("%x:%d:Eicar-Test-Signature\n", md5.Sum([]byte(EICAR)), len(EICAR))
		if err := os.WriteFile(filepath.Join(db, "test.hdb"), []byte(sig), 0o644); err != nil {
			return nil, err
		}
		// The same string anywhere in a file (a body signature), so that
		// a mail whose text part holds it, with its line end, is found
		// too: the hash matches only a file of exactly those bytes.
		body := fmt.Sprintf("Eicar-Test-Signature:0:*:%x\n", EICAR)
		if err := os.WriteFile(filepath.Join(db, "test.ndb"), []byte(body), 0o644); err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		tcp := fmt.Sprintf("127.0.0.1:%d", port)
		unix := filepath.Join(dir, "clamd.sock")
		user := ""
		if os.Geteuid() == 0 {
			user = "User root\n"
		}
		cf := fmt.Sprintf("TCPSocket %d\nTCPAddr 127.0.0.1\nLocalSocket %s\nDatabaseDirectory %s\nForeground yes\n%s"+
			"StreamMaxLength %d\nLogFile %s\nScanMail yes\nScanArchive yes\nAlertEncrypted yes\nMaxThreads 4\n",
			port, unix, db, user, streamMax, filepath.Join(dir, "clamd.log")) + conf
		if err := os.WriteFile(filepath.Join(dir, "clamd.conf"), []byte(cf), 0o644); err != nil {
			return nil, err
		}
		ping := func() error {
			c, err := net.DialTimeout("unix", unix, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("zPING\x00"))
			b, err := bufio.NewReader(c).ReadString(0)
			if b != "PONG\x00" {
				return fmt.Errorf("ping: %q %v", b, err)
			}
			return nil
		}
		e, err := start(dir, 2*time.Minute, ping, bin, "-c", filepath.Join(dir, "clamd.conf"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		e.TCP, e.Unix, e.Log = tcp, unix, filepath.Join(dir, "clamd.log")
		return e, nil
	})
}

// Shared is one engine for a test binary, started by the first test that
// asks for it.
type Shared struct {
	Start func() (*Engine, error)

	once sync.Once
	e    *Engine
	err  error
}

// Get returns the running engine. When it cannot start, the test is
// skipped, or failed under CI=1 (CI must run every engine).
func (s *Shared) Get(t testing.TB) *Engine {
	t.Helper()
	s.once.Do(func() { s.e, s.err = s.Start() })
	if s.err != nil {
		if os.Getenv("CI") == "1" {
			t.Fatalf("engine: %v", s.err)
		}
		t.Skipf("engine: %v", s.err)
	}
	return s.e
}

// Stop stops the engine if it was started.
func (s *Shared) Stop() {
	s.once.Do(func() { s.err = errors.New("stopped") })
	s.e.Stop()
}

// Context returns a context for one test's requests, ended with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Mail returns a small message with the given body, CRLF line ends.
func Mail(from, to, subject, body string) []byte {
	msg := "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <" + fmt.Sprintf("%x", md5.Sum([]byte(subject+body))) +
		"@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	if !strings.HasSuffix(msg, "\r\n") {
		msg += "\r\n"
	}
	return []byte(msg)
}
