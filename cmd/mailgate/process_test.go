package main

// Tests of the mailgate binary as a process: real clients (swaks, Python's
// smtplib, Postfix's smtp-source), signals, and a SIGKILL under load.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailgate-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailgate")
	if err := buildBinary(binary); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopScanEngines()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gw is a mailgate process.
type gw struct {
	t      *testing.T
	dir    string // data_dir
	config string
	addr   string
	cmd    *exec.Cmd
	bin    string        // the binary to run; "" for binary
	stderr *smtptest.Log // read while it is written
	exited chan error
}

// freePort finds a free loopback port for a listener.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const testConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: %s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    max_connections: 2000
    hat:
      policy_defaults: {max_concurrency_per_ip: 2000}
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
      policies:
        RELAYED: {action: relay}
      default_policy: ACCEPTED
delivery: {suspended: true}
http: {address: ""}
`

func newGW(t *testing.T, shutdown string) *gw {
	t.Helper()
	dir := t.TempDir()
	g := &gw{t: t, dir: dir, addr: freePort(t), config: filepath.Join(dir, "mailgate.yaml")}
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(testConfig, dir, shutdown, g.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gw) start() {
	g.t.Helper()
	bin := g.bin
	if bin == "" {
		bin = binary
	}
	g.cmd = exec.Command(bin, "serve", "--config", g.config)
	if g.stderr == nil {
		g.stderr = smtptest.NewLog()
	}
	g.cmd.Stderr = g.stderr
	starts := strings.Count(g.stderr.String(), "mailgate: listening")
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.exited = make(chan error, 1)
	go func() { g.exited <- g.cmd.Wait() }()
	g.t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			<-g.exited
		}
	})
	// Wait for the listener's own word rather than probe it: a probe would
	// be a connection, with an ICID, in the log.
	for i := 0; i < 200; i++ {
		if strings.Count(g.stderr.String(), "mailgate: listening") > starts {
			return
		}
		select {
		case err := <-g.exited:
			g.t.Fatalf("mailgate exited: %v\n%s", err, g.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	g.t.Fatalf("mailgate does not listen on %s\n%s", g.addr, g.stderr)
}

func (g *gw) signal(s syscall.Signal) { g.cmd.Process.Signal(s) }

func (g *gw) wait() error {
	select {
	case err := <-g.exited:
		return err
	case <-time.After(30 * time.Second):
		g.t.Fatal("mailgate did not exit")
	}
	return nil
}

func (g *gw) mailLog() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "logs/mail_logs/mail_logs.current"))
	return string(b)
}

// waitLog waits until the mail log (flushed every 100 ms) matches re.
func (g *gw) waitLog(re string) string {
	g.t.Helper()
	rx := regexp.MustCompile(re)
	var l string
	defer func() {
		if g.t.Failed() { // the wait gave up: show what the log held
			g.t.Logf("mail log:\n%s", l)
		}
	}()
	wait.Until(g.t, fmt.Sprintf("the mail log matches %q", re), func() bool {
		l = g.mailLog()
		return rx.MatchString(l)
	})
	return l
}

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, err := os.Stat(filepath.Join(dir, tool)); err == nil {
				return filepath.Join(dir, tool)
			}
		}
		t.Fatalf("%s is not installed (the README's test command installs it): %v", tool, err)
	}
	return p
}

func TestSwaks(t *testing.T) {
	swaks := need(t, "swaks")
	g := newGW(t, "5s")
	g.start()
	host, port, _ := net.SplitHostPort(g.addr)
	for _, extra := range [][]string{nil, {"-tls"}} {
		args := append([]string{"--to", "b@example.com", "--from", "a@example.org", "--server", host, "--port", port,
			"--header", "Subject: swaks test", "--body", "hello from swaks"}, extra...)
		out, err := exec.Command(swaks, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks %v: %v\n%s", extra, err, out)
		}
		if !regexp.MustCompile(`<[-~]  250 2\.0\.0 ok:  Message \d+ accepted`).Match(out) {
			t.Errorf("swaks %v did not see the acceptance:\n%s", extra, out)
		}
	}
	log := g.waitLog(`(?s)ICID 2 TLS success protocol TLSv1\.[23].*ICID 2 close`)
	if n := strings.Count(log, "Subject 'swaks test'"); n != 2 {
		t.Errorf("%d Subject lines:\n%s", n, log)
	}
	g.signal(syscall.SIGTERM)
	if err := g.wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, g.stderr)
	}
}

const smtplibScript = `
import smtplib, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
msg = "From: a@example.org\r\nTo: b@example.com\r\nSubject: smtplib %d\r\n\r\nbody\r\n"
with smtplib.SMTP(host, port) as s:
    s.ehlo("python.client")
    assert s.has_extn("pipelining") and s.has_extn("size") and s.has_extn("starttls")
    r = s.sendmail("a@example.org", ["b@example.com", "c@example.com"], msg % 1)
    assert r == {}, r
    try:
        s.sendmail("a@example.org", ["b@example.com"], "x" * 2000 + "\r\n")
        raise SystemExit("overlong line accepted")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550, e
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("python.client")
    s.sendmail("a@example.org", ["b@example.com"], msg % 2)
print("ok")
`

func TestPythonSmtplib(t *testing.T) {
	python := need(t, "python3")
	g := newGW(t, "5s")
	g.start()
	host, port, _ := net.SplitHostPort(g.addr)
	out, err := exec.Command(python, "-c", smtplibScript, host, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	log := g.waitLog(`ended cause=quit`)
	for _, want := range []string{"Subject 'smtplib 1'", "Subject 'smtplib 2'", "RID 1 To: <c@example.com>",
		"Receiving Failed: Message line too long", "TLS success protocol TLSv1.3"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the log:\n%s", want, log)
		}
	}
}

// The first command of the README: with no configuration the gateway
// listens on 127.0.0.1:2525 and keeps its data under ./mailgate-data.
func TestServeEmbeddedDefault(t *testing.T) {
	if c, err := net.Dial("tcp", "127.0.0.1:2525"); err == nil {
		c.Close()
		t.Skip("127.0.0.1:2525 is taken by another process")
	}
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	stderr := smtptest.NewLog()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	stderr.Wait(t, `mailgate: listening`)
	c, err := net.Dial("tcp", "127.0.0.1:2525")
	if err != nil {
		t.Fatalf("default does not listen: %v\n%s", err, stderr.String())
	}
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	c.Write([]byte("QUIT\r\n"))
	c.Close()
	if !strings.HasPrefix(line, "220 ") || !strings.Contains(line, "ESMTP") {
		t.Errorf("greeting %q", line)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v\n%s", err, stderr.String())
	}
	for _, p := range []string{"mailgate-data/logs/mail_logs/mail_logs.current", "mailgate-data/spool", "mailgate-data/counters"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("default data layout: %v", err)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listeners:\n  - name: A\n    address: 127.0.0.1:99999\n    hat:\n      sender_groups:\n        - {name: G, match: [10.0.0.0/33], policy: NOPE}\nlogz: {}\n"), 0o644)
	out, err := exec.Command(binary, "check-config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check-config of a bad file: %v\n%s", err, out)
	}
	for _, want := range []string{"bad.yaml:3: listeners[0].address", "bad.yaml:6: listeners[0].hat.sender_groups[0].match[0]",
		"bad.yaml:6: listeners[0].hat.sender_groups[0].policy", "bad.yaml:7: logz"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	def, _ := exec.Command(binary, "default-config").Output()
	os.WriteFile(good, def, 0o644)
	if out, err := exec.Command(binary, "check-config", good).CombinedOutput(); err != nil {
		t.Errorf("check-config of the default: %v\n%s", err, out)
	}
}

// SIGTERM drains: an idle session gets 421 at once, a session in DATA may
// finish its message (250, then 421), and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	g := newGW(t, "10s")
	g.start()
	idle, busy := dialSMTP(t, g.addr), dialSMTP(t, g.addr)
	idle.Cmd("EHLO idle.test", "250")
	busy.Cmd("EHLO busy.test", "250")
	busy.Cmd("MAIL FROM:<a@example.org>", "250")
	busy.Cmd("RCPT TO:<b@example.com>", "250")
	busy.Cmd("DATA", "354")
	busy.Send("Subject: in flight\r\n\r\n")
	g.signal(syscall.SIGTERM)
	// The 421 says the drain has begun; the busy session's message,
	// finished after it, is still taken.
	idle.Expect("421 4.3.2 mx.test Service not available")
	busy.Send("end of the message\r\n.\r\n")
	busy.Expect("250 2.0.0 ok:  Message")
	busy.Expect("421 4.3.2")
	if err := g.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.stderr)
	}
	log := g.mailLog()
	if n := strings.Count(log, "cause=shutdown"); n != 2 {
		t.Errorf("%d sessions ended by shutdown:\n%s", n, log)
	}
	s, err := queue.Open(filepath.Join(g.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Messages()); n != 1 {
		t.Errorf("spool holds %d messages, want the one finished during the drain", n)
	}
}

// SIGTERM past the shutdown timeout: the session still in a transaction
// is killed with 421 and its message aborted.
func TestSIGTERMKillsAfterTimeout(t *testing.T) {
	g := newGW(t, "1s")
	g.start()
	c := dialSMTP(t, g.addr)
	c.Cmd("EHLO slow.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	g.signal(syscall.SIGTERM)
	c.Expect("421 4.3.2")
	if err := g.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.stderr)
	}
	log := g.mailLog()
	for _, want := range []string{"Receiving aborted\n", "Message finished MID 1 aborted", "cause=shutdown state=mail"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in:\n%s", want, log)
		}
	}
}

// SIGHUP rolls the mail log over the ESA way.
func TestSIGHUPRollsLog(t *testing.T) {
	g := newGW(t, "5s")
	g.start()
	c := dialSMTP(t, g.addr)
	c.Cmd("QUIT", "221")
	g.waitLog(`ICID 1 close`)
	g.signal(syscall.SIGHUP)
	var rolled []string
	wait.Until(t, "the mail log rolled over", func() bool {
		rolled, _ = filepath.Glob(filepath.Join(g.dir, "logs/mail_logs/mail_logs.@*.s"))
		return len(rolled) > 0
	})
	if len(rolled) != 1 || !regexp.MustCompile(`mail_logs\.@\d{8}T\d{6}\.s$`).MatchString(rolled[0]) {
		t.Fatalf("rolled files %v", rolled)
	}
	old, _ := os.ReadFile(rolled[0])
	if !strings.Contains(string(old), "ICID 1 close") {
		t.Errorf("rolled file lacks the old lines:\n%s", old)
	}
	c = dialSMTP(t, g.addr)
	c.Cmd("QUIT", "221")
	cur := g.waitLog(`ICID 2 close`)
	if !strings.HasPrefix(strings.SplitN(cur, "\n", 2)[0][25:], "Info: Begin Logfile") || strings.Contains(cur, "ICID 1 ") {
		t.Errorf("new current file:\n%s", cur)
	}
}

// IDs are monotonic across restarts, as on the ESA.
func TestIDsSurviveRestart(t *testing.T) {
	g := newGW(t, "5s")
	g.start()
	sendOne(t, g.addr, "first")
	g.signal(syscall.SIGTERM)
	g.wait()
	g.start()
	sendOne(t, g.addr, "second")
	log := g.waitLog(`Subject 'second'`)
	if !strings.Contains(log, "New SMTP ICID 2 ") || !strings.Contains(log, "Start MID 2 ICID 2") {
		t.Errorf("IDs after a clean restart:\n%s", log)
	}
	// After a crash the IDs jump but never repeat.
	g.cmd.Process.Kill()
	g.wait()
	g.start()
	sendOne(t, g.addr, "third")
	log = g.waitLog(`Subject 'third'`)
	m := regexp.MustCompile(`MID (\d+) Subject 'third'`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("log:\n%s", log)
	}
	if mid, _ := strconv.Atoi(m[1]); mid <= 2 {
		t.Errorf("MID %d after a crash repeats an earlier one", mid)
	}
}

// The SIGKILL test of the design's first rule: under load from
// smtp-source, and from our own clients that note each MID the gateway
// acknowledged, kill -9 the process; after restart every acknowledged
// message is in the spool, byte for byte, and is kept for delivery.
func TestSIGKILLUnderLoad(t *testing.T) {
	source := need(t, "smtp-source")
	g := newGW(t, "5s")
	g.start()

	srcCmd := exec.Command(source, "-c", "-s", "20", "-l", "1024", "-m", "100000", "-f", "a@example.org", "-t", "b@example.com", g.addr)
	var srcOut bytes.Buffer
	srcCmd.Stdout, srcCmd.Stderr = &srcOut, &srcOut
	if err := srcCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer srcCmd.Process.Kill()

	type acked struct {
		mid uint64
		sum [32]byte
	}
	var mu sync.Mutex
	var acks []acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("Subject: w%d m%d\r\n\r\n%s\r\n", w, i, strings.Repeat(fmt.Sprintf("%d-%d ", w, i), 200))
				mid, err := sendRaw(g.addr, body)
				if err != nil {
					return // the gateway is gone
				}
				mu.Lock()
				acks = append(acks, acked{mid, sha256.Sum256([]byte(body))})
				mu.Unlock()
			}
		}()
	}
	// Killed under load: once a thousand messages are in, some of them
	// our clients'.
	wait.Until(t, "1000 messages queued, 10 of them acknowledged to our clients", func() bool {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		return n >= 10 && strings.Count(g.mailLog(), " queued for delivery\n") >= 1000
	})
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	close(stop)
	wg.Wait()
	srcCmd.Process.Kill()
	srcCmd.Wait()
	// smtp-source -c counts a message when it sends the final dot, before
	// the reply: of the counted, all but one per session (20) were
	// acknowledged.
	var srcDone int
	for _, m := range regexp.MustCompile(`(\d+)`).FindAllString(srcOut.String(), -1) {
		srcDone, _ = strconv.Atoi(m)
	}
	if len(acks) < 50 {
		t.Fatalf("only %d acknowledged messages before the kill", len(acks))
	}

	s, err := queue.Open(filepath.Join(g.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inSpool := len(s.Messages())
	for _, a := range acks {
		_, msg, err := s.Read(a.mid)
		if err != nil {
			t.Errorf("acknowledged MID %d lost: %v", a.mid, err)
			continue
		}
		// The spool holds our Received header, then the body as sent.
		i := bytes.Index(msg, []byte("Subject: w"))
		if i < 0 || sha256.Sum256(msg[i:]) != a.sum {
			t.Errorf("MID %d is not whole", a.mid)
		}
	}
	s.Close()
	srcAcked := max(srcDone-20, 0)
	if inSpool < len(acks)+srcAcked {
		t.Errorf("spool holds %d messages; %d acknowledged to our clients and at least %d to smtp-source", inSpool, len(acks), srcAcked)
	}
	t.Logf("killed under load: %d + at least %d acknowledged, %d in the spool", len(acks), srcAcked, inSpool)

	// Restarted, the gateway recovers them all for delivery.
	g.start()
	g.stderr.Wait(t, `spool recovered`)
	if !strings.Contains(g.stderr.String(), fmt.Sprintf("messages=%d ", inSpool)) {
		t.Errorf("restart did not recover %d messages:\n%s", inSpool, g.stderr)
	}
}

// dialSMTP connects and reads the greeting.
func dialSMTP(t *testing.T, addr string) *smtptest.Conn {
	t.Helper()
	c := smtptest.Dial(t, addr, "")
	c.Expect("220")
	return c
}

func sendOne(t *testing.T, addr, subject string) {
	t.Helper()
	if _, err := sendRaw(addr, "Subject: "+subject+"\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
}

var acceptedRe = regexp.MustCompile(`^250 2\.0\.0 ok:  Message (\d+) accepted`)

// sendRaw sends one message with pipelining and returns the MID the
// gateway acknowledged.
func sendRaw(addr, body string) (uint64, error) {
	return sendRawEnvelope(addr, "a@example.org", "b@example.com", body)
}

func sendRawEnvelope(addr, from, to, body string) (uint64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func() (string, error) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimRight(l, "\r\n"), nil
			}
		}
	}
	if _, err := read(); err != nil {
		return 0, err
	}
	// EHLO ends a pipelined group (RFC 2920 3.1): the gateway refuses a
	// client that sends on before its reply.
	fmt.Fprintf(c, "EHLO load.test\r\n")
	if _, err := read(); err != nil {
		return 0, err
	}
	fmt.Fprintf(c, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", from, to)
	for i := 0; i < 3; i++ {
		if _, err := read(); err != nil {
			return 0, err
		}
	}
	fmt.Fprintf(c, "%s.\r\n", body)
	l, err := read()
	if err != nil {
		return 0, err
	}
	m := acceptedRe.FindStringSubmatch(l)
	if m == nil {
		return 0, fmt.Errorf("reply %q", l)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	read() // 221, or the gateway is gone: the message was acknowledged either way
	return strconv.ParseUint(m[1], 10, 64)
}
