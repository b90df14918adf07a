package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
)

// clientConfig has timeouts short enough that a broken test fails instead
// of hanging, and long enough for a loaded machine.
func clientConfig() ClientConfig {
	d := 10 * time.Second
	return ClientConfig{Hostname: "client.test",
		Timeouts: ClientTimeouts{Connect: d, Greeting: d, Command: d, DataInit: d, DataBlock: d, DataDone: d, Quit: d}}
}

// engine serves sessions of mailgate's own server engine on a loopback
// listener until the test ends; each session's End goes to the channel.
func engine(t testing.TB, h Handler, cfg Config) (string, <-chan End) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.test"
	}
	if cfg.BadCommandLimit == 0 {
		cfg.BadCommandLimit = 4
	}
	ends := make(chan End, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sessions []*Session
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := NewSession(c, h, cfg)
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := s.Serve(context.Background())
				select {
				case ends <- e:
				default:
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, s := range sessions {
			s.Kill()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), ends
}

// ehloHandler gives its own reply to EHLO: a 502 makes a server without
// ESMTP, a 250 with other keywords an ESMTP server without PIPELINING.
type ehloHandler struct {
	*recorder
	ehlo Reply
}

func (h ehloHandler) Hello(verb, domain string) Reply {
	h.recorder.Hello(verb, domain)
	if verb == "ehlo" {
		return h.ehlo
	}
	return Reply{}
}

var (
	ehloRefused      = Reply{502, "5.5.1", "EHLO not implemented"}
	ehloNoPipelining = Reply{250, "", "mx.test\nSIZE 1048576\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8"}
)

func dial(t testing.TB, addr string, cfg ClientConfig) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func codes(rs []Reply) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, r.Code)
	}
	return b.String()
}

func TestClientEngine(t *testing.T) {
	tests := []struct {
		name      string
		ehlo      Reply // the EHLO reply; zero for the engine's own
		rcptFail  map[string]Reply
		env       Envelope
		wantMail  string // what the handler saw
		wantRcpts string
		wantData  int
		delivered bool
	}{
		{name: "esmtp",
			env:      Envelope{From: "a@example.org", To: []string{"b@example.com", "c@example.com"}, Size: 25, Body8bit: true},
			wantMail: "mail a@example.org size=25 body=8BITMIME utf8=false", wantRcpts: "250 250", wantData: 250, delivered: true},
		{name: "esmtp-no-pipelining", ehlo: ehloNoPipelining,
			rcptFail: map[string]Reply{"no@example.com": {450, "4.2.1", "try later"}},
			env:      Envelope{From: "a@example.org", To: []string{"b@example.com", "no@example.com"}, Size: 25, Body8bit: true},
			wantMail: "mail a@example.org size=25 body=8BITMIME utf8=false", wantRcpts: "250 450", wantData: 250, delivered: true},
		{name: "esmtp-null-sender-utf8",
			env:      Envelope{From: "", To: []string{"jö@exämple.com"}, SMTPUTF8: true},
			wantMail: "mail  size=0 body= utf8=true", wantRcpts: "250", wantData: 250, delivered: true},
		{name: "esmtp-one-refused",
			rcptFail: map[string]Reply{"no@example.com": {550, "5.1.1", "no such user"}},
			env:      Envelope{From: "a@example.org", To: []string{"no@example.com", "b@example.com"}},
			wantMail: "mail a@example.org size=0 body= utf8=false", wantRcpts: "550 250", wantData: 250, delivered: true},
		{name: "esmtp-all-refused",
			rcptFail: map[string]Reply{"no@example.com": {550, "5.1.1", "no such user"}},
			env:      Envelope{From: "a@example.org", To: []string{"no@example.com"}},
			wantMail: "mail a@example.org size=0 body= utf8=false", wantRcpts: "550", wantData: 554},
		{name: "helo", ehlo: ehloRefused,
			env:      Envelope{From: "a@example.org", To: []string{"b@example.com"}, Size: 25, Body8bit: true},
			wantMail: "mail a@example.org size=0 body= utf8=false", wantRcpts: "250", wantData: 250, delivered: true},
		{name: "helo-all-refused", ehlo: ehloRefused,
			rcptFail: map[string]Reply{"no@example.com": {550, "5.1.1", "no such user"}},
			env:      Envelope{From: "a@example.org", To: []string{"no@example.com"}},
			wantMail: "mail a@example.org size=0 body= utf8=false", wantRcpts: "550"},
	}
	msg := []byte("Subject: test\r\n\r\nhello\r\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{rcptFail: tt.rcptFail}
			var h Handler = rec
			if !tt.ehlo.IsZero() {
				h = ehloHandler{rec, tt.ehlo}
			}
			addr, ends := engine(t, h, Config{MaxMessageSize: 1 << 20})
			c := dial(t, addr, clientConfig())
			if _, ok := c.Ext("pipelining"); ok != tt.ehlo.IsZero() {
				t.Errorf("PIPELINING offered: %v", ok)
			}
			if _, ok := c.Ext("8bitmime"); ok != (tt.ehlo.Code != 502) {
				t.Errorf("8BITMIME offered: %v", ok)
			}
			if g := c.Greeting(); g != (Reply{220, "", "mx.test ESMTP"}) {
				t.Errorf("greeting %+v", g)
			}
			if c.RemoteAddr().String() != addr || !c.LocalAddr().(*net.TCPAddr).IP.IsLoopback() {
				t.Errorf("addresses %v %v", c.LocalAddr(), c.RemoteAddr())
			}
			for round := 0; round < 2; round++ { // the connection is reused
				res, err := c.Send(context.Background(), tt.env, bytes.NewReader(msg))
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if res.Mail.Code != 250 || codes(res.Rcpts) != tt.wantRcpts || res.Data.Code != tt.wantData ||
					res.DataSent != tt.delivered || res.Synthetic {
					t.Errorf("round %d: result %+v", round, res)
				}
				if err := c.Reset(context.Background()); err != nil {
					t.Fatalf("round %d: reset: %v", round, err)
				}
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Fatal(err)
			}
			e := waitEnd(t, ends)
			if e.Cause != event.CauseQuit {
				t.Errorf("session end %+v", e)
			}
			if !rec.saw(tt.wantMail) {
				t.Errorf("handler saw %q, want %q", rec.calls, tt.wantMail)
			}
			want := 0
			if tt.delivered {
				want = 2
			}
			if len(rec.messages) != want {
				t.Fatalf("%d messages delivered, want %d", len(rec.messages), want)
			}
			for _, m := range rec.messages {
				if !bytes.Equal(m, msg) {
					t.Errorf("message %q, want %q", m, msg)
				}
			}
		})
	}
}

// Lines starting with '.' arrive byte-identical; a missing final CRLF is
// added; a bare LF or CR is sent as CRLF, so that the server (which
// refuses bare line endings) takes the message and no "\n.\n" can end the
// data early.
func TestClientDotStuffing(t *testing.T) {
	tests := []struct{ in, want string }{
		{".\r\n", ".\r\n"},
		{"..\r\n...\r\n", "..\r\n...\r\n"},
		{"a\r\n.\r\nb\r\n", "a\r\n.\r\nb\r\n"},
		{"a\r\n.b\r\n\r\n.\r\n", "a\r\n.b\r\n\r\n.\r\n"},
		{"no final line ending", "no final line ending\r\n"},
		{"ends in a dot\r\n.", "ends in a dot\r\n.\r\n"},
		{"", ""},
		{"\r\n", "\r\n"},
		{"bare\n.\nlf\n", "bare\r\n.\r\nlf\r\n"},
		{"bare\r.\rcr", "bare\r\n.\r\ncr\r\n"},
		{"x\r\n" + strings.Repeat(".", 997) + "\r\n", "x\r\n" + strings.Repeat(".", 997) + "\r\n"}, // 1000 octets stuffed
		{strings.Repeat("a\r\n.a\r\n", 20000), strings.Repeat("a\r\n.a\r\n", 20000)},
	}
	rec := &recorder{}
	addr, _ := engine(t, rec, Config{})
	c := dial(t, addr, clientConfig())
	for _, tt := range tests {
		res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.com"}}, bytes.NewReader([]byte(tt.in)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Data.Code != 250 {
			t.Fatalf("%q: final reply %v", clip([]byte(tt.in)), res.Data)
		}
		if got := string(rec.messages[len(rec.messages)-1]); got != tt.want {
			t.Errorf("sent %q, server got %q, want %q", clip([]byte(tt.in)), clip([]byte(got)), clip([]byte(tt.want)))
		}
	}
}

func TestClientManyRecipients(t *testing.T) {
	rec := &recorder{rcptFail: map[string]Reply{"r150@example.com": {450, "4.2.1", "try later"}}}
	addr, _ := engine(t, rec, Config{})
	c := dial(t, addr, clientConfig())
	env := Envelope{From: "a@example.org"}
	for i := 0; i < 250; i++ { // three pipelined groups
		env.To = append(env.To, fmt.Sprintf("r%d@example.com", i))
	}
	res, err := c.Send(context.Background(), env, bytes.NewReader([]byte("x\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Rcpts {
		want := 250
		if i == 150 {
			want = 450
		}
		if r.Code != want {
			t.Errorf("recipient %d: %v", i, r)
		}
	}
	if res.Data.Code != 250 || len(rec.messages) != 1 {
		t.Errorf("data %v, %d messages", res.Data, len(rec.messages))
	}
	if got := res.Outcome(150); got.Code != 450 || got.Enhanced != "4.2.1" {
		t.Errorf("outcome of the refused recipient %v", got)
	}
	if got := res.Outcome(0); got.Code != 250 {
		t.Errorf("outcome of an accepted recipient %v", got)
	}
}

// sink runs Postfix's smtp-sink on a free loopback port until the test
// ends, dumping each message into dir when dir is not "".
func sink(t testing.TB, dir string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append(args, "-d", filepath.Join(dir, "%M."))
	}
	return smtptest.Sink(t, "127.0.0.1:0", args...)
}

// dumpDir is a directory smtp-sink can write to after it dropped root.
func dumpDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "smtp-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dumps reads smtp-sink's message files: each holds its own headers
// (X-Mail-Args and the like), a Received header, then the message with LF
// line endings, dot-unstuffed, and an empty line.
func dumps(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestClientSmtpSink(t *testing.T) {
	msg := "Subject: sink\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
	tests := []struct {
		name       string
		args       []string
		pipelining bool
		esmtp      bool
		rcpts      string // reply codes for two recipients
		delivered  bool
	}{
		{name: "default", pipelining: true, esmtp: true, rcpts: "250 250", delivered: true},
		{name: "no-pipelining", args: []string{"-p"}, esmtp: true, rcpts: "250 250", delivered: true},
		{name: "no-esmtp", args: []string{"-e"}, rcpts: "250 250", delivered: true},
		{name: "rcpt-refused", args: []string{"-f", "RCPT"}, esmtp: true, rcpts: "500 500"},
		{name: "rcpt-deferred", args: []string{"-r", "RCPT"}, esmtp: true, rcpts: "450 450"},
		{name: "data-refused", args: []string{"-f", "DATA"}, esmtp: true, rcpts: "250 250"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dumpDir(t)
			addr := sink(t, dir, tt.args...)
			c := dial(t, addr, clientConfig())
			if _, ok := c.Ext("PIPELINING"); ok != tt.pipelining {
				t.Errorf("PIPELINING %v, want %v", ok, tt.pipelining)
			}
			if _, ok := c.Ext("8BITMIME"); ok != tt.esmtp {
				t.Errorf("8BITMIME %v, want %v", ok, tt.esmtp)
			}
			env := Envelope{From: "a@example.org", To: []string{"b@example.com", "c@example.com"}, Size: int64(len(msg)), Body8bit: true}
			for round := 0; round < 3; round++ {
				res, err := c.Send(context.Background(), env, bytes.NewReader([]byte(msg)))
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if res.Mail.Code != 250 || codes(res.Rcpts) != tt.rcpts || res.DataSent != tt.delivered {
					t.Fatalf("round %d: %+v", round, res)
				}
				// Status codes are parsed only when ENHANCEDSTATUSCODES was offered.
				want := Reply{250, "2.0.0", "Ok"}
				if !tt.esmtp {
					want = Reply{250, "", "2.0.0 Ok"}
				}
				if tt.delivered && res.Data != want {
					t.Errorf("round %d: final reply %+v", round, res.Data)
				}
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := dumps(t, dir)
			if !tt.delivered {
				if len(got) != 0 {
					t.Errorf("%d messages delivered, want none", len(got))
				}
				return
			}
			if len(got) != 3 {
				t.Fatalf("%d messages delivered, want 3", len(got))
			}
			mailArgs := "X-Mail-Args: <a@example.org>\n"
			if tt.esmtp {
				mailArgs = "X-Mail-Args: <a@example.org> BODY=8BITMIME\n" // smtp-sink offers no SIZE
			}
			for _, d := range got {
				body := strings.ReplaceAll(msg, "\r\n", "\n") + "\n"
				if !strings.Contains(d, mailArgs) || !strings.Contains(d, "X-Rcpt-Args: <c@example.com>\n") ||
					!strings.HasSuffix(d, body) {
					t.Errorf("dump:\n%s\nwant %q and the body %q", d, mailArgs, body)
				}
			}
		})
	}
}

// fake is one connection to a scripted server: a test plays the server's
// side line by line.
type fake struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// serveFake runs script on the first connection to a loopback listener and
// waits for it to end when the test ends.
func serveFake(t *testing.T, script func(f *fake)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		script(&fake{t: t, c: c, r: bufio.NewReader(c)})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// send writes lines, each ended with CRLF, in one write.
func (f *fake) send(lines ...string) {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	f.c.Write(b)
}

// expect reads a line and reports it unless it begins with prefix.
func (f *fake) expect(prefix string) string {
	l, err := f.r.ReadString('\n')
	if err != nil {
		f.t.Errorf("server: reading, want %q: %v", prefix, err)
		return ""
	}
	l = strings.TrimSuffix(l, "\r\n")
	if !strings.HasPrefix(l, prefix) {
		f.t.Errorf("server: got %q, want %q", l, prefix)
	}
	return l
}

// expectEOF reports anything the client sends before closing.
func (f *fake) expectEOF() {
	if l, err := f.r.ReadString('\n'); err == nil {
		f.t.Errorf("server: got %q, want the connection closed", l)
	}
}

// data reads a message up to the end-of-data line.
func (f *fake) data() string {
	var b strings.Builder
	for {
		l, err := f.r.ReadString('\n')
		if err != nil {
			f.t.Errorf("server: reading data: %v", err)
			return b.String()
		}
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

// greet plays the greeting and an EHLO reply offering ext.
func (f *fake) greet(ext ...string) {
	f.send("220 fake.test ESMTP")
	f.expect("EHLO client.test")
	lines := []string{"250-fake.test"}
	for _, e := range ext {
		lines = append(lines, "250-"+e)
	}
	lines[len(lines)-1] = "250 " + lines[len(lines)-1][4:]
	f.send(lines...)
}

// reset drops the connection with an RST.
func (f *fake) reset() {
	f.c.(*net.TCPConn).SetLinger(0)
	f.c.Close()
}

// TestClientScripted plays a server from a script for each case the real
// servers cannot be made to show.
func TestClientScripted(t *testing.T) {
	env2 := Envelope{From: "a@example.org", To: []string{"b@example.com", "c@example.com"}}
	env3 := Envelope{From: "a@example.org", To: []string{"ok@example.com", "later@example.com", "no@example.com"}}
	tests := []struct {
		name   string
		env    Envelope
		server func(f *fake)
		// what Send returns: the reply codes of MAIL, RCPTs and the DATA
		// phase, and the error's step and kind ("" when none)
		mail, rcpts, data int
		rcptCodes         string
		dataSent          bool
		errStep           Step
		errKind           ErrorKind
		check             func(t *testing.T, res *Result, err error)
	}{
		{
			name: "mixed-recipients-pipelined", env: env3,
			server: func(f *fake) {
				f.greet("PIPELINING", "ENHANCEDSTATUSCODES")
				// All four commands arrive before any reply is sent: a
				// client that waited for replies would block here.
				f.expect("MAIL FROM:<a@example.org>")
				f.expect("RCPT TO:<ok@example.com>")
				f.expect("RCPT TO:<later@example.com>")
				f.expect("RCPT TO:<no@example.com>")
				f.expect("DATA")
				f.send("250 2.1.0 ok", "250 2.1.5 ok", "450 4.2.0 <later@example.com>: greylisted", "550-5.1.1 no such", "550 5.1.1 user", "354 go")
				if got := f.data(); got != "hello\r\n" {
					f.t.Errorf("server: data %q", got)
				}
				f.send("250 2.0.0 queued as X1")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250 450 550", data: 250, dataSent: true,
			check: func(t *testing.T, res *Result, err error) {
				want := []Reply{{250, "2.1.5", "ok"}, {450, "4.2.0", "<later@example.com>: greylisted"}, {550, "5.1.1", "no such\nuser"}}
				for i, w := range want {
					if res.Rcpts[i] != w {
						t.Errorf("recipient %d: %+v, want %+v", i, res.Rcpts[i], w)
					}
				}
				if res.Outcome(0) != (Reply{250, "2.0.0", "queued as X1"}) || res.Outcome(1).Code != 450 {
					t.Errorf("outcomes %v %v", res.Outcome(0), res.Outcome(1))
				}
			},
		},
		{
			name: "one-at-a-time-without-pipelining", env: env2,
			server: func(f *fake) {
				f.greet("SIZE 1000000")
				for _, cmd := range []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA"} {
					f.expect(cmd)
					if n := f.r.Buffered(); n > 0 {
						f.t.Errorf("server: %d bytes pipelined after %q by a client told not to", n, cmd)
					}
					if cmd == "DATA" {
						f.send("354 go")
					} else {
						f.send("250 ok")
					}
				}
				f.data()
				f.send("250 ok")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250 250", data: 250, dataSent: true,
		},
		{
			name: "mail-refused-pipelined", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				f.expect("MAIL")
				f.expect("RCPT")
				f.expect("RCPT")
				f.expect("DATA")
				f.send("550 sender refused", "503 need MAIL", "503 need MAIL", "503 need MAIL")
				f.expect("RSET")
				f.send("250 ok")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 550, rcptCodes: "503 503", data: 503,
			check: func(t *testing.T, res *Result, err error) {
				if res.Outcome(1).Code != 550 {
					t.Errorf("outcome %v, want MAIL's refusal", res.Outcome(1))
				}
			},
		},
		{
			name: "mail-refused-step-by-step", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("451 try later")
				f.expect("RSET")
				f.send("250 ok")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 451, rcptCodes: "0 0",
		},
		{
			name: "rset-refused", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("550 no")
				f.expect("RSET")
				f.send("500 what?")
				f.expectEOF()
			},
			mail: 550, rcptCodes: "0 0", errStep: StepReset, errKind: KindReply,
		},
		{
			name: "data-refused", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "250 ok", "451 4.3.0 local problem")
				f.expect("RSET")
				f.send("250 ok")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250 250", data: 451,
		},
		{
			name: "354-without-recipients", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "550 no", "550 no", "354 go ahead anyway")
				if got := f.data(); got != "" {
					f.t.Errorf("server: got a message %q for no recipient", got)
				}
				f.send("554 no valid recipients")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "550 550",
		},
		{
			name: "421-on-rcpt", env: env3,
			server: func(f *fake) {
				f.greet("PIPELINING", "ENHANCEDSTATUSCODES")
				for i := 0; i < 5; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "421 4.3.2 shutting down")
				f.expectEOF()
			},
			mail: 250, rcptCodes: "250 421 0", errStep: StepRcpt, errKind: KindReply,
			check: func(t *testing.T, res *Result, err error) {
				var e *Error
				if !errors.As(err, &e) || e.Reply != (Reply{421, "4.3.2", "shutting down"}) {
					t.Errorf("error %#v", err)
				}
			},
		},
		{
			name: "421-on-rcpt-step-by-step", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("250 ok")
				f.expect("RCPT TO:<b@example.com>")
				f.send("421 closing")
				f.expectEOF()
			},
			mail: 250, rcptCodes: "421 0", errStep: StepRcpt, errKind: KindReply,
		},
		{
			name: "421-after-dot", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "250 ok", "354 go")
				f.data()
				f.send("421 out of disk")
				f.expectEOF()
			},
			mail: 250, rcptCodes: "250 250", data: 421, dataSent: true, errStep: StepDataDone, errKind: KindReply,
			check: func(t *testing.T, res *Result, err error) {
				if err.(*Error).PossibleDelivery() {
					t.Error("a 421 final reply is not a possible delivery")
				}
			},
		},
		{
			name: "reset-after-dot", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "250 ok", "354 go")
				f.data()
				f.reset()
			},
			mail: 250, rcptCodes: "250 250", dataSent: true, errStep: StepDataDone, errKind: KindReset,
			check: func(t *testing.T, res *Result, err error) {
				if !err.(*Error).PossibleDelivery() || !strings.Contains(err.Error(), "possible delivery") {
					t.Errorf("error %q is not a possible delivery", err)
				}
			},
		},
		{
			name: "closed-in-rcpt", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("250 ok")
				f.expect("RCPT")
			},
			mail: 250, rcptCodes: "0 0", errStep: StepRcpt, errKind: KindEOF,
		},
		{
			name: "multiline-final-reply", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING", "ENHANCEDSTATUSCODES")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "250 ok", "354 go")
				f.data()
				f.send("250-2.0.0 first", "250-2.0.0", "250-second 2.0.0", "250 2.0.0 queued as ABC")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250 250", data: 250, dataSent: true,
			check: func(t *testing.T, res *Result, err error) {
				if want := (Reply{250, "2.0.0", "first\n\nsecond 2.0.0\nqueued as ABC"}); res.Data != want {
					t.Errorf("final reply %+v, want %+v", res.Data, want)
				}
			},
		},
		{
			name: "enhanced-codes-not-offered", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 2.1.0 ok", "250 ok", "250 ok", "354 go")
				f.data()
				f.send("250 2.0.0 done")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250 250", data: 250, dataSent: true,
			check: func(t *testing.T, res *Result, err error) {
				if res.Data != (Reply{250, "", "2.0.0 done"}) {
					t.Errorf("final reply %+v: the code is text when not offered", res.Data)
				}
			},
		},
		{
			name: "codes-disagree", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("250-ok", "550 no")
				f.expectEOF()
			},
			rcptCodes: "0 0", errStep: StepMail, errKind: KindProtocol,
		},
		{
			name: "missing-space", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("250ok")
				f.expectEOF()
			},
			rcptCodes: "0 0", errStep: StepMail, errKind: KindProtocol,
		},
		{
			name: "not-a-reply", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("hello there")
				f.expectEOF()
			},
			rcptCodes: "0 0", errStep: StepMail, errKind: KindProtocol,
		},
		{
			name: "too-many-lines", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				for i := 0; i < 1000; i++ {
					f.send("250-again")
				}
				f.send("250 done")
			},
			rcptCodes: "0 0", errStep: StepMail, errKind: KindProtocol,
		},
		{
			name: "silent-after-dot", env: env2,
			server: func(f *fake) {
				f.greet("PIPELINING")
				for i := 0; i < 4; i++ {
					f.r.ReadString('\n')
				}
				f.send("250 ok", "250 ok", "250 ok", "354 go")
				f.data()
				f.expectEOF() // until the client gives up
			},
			mail: 250, rcptCodes: "250 250", dataSent: true, errStep: StepDataDone, errKind: KindTimeout,
			check: func(t *testing.T, res *Result, err error) {
				if e := err.(*Error); !e.PossibleDelivery() || !e.Timeout() {
					t.Errorf("error %v: want a timeout and a possible delivery", err)
				}
			},
		},
		{
			name: "silent-on-rcpt", env: env2,
			server: func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.send("250 ok")
				f.expect("RCPT")
				f.expectEOF()
			},
			mail: 250, rcptCodes: "0 0", errStep: StepRcpt, errKind: KindTimeout,
		},
		{
			name: "size-over-limit", env: Envelope{From: "a@example.org", To: []string{"b@example.com"}, Size: 1001},
			server: func(f *fake) {
				f.greet("SIZE 1000")
				f.expect("QUIT") // nothing else
				f.send("221 bye")
			},
			mail: 552, rcptCodes: "0",
			check: func(t *testing.T, res *Result, err error) {
				if !res.Synthetic || res.Mail.Enhanced != "5.3.4" {
					t.Errorf("result %+v", res)
				}
			},
		},
		{
			name: "smtputf8-not-offered", env: Envelope{From: "jö@example.org", To: []string{"b@example.com"}, SMTPUTF8: true},
			server: func(f *fake) {
				f.greet("8BITMIME")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 553, rcptCodes: "0",
			check: func(t *testing.T, res *Result, err error) {
				if !res.Synthetic || res.Mail.Enhanced != "5.6.7" {
					t.Errorf("result %+v", res)
				}
			},
		},
		{
			name: "parameters", env: Envelope{From: "jö@example.org", To: []string{"b@example.com"}, Size: 6, Body8bit: true, SMTPUTF8: true},
			server: func(f *fake) {
				f.greet("SIZE", "8BITMIME", "SMTPUTF8")
				f.expect("MAIL FROM:<jö@example.org> SIZE=6 BODY=8BITMIME SMTPUTF8")
				f.send("250 ok")
				f.expect("RCPT TO:<b@example.com>")
				f.send("250 ok")
				f.expect("DATA")
				f.send("354 go")
				f.data()
				f.send("250 ok")
				f.expect("QUIT")
				f.send("221 bye")
			},
			mail: 250, rcptCodes: "250", data: 250, dataSent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveFake(t, tt.server)
			cfg := clientConfig()
			if tt.errKind == KindTimeout {
				cfg.Timeouts.Command, cfg.Timeouts.DataDone = 300*time.Millisecond, 300*time.Millisecond
			}
			c := dial(t, addr, cfg)
			res, err := c.Send(context.Background(), tt.env, bytes.NewReader([]byte("hello\r\n")))
			if res == nil {
				t.Fatalf("no result; error %v", err)
			}
			if res.Mail.Code != tt.mail || codes(res.Rcpts) != tt.rcptCodes || res.Data.Code != tt.data || res.DataSent != tt.dataSent {
				t.Errorf("result %+v, want MAIL %d RCPT %s DATA %d sent %v", res, tt.mail, tt.rcptCodes, tt.data, tt.dataSent)
			}
			var e *Error
			switch {
			case tt.errStep == 0 && err != nil:
				t.Errorf("error %v", err)
			case tt.errStep != 0 && !errors.As(err, &e):
				t.Errorf("error %v, want step %v kind %v", err, tt.errStep, tt.errKind)
			case tt.errStep != 0 && (e.Step != tt.errStep || e.Kind != tt.errKind):
				t.Errorf("error %v: step %v kind %v, want %v %v", err, e.Step, e.Kind, tt.errStep, tt.errKind)
			}
			if tt.check != nil {
				tt.check(t, res, err)
			}
			if err != nil {
				// The client is closed; it says so again rather than write.
				if res, again := c.Send(context.Background(), tt.env, bytes.NewReader([]byte("x\r\n"))); again != err || res == nil || !res.Outcome(0).IsZero() {
					t.Errorf("Send after the error: %+v, %v; want no replies and %v", res, again, err)
				}
				return
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Errorf("quit: %v", err)
			}
		})
	}
}

// TestClientOpenFails covers the sessions that end before a transaction:
// refused greetings and EHLO, silence, garbage. The caller tries the next
// host on all of them.
func TestClientOpenFails(t *testing.T) {
	tests := []struct {
		name    string
		server  func(f *fake)
		step    Step
		kind    ErrorKind
		reply   int
		message string
	}{
		{name: "greeting-421", server: func(f *fake) {
			f.send("421 4.3.2 busy, try later")
			f.expectEOF() // no QUIT after a 421
		}, step: StepGreeting, kind: KindReply, reply: 421, message: "smtp: greeting: server replied 421 4.3.2 busy, try later"},
		{name: "greeting-554", server: func(f *fake) {
			f.send("554-go away", "554 really")
			f.expect("QUIT") // RFC 5321 3.1
			f.send("221 bye")
		}, step: StepGreeting, kind: KindReply, reply: 554, message: "smtp: greeting: server replied 554-go away / 554 really"},
		{name: "greeting-silent", server: func(f *fake) {
			f.expectEOF()
		}, step: StepGreeting, kind: KindTimeout},
		{name: "greeting-huge-line", server: func(f *fake) {
			// 1 MB in one line: the client must refuse it, not buffer it.
			f.c.Write(append([]byte("220 "), bytes.Repeat([]byte("x"), 1<<20)...))
		}, step: StepGreeting, kind: KindProtocol, message: "smtp: greeting: malformed reply: line longer than 4096 bytes"},
		{name: "greeting-closed", server: func(f *fake) {}, step: StepGreeting, kind: KindEOF},
		{name: "ehlo-421", server: func(f *fake) {
			f.send("220 hi")
			f.expect("EHLO")
			f.send("421 4.7.0 too many connections")
			f.expectEOF()
		}, step: StepEHLO, kind: KindReply, reply: 421},
		{name: "ehlo-450", server: func(f *fake) {
			f.send("220 hi")
			f.expect("EHLO")
			f.send("450 not now")
			f.expect("QUIT")
			f.send("221 bye")
		}, step: StepEHLO, kind: KindReply, reply: 450},
		{name: "ehlo-and-helo-refused", server: func(f *fake) {
			f.send("220 hi")
			f.expect("EHLO client.test")
			f.send("500 what")
			f.expect("HELO client.test")
			f.send("550 go away")
			f.expect("QUIT")
			f.send("221 bye")
		}, step: StepEHLO, kind: KindReply, reply: 550},
		{name: "tls-required-not-offered", server: func(f *fake) {
			f.greet("PIPELINING")
			f.expect("QUIT")
			f.send("221 bye")
		}, step: StepStartTLS, kind: KindTLS, message: "smtp: starttls: STARTTLS is required but the server does not offer it"},
		{name: "tls-required-refused", server: func(f *fake) {
			f.greet("STARTTLS")
			f.expect("STARTTLS")
			f.send("454 4.7.0 TLS not available")
			f.expect("QUIT")
			f.send("221 bye")
		}, step: StepStartTLS, kind: KindReply, reply: 454},
		{name: "starttls-response-injection", server: func(f *fake) {
			f.greet("STARTTLS")
			f.expect("STARTTLS")
			f.send("220 go ahead", "250 injected")
			f.expectEOF()
		}, step: StepStartTLS, kind: KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveFake(t, tt.server)
			cfg := clientConfig()
			if tt.kind == KindTimeout {
				cfg.Timeouts.Greeting = 300 * time.Millisecond
			}
			cfg.TLSMode = TLSRequired
			c, err := Dial(context.Background(), addr, cfg)
			var e *Error
			if !errors.As(err, &e) {
				c.Close()
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.Step != tt.step || e.Kind != tt.kind || e.Reply.Code != tt.reply {
				t.Errorf("error %q: step %v kind %v reply %d, want %v %v %d", err, e.Step, e.Kind, e.Reply.Code, tt.step, tt.kind, tt.reply)
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("message %q, want %q", err, tt.message)
			}
			if e.LocalAddr == nil || e.RemoteAddr.String() != addr {
				t.Errorf("addresses %v %v", e.LocalAddr, e.RemoteAddr)
			}
		})
	}
}

// A reset before the greeting. The client is connected before the server
// resets: a reset racing the connect would fail the connect instead.
func TestClientGreetingReset(t *testing.T) {
	dialed := make(chan struct{})
	addr := serveFake(t, func(f *fake) {
		<-dialed
		f.reset()
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	close(dialed)
	_, err = NewClient(context.Background(), conn, clientConfig())
	var e *Error
	if !errors.As(err, &e) || e.Step != StepGreeting || e.Kind != KindReset {
		t.Fatalf("error %v, want a reset at the greeting", err)
	}
}

func TestClientConnectFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	_, err = Dial(context.Background(), addr, clientConfig())
	var e *Error
	if !errors.As(err, &e) || e.Step != StepConnect || e.Kind != KindNetwork || e.LocalAddr != nil {
		t.Fatalf("error %#v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q", err)
	}
}

// The caller's context bounds every step: canceling it or its deadline
// ends a blocked read at once.
func TestClientContext(t *testing.T) {
	for _, tt := range []struct {
		name string
		kind ErrorKind
		want error
	}{
		{"cancel", KindCanceled, context.Canceled},
		{"deadline", KindTimeout, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveFake(t, func(f *fake) {
				f.greet()
				f.expect("MAIL")
				f.expectEOF()
			})
			c := dial(t, addr, clientConfig())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.kind == KindCanceled {
				time.AfterFunc(200*time.Millisecond, cancel)
			} else {
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			_, err := c.Send(ctx, Envelope{From: "a@example.org", To: []string{"b@example.com"}}, bytes.NewReader([]byte("x\r\n")))
			var e *Error
			if !errors.As(err, &e) || e.Step != StepMail || e.Kind != tt.kind || !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want step mail, kind %v", err, tt.kind)
			}
		})
	}
}

// A context that ended before the call loses the client without a write.
func TestClientContextDoneBefore(t *testing.T) {
	addr := serveFake(t, func(f *fake) {
		f.greet()
		f.expectEOF()
	})
	c := dial(t, addr, clientConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Send(ctx, Envelope{From: "a@example.org", To: []string{"b@example.com"}}, bytes.NewReader([]byte("x\r\n")))
	var e *Error
	if !errors.As(err, &e) || e.Step != StepMail || e.Kind != KindCanceled {
		t.Fatalf("error %v, want a canceled MAIL", err)
	}
	if err2 := c.Reset(context.Background()); err2 != err {
		t.Errorf("Reset after the error: %v, want %v", err2, err)
	}
}

// A bad envelope is refused before anything is written (the script fails
// on any command but QUIT), and the client stays usable.
func TestClientMisuse(t *testing.T) {
	addr := serveFake(t, func(f *fake) {
		f.greet()
		f.expect("QUIT")
		f.send("221 bye")
	})
	c := dial(t, addr, clientConfig())
	for _, env := range []Envelope{
		{From: "a@example.org"},
		{From: "a@example.org\r\nRCPT TO:<evil@example.net>", To: []string{"b@example.com"}},
		{From: "a@example.org", To: []string{"b@example.com>\r\nDATA"}},
		{From: "a@example.org", To: []string{""}},
	} {
		res, err := c.Send(context.Background(), env, bytes.NewReader([]byte("x\r\n")))
		var e *Error
		if err == nil || errors.As(err, &e) || res != nil {
			t.Errorf("envelope %+v: %v, %v; want a misuse error", env, res, err)
		}
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), Envelope{To: []string{"b@example.com"}}, bytes.NewReader(nil)); err == nil {
		t.Error("Send after Quit succeeded")
	}
}

func TestClientTLS(t *testing.T) {
	ca := smtptest.NewCA(t)
	serverTLS := ca.Server(t, "mx.test")
	tests := []struct {
		name      string
		serverTLS *tls.Config
		mode      TLSMode
		client    *tls.Config
		wantTLS   bool
		errKind   ErrorKind
		verifyErr bool
	}{
		{name: "preferred-verified", serverTLS: serverTLS, mode: TLSPreferred,
			client: &tls.Config{ServerName: "mx.test", RootCAs: ca.Pool}, wantTLS: true},
		{name: "preferred-unverified", serverTLS: selfSigned(t), mode: TLSPreferred, wantTLS: true},
		{name: "required-verified", serverTLS: serverTLS, mode: TLSRequired,
			client: &tls.Config{ServerName: "mx.test", RootCAs: ca.Pool}, wantTLS: true},
		{name: "off", serverTLS: serverTLS, mode: TLSOff},
		{name: "preferred-not-offered", mode: TLSPreferred},
		{name: "required-not-offered", mode: TLSRequired, errKind: KindTLS},
		{name: "wrong-name", serverTLS: serverTLS, mode: TLSRequired,
			client: &tls.Config{ServerName: "other.test", RootCAs: ca.Pool}, errKind: KindTLS, verifyErr: true},
		{name: "unknown-authority", serverTLS: selfSigned(t), mode: TLSPreferred,
			client: &tls.Config{ServerName: "mx.test", RootCAs: ca.Pool}, errKind: KindTLS, verifyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			addr, ends := engine(t, rec, Config{TLS: tt.serverTLS})
			cfg := clientConfig()
			cfg.TLSMode, cfg.TLS = tt.mode, tt.client
			c, err := Dial(context.Background(), addr, cfg)
			if tt.errKind != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Step != StepStartTLS || e.Kind != tt.errKind {
					t.Fatalf("error %v, want step starttls kind %v", err, tt.errKind)
				}
				var verr *tls.CertificateVerificationError
				if tt.verifyErr != errors.As(err, &verr) {
					t.Errorf("error %v: certificate verification error %v, want %v", err, !tt.verifyErr, tt.verifyErr)
				}
				if tt.verifyErr {
					var herr x509.HostnameError
					var aerr x509.UnknownAuthorityError
					if !errors.As(err, &herr) && !errors.As(err, &aerr) {
						t.Errorf("error %v: neither a wrong host name nor an unknown authority", err)
					}
				}
				waitEnd(t, ends)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cs, ok := c.TLSState()
			if ok != tt.wantTLS || rec.saw("tls TLS 1.3") != tt.wantTLS {
				t.Fatalf("TLS %v (server saw %q), want %v", ok, rec.calls, tt.wantTLS)
			}
			if ok && (!cs.HandshakeComplete || cs.ServerName != serverName(cfg.TLS)) {
				t.Errorf("TLS state %+v", cs)
			}
			if _, offered := c.Ext("STARTTLS"); offered && tt.wantTLS {
				t.Error("extensions of the clear-text EHLO kept after STARTTLS")
			}
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.com"}}, bytes.NewReader([]byte("secret\r\n")))
			if err != nil || res.Data.Code != 250 || string(rec.messages[0]) != "secret\r\n" {
				t.Fatalf("%+v, %v", res, err)
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Fatal(err)
			}
			if e := waitEnd(t, ends); e.Cause != event.CauseQuit {
				t.Errorf("session end %+v", e)
			}
		})
	}
}

func serverName(cfg *tls.Config) string {
	if cfg == nil {
		return ""
	}
	return cfg.ServerName
}

// With TLSPreferred a refused STARTTLS leaves the session in clear text.
func TestClientStartTLSRefused(t *testing.T) {
	addr := serveFake(t, func(f *fake) {
		f.greet("STARTTLS", "PIPELINING")
		f.expect("STARTTLS")
		f.send("454 4.7.0 TLS not available due to local problem")
		f.expect("MAIL")
		f.expect("RCPT")
		f.expect("DATA")
		f.send("250 ok", "250 ok", "354 go")
		f.data()
		f.send("250 ok")
		f.expect("QUIT")
		f.send("221 bye")
	})
	cfg := clientConfig()
	cfg.TLSMode = TLSPreferred
	c := dial(t, addr, cfg)
	if _, ok := c.TLSState(); ok {
		t.Fatal("TLS on after a refused STARTTLS")
	}
	if res, err := c.Send(context.Background(), Envelope{To: []string{"b@example.com"}}, bytes.NewReader([]byte("x\r\n"))); err != nil || res.Data.Code != 250 {
		t.Fatalf("%+v %v", res, err)
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClientTranscript(t *testing.T) {
	var lines []string
	cfg := clientConfig()
	cfg.Transcript = func(sent bool, l []byte) {
		dir := "Rcvd"
		if sent {
			dir = "Sent"
		}
		lines = append(lines, dir+": "+string(l))
	}
	cfg.Hostname = ""
	addr, ends := engine(t, ehloHandler{&recorder{}, ehloRefused}, Config{})
	c := dial(t, addr, cfg)
	if _, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.com"}}, bytes.NewReader([]byte("line\r\n.dot\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, ends)
	want := []string{"Rcvd: 220 mx.test ESMTP", "Sent: EHLO [127.0.0.1]", "Rcvd: 502 #5.5.1 EHLO not implemented",
		"Sent: HELO [127.0.0.1]", "Rcvd: 250 mx.test",
		"Sent: MAIL FROM:<a@example.org>", "Rcvd: 250 sender <a@example.org> ok",
		"Sent: RCPT TO:<b@example.com>", "Rcvd: 250 recipient <b@example.com> ok",
		"Sent: DATA", "Rcvd: 354 go ahead", "Sent: line", "Sent: ..dot", "Sent: .", "Rcvd: 250 Ok: message accepted",
		"Sent: QUIT", "Rcvd: 221 mx.test closing connection"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in       string
		enhanced bool
		want     Reply
		err      bool
	}{
		{in: "250 ok\r\n", want: Reply{250, "", "ok"}},
		{in: "250\r\n", want: Reply{250, "", ""}},
		{in: "250 \r\n", want: Reply{250, "", ""}},
		{in: "250 ok\n", want: Reply{250, "", "ok"}},
		{in: "250-a\r\n250-b\r\n250 c\r\n", want: Reply{250, "", "a\nb\nc"}},
		{in: "250-a\r\n250\r\n", want: Reply{250, "", "a\n"}},
		{in: "550 5.1.1 no\r\n", enhanced: true, want: Reply{550, "5.1.1", "no"}},
		{in: "550 5.1.1\r\n", enhanced: true, want: Reply{550, "5.1.1", ""}},
		{in: "550 5.1.1 no\r\n", want: Reply{550, "", "5.1.1 no"}},
		{in: "550 4.1.1 class differs\r\n", enhanced: true, want: Reply{550, "", "4.1.1 class differs"}},
		{in: "550 5.1234.1 too long\r\n", enhanced: true, want: Reply{550, "", "5.1234.1 too long"}},
		{in: "550 5.1.1x\r\n", enhanced: true, want: Reply{550, "", "5.1.1x"}},
		{in: "550 #5.1.1 esa\r\n", enhanced: true, want: Reply{550, "", "#5.1.1 esa"}},
		{in: "354 3.0.0 no class 3\r\n", enhanced: true, want: Reply{354, "", "3.0.0 no class 3"}},
		{in: "550-5.1.1 a\r\n550-5.7.1 b\r\n550 5.1.1 c\r\n", enhanced: true, want: Reply{550, "5.1.1", "a\n5.7.1 b\nc"}},
		{in: "250 ok\r\n250 next\r\n", want: Reply{250, "", "ok"}},
		{in: "", err: true},
		{in: "250 ok", err: true},
		{in: "250-a\r\n", err: true},
		{in: "25\r\n", err: true},
		{in: "2500 x\r\n", err: true},
		{in: "150 x\r\n", err: true},
		{in: "650 x\r\n", err: true},
		{in: "2a0 x\r\n", err: true},
		{in: "250-a\r\n251 b\r\n", err: true},
		{in: "250_x\r\n", err: true},
		{in: "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", maxReplyLines-1) + "250 x\r\n", want: Reply{250, "", strings.TrimSuffix(strings.Repeat("x\n", maxReplyLines), "\n")}},
	}
	for _, tt := range tests {
		r := bufio.NewReaderSize(strings.NewReader(tt.in), maxReplyLine)
		got, err := readReply(r, tt.enhanced, nil)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%q: %+v, %v; want %+v, error %v", clip([]byte(tt.in)), got, err, tt.want, tt.err)
		}
	}
}

// benchSend measures one connection sending 1 KB messages to addr.
func benchSend(b *testing.B, addr string, size int) {
	c := dial(b, addr, clientConfig())
	msg := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.....\r\n"), size/70+1)
	env := Envelope{From: "a@example.org", To: []string{"b@example.com"}, Size: int64(len(msg))}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := c.Send(context.Background(), env, bytes.NewReader(msg))
		if err != nil || res.Data.Code != 250 {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	c.Quit(context.Background())
}

func BenchmarkClientSend(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("smtp-sink/%dKB", size>>10), func(b *testing.B) {
			benchSend(b, sink(b, ""), size)
		})
		b.Run(fmt.Sprintf("engine/%dKB", size>>10), func(b *testing.B) {
			addr, _ := engine(b, discardHandler{}, Config{})
			benchSend(b, addr, size)
		})
	}
}

// BenchmarkClientSendParallel sends 1 KB messages to smtp-sink over 10
// connections per CPU, each its own Client, as the delivery side does.
func BenchmarkClientSendParallel(b *testing.B) {
	addr := sink(b, "")
	msg := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.....\r\n"), 15)
	env := Envelope{From: "a@example.org", To: []string{"b@example.com"}, Size: int64(len(msg))}
	b.SetParallelism(10)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := Dial(context.Background(), addr, clientConfig())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Quit(context.Background())
		for pb.Next() {
			if res, err := c.Send(context.Background(), env, bytes.NewReader(msg)); err != nil || res.Data.Code != 250 {
				b.Errorf("%+v %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// discardHandler accepts everything and keeps nothing.
type discardHandler struct{}

func (discardHandler) Hello(string, string) Reply        { return Reply{} }
func (discardHandler) Mail(Path, MailParams) Reply       { return Reply{} }
func (discardHandler) Rcpt(Path) Reply                   { return Reply{} }
func (discardHandler) Data(r io.Reader) Reply            { io.Copy(io.Discard, r); return Reply{} }
func (discardHandler) DataFailed(error)                  {}
func (discardHandler) Reset()                            {}
func (discardHandler) TLS(tls.ConnectionState)           {}
func (discardHandler) BadCommand(BadKind, string, Reply) {}
func (discardHandler) PlaintextDiscarded(int)            {}

func BenchmarkReadReply(b *testing.B) {
	in := []byte("250 2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ\r\n")
	br := bufio.NewReaderSize(nil, maxReplyLine)
	rd := bytes.NewReader(in)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rd.Reset(in)
		br.Reset(rd)
		if _, err := readReply(br, true, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// A message whose reader fails in the middle (a spool that finds damage
// at the end of the body) is not ended: the connection is closed, the
// server drops what it got, and the error says why.
func TestClientMessageReadFails(t *testing.T) {
	rec := &recorder{}
	addr, ends := engine(t, rec, Config{})
	c := dial(t, addr, clientConfig())
	damaged := errors.New("checksum mismatch")
	msg := io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat("body\r\n", 20000)), iotest.ErrReader(damaged))
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.com"}}, msg)
	var se *Error
	if !errors.As(err, &se) || se.Step != StepDataTransfer || !errors.Is(err, damaged) {
		t.Fatalf("Send: %v, want an *Error at the data transfer wrapping the read error", err)
	}
	if res == nil || res.DataSent {
		t.Errorf("result %+v: the data is not sent", res)
	}
	end := waitEnd(t, ends)
	if end.State != StateData || end.Injected != 0 {
		t.Errorf("server side ended %+v, want in DATA with nothing injected", end)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.messages) != 0 {
		t.Errorf("server accepted %d messages", len(rec.messages))
	}
}
