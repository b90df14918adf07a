package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/badmime"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/smtp"
)

// hostileConfig: two listeners that take messages of up to 300 MB, the
// second without a limit on header lines; everything routed to the sink;
// a content filter of each condition kind that reads content, each
// logging and marking what it found, in the DEFAULT incoming policy.
const hostileConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    address: %s
    hat:
      policy_defaults: {max_message_size: 300MB}
      sender_groups: []
      default_policy: ACCEPTED
    rat:
      - {domain: ALL, action: accept}
  - name: Loose
    address: %s
    max_header_lines: 0
    hat:
      policy_defaults: {max_message_size: 300MB}
      sender_groups: []
      default_policy: ACCEPTED
    rat:
      - {domain: ALL, action: accept}
routes:
  - {domain: ALL, hosts: ["%s"]}
delivery:
  destinations:
    - {domain: default, max_connections: 4, tls: off}
http: {address: ""}
content_filters:
  - {name: f_text,     conditions: [{body: "wire transfer now"}], actions: [{log_entry: "bait text"}, {add_header: "X-Matched: text"}]}
  - {name: f_name,     conditions: [{attachment_name: "*.exe"}], actions: [{log_entry: "bait name"}, {add_header: "X-Matched: name"}]}
  - {name: f_exe,      conditions: [{detected_type: application/x-msdownload}], actions: [{log_entry: "bait exe"}, {add_header: "X-Matched: exe"}]}
  - {name: f_declared, conditions: [{declared_type: "application/x-never-sent"}], actions: [drop]}
  - {name: f_header,   conditions: [{header: "*", matches: "never-sent-field"}], actions: [drop]}
mail_policies:
  incoming:
    - name: DEFAULT
      content_filters: [f_text, f_name, f_exe, f_declared, f_header]
`

// hostileRSS bounds the gateway's peak resident memory (VmHWM) over the
// whole test. The work queue parses a message from the spool's file
// mapped into memory (workqueue.Message.MIME, queue.Spool.Map), and the
// test waits for each large message's verdict before it sends the next:
// the peak is the pages of the largest message (200 MB) that the parse
// reads (a multipart's boundaries are looked for through all of it), the
// binary's, and a Go heap of a few MB (rfc822's and filter's bounds, the
// runtime): 234 MB measured, 19 MB of it anonymous. A copy of the message
// on the heap passes it (437 MB measured when the work queue read it onto
// the heap), as does a leak or a second large message held at once.
const hostileRSS = 350 << 20

// hostileSink is a next hop that streams each message it acknowledges,
// keeping its header and size, not its body.
type hostileSink struct {
	addr string
	mu   sync.Mutex
	got  map[string]sunk // by X-Token
}

type sunk struct {
	header string
	size   int64
	times  int
}

func startHostileSink(t *testing.T) *hostileSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hostileSink{addr: ln.Addr().String(), got: map[string]sunk{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				smtp.NewSession(c, &sinkSession{s: s}, smtp.Config{Hostname: "sink.test", BadCommandLimit: 10,
					TotalTimeout: 10 * time.Minute}).Serve(ctx)
			})
		}
	})
	return s
}

func (s *hostileSink) message(tok string) (sunk, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.got[tok]
	return m, ok
}

type sinkSession struct{ s *hostileSink }

func (*sinkSession) Hello(string, string) smtp.Reply             { return smtp.Reply{} }
func (*sinkSession) Mail(smtp.Path, smtp.MailParams) smtp.Reply  { return smtp.Reply{} }
func (*sinkSession) Rcpt(smtp.Path) smtp.Reply                   { return smtp.Reply{} }
func (*sinkSession) DataFailed(error)                            {}
func (*sinkSession) Reset()                                      {}
func (*sinkSession) TLS(tls.ConnectionState)                     {}
func (*sinkSession) BadCommand(smtp.BadKind, string, smtp.Reply) {}
func (*sinkSession) PlaintextDiscarded(int)                      {}
func (ss *sinkSession) Data(r io.Reader) smtp.Reply {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr strings.Builder
	var size int64
	for hdr.Len() < 256<<10 {
		line, err := br.ReadString('\n')
		size += int64(len(line))
		hdr.WriteString(line)
		if err != nil || line == "\r\n" {
			break
		}
	}
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		return smtp.Reply{}
	}
	size += n
	tok := ""
	if m := regexp.MustCompile(`(?m)^X-Token: (\S+)\r$`).FindStringSubmatch(hdr.String()); m != nil {
		tok = m[1]
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	prev := ss.s.got[tok]
	ss.s.got[tok] = sunk{header: hdr.String(), size: size, times: prev.times + 1}
	return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok"}
}

// sendStreaming sends one message, written by write as it goes, and
// returns the reply to its end of data: a real SMTP dialogue (textproto's
// dot-writer stuffs the dots), deadlines on every step.
func sendStreaming(addr, tok string, write func(io.Writer) error) (code int, text string, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	c := textproto.NewConn(conn)
	step := func(d time.Duration, cmd string, want int) error {
		conn.SetDeadline(time.Now().Add(d))
		if cmd != "" {
			if err := c.PrintfLine("%s", cmd); err != nil {
				return err
			}
		}
		_, _, err := c.ReadResponse(want)
		return err
	}
	for _, s := range []struct {
		cmd  string
		want int
	}{{"", 220}, {"EHLO client.test", 250}, {"MAIL FROM:<m@pass.test>", 250}, {"RCPT TO:<bob@example.net>", 250}, {"DATA", 354}} {
		if err := step(30*time.Second, s.cmd, s.want); err != nil {
			return 0, "", fmt.Errorf("%q: %w", s.cmd, err)
		}
	}
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	w := c.DotWriter()
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString("X-Token: " + tok + "\r\n"); err != nil {
		return 0, "", err
	}
	if err := write(bw); err != nil {
		return 0, "", fmt.Errorf("sending the message: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, "", err
	}
	if err := w.Close(); err != nil {
		return 0, "", err
	}
	code, text, err = c.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, "", err
	}
	c.PrintfLine("QUIT")
	return code, text, nil
}

// vmHWM reads a process's peak resident memory from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// TestHostileInput: the hostile corpus, a 100 MB attachment name (on one
// line, and folded as an RFC 2231 continuation) and a 200 MB body, over
// SMTP through the binary with a content filter of each condition kind
// that reads content. Every message gets its reply, and each accepted one
// a verdict: its filters' lines for the baits a reader within rfc822's
// limits finds (no more), and delivery with the same marks; the work
// queue finishes within a bound, the gateway's peak resident memory
// stays under hostileRSS, and it does not crash.
func TestHostileInput(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 500 MB")
	}
	sink := startHostileSink(t)
	g := newGW(t, "5s")
	loose := freePort(t)
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(hostileConfig, g.dir, g.addr, loose, sink.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()

	type send struct {
		tok   string
		addr  string
		write func(io.Writer) error
		reply string // the start of the reply to the end of data
		want  badmime.Found
	}
	var sends []send
	for i, m := range badmime.Corpus() {
		sends = append(sends, send{fmt.Sprintf("c%d", i), g.addr, func(w io.Writer) error { _, err := w.Write(m.Msg); return err }, "250 ", m.Want})
	}
	const big = 100 << 20
	sends = append(sends,
		// Refused by the listener's limits first, with the lines that
		// say why.
		send{"line", g.addr, func(w io.Writer) error { return badmime.WriteLongNameLine(w, big) }, "550 5.6.0", badmime.Found{}},
		send{"top", g.addr, func(w io.Writer) error { return badmime.WriteLongNameTop(w, big) }, "552 5.3.4", badmime.Found{}},
		// Past them: the header is past rfc822's 64 KiB, its name not
		// read; the content is.
		send{"top-loose", loose, func(w io.Writer) error { return badmime.WriteLongNameTop(w, big) }, "250 ", badmime.Found{Exe: true}},
		// A part's header is not the listener's to limit.
		send{"folded", g.addr, func(w io.Writer) error { return badmime.WriteLongName(w, big) }, "250 ", badmime.Found{Text: true, Exe: true}},
		// The text is past the body condition's 1 MiB.
		send{"body", g.addr, func(w io.Writer) error { return badmime.WriteBigBody(w, 200<<20) }, "250 ", badmime.Found{Name: true, Exe: true}},
	)

	start := time.Now()
	mids := map[string]uint64{}
	for _, s := range sends {
		code, text, err := sendStreaming(s.addr, s.tok, s.write)
		if err != nil {
			t.Fatalf("%s: %v", s.tok, err)
		}
		if reply := fmt.Sprintf("%d %s", code, text); !strings.HasPrefix(reply, s.reply) {
			t.Errorf("%s: reply %q, want %q", s.tok, reply, s.reply)
			continue
		}
		if code != 250 {
			continue
		}
		m := regexp.MustCompile(`Message (\d+) accepted`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("%s: no MID in %q", s.tok, text)
		}
		mids[s.tok], _ = strconv.ParseUint(m[1], 10, 64)
		// One large message at a time in the work queue: the bound on
		// memory is about one.
		wait.UntilWithin(t, 3*time.Minute, s.tok+" handed to delivery", func() bool {
			return strings.Contains(g.mailLog(), fmt.Sprintf("MID %d queued for delivery", mids[s.tok]))
		})
	}
	wait.UntilWithin(t, 5*time.Minute, "every accepted message delivered", func() bool {
		for tok := range mids {
			if _, ok := sink.message(tok); !ok {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	hwm := vmHWM(t, g.cmd.Process.Pid)
	t.Logf("%d messages in %v; the gateway's peak resident memory (VmHWM) %d MB", len(sends), elapsed.Round(time.Second), hwm>>20)
	if hwm > hostileRSS {
		t.Errorf("peak resident memory %d MB, over the bound of %d MB", hwm>>20, hostileRSS>>20)
	}

	l := g.mailLog()
	for _, s := range sends {
		mid, ok := mids[s.tok]
		if !ok {
			continue
		}
		lines := logLines(l, mid)
		var found badmime.Found
		for _, line := range lines {
			switch line {
			case fmt.Sprintf("MID %d Custom Log Entry: bait text", mid):
				found.Text = true
			case fmt.Sprintf("MID %d Custom Log Entry: bait name", mid):
				found.Name = true
			case fmt.Sprintf("MID %d Custom Log Entry: bait exe", mid):
				found.Exe = true
			}
		}
		if found != s.want {
			t.Errorf("%s (MID %d): the filters' lines found %+v, want %+v:\n%s", s.tok, mid, found, s.want, strings.Join(lines, "\n"))
		}
		for _, want := range []string{
			fmt.Sprintf("MID %d matched all recipients for per-recipient policy DEFAULT in the inbound table", mid),
			fmt.Sprintf("MID %d queued for delivery", mid),
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("%s: no line %q", s.tok, want)
			}
		}
		got, _ := sink.message(s.tok)
		var marks []string
		for _, m := range regexp.MustCompile(`(?m)^X-Matched: (\S+)\r$`).FindAllStringSubmatch(got.header, -1) {
			marks = append(marks, m[1])
		}
		var want []string
		for _, w := range []struct {
			on   bool
			name string
		}{{s.want.Text, "text"}, {s.want.Name, "name"}, {s.want.Exe, "exe"}} {
			if w.on {
				want = append(want, w.name)
			}
		}
		if got.times != 1 || !slices.Equal(marks, want) {
			t.Errorf("%s: delivered %d times, marked %v, want once, %v", s.tok, got.times, marks, want)
		}
	}
	// The refusals' lines.
	for _, re := range []string{`Receiving Failed: Message line too long`, `Receiving Failed: Message header size exceeds limit`} {
		if !regexp.MustCompile(`(?m)ICID \d+ ` + re + `$`).MatchString(l) {
			t.Errorf("no line %q", re)
		}
	}
	// Alive, and its own log without a panic.
	if err := sendMail(g.addr, "a@pass.test", []string{"bob@example.net"}, "X-Token: after\r\nSubject: after\r\n\r\nstill here\r\n"); err != nil {
		t.Errorf("after the hostile input: %v", err)
	}
	if s := g.stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
		t.Errorf("the gateway's log:\n%s", s)
	}
}
