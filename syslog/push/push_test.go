package push

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/rsyslogtest"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// testLine is a mail-log line as a subscription sends it, with its level's
// severity.
type testLine struct {
	sev int
	msg string
}

var formatLines = []testLine{
	{Informational, "Info: New SMTP ICID 5 interface Management (127.0.0.1) address 127.0.0.1 reverse dns host localhost verified yes"},
	{Informational, "Info: MID 6 Subject 'Grüße aus Köln'"},
	{Warning, "Warning: MID 6 ICID 5 To: <x@example.com> Rejected by RAT"},
	{Critical, "Critical: mailgate: mail log write failed"},
	{Debug, "Debug: ICID 5 TLS success protocol TLSv1.3 cipher TLS_AES_128_GCM_SHA256"},
	{Informational, "Info: MID 7 Subject '" + strings.Repeat("é", 1500) + "'"}, // 3000+ bytes: cut to MaxMessage
}

// Every format over every transport, received by rsyslog: the message is
// exactly what the format says, and rsyslog reads facility, severity,
// host and tag from it.
func TestFormatsReceivedByRsyslog(t *testing.T) {
	at := time.Date(2026, 3, 7, 9, 4, 5, 123456000, time.UTC)
	for _, c := range []struct {
		network  string
		format   Format
		framing  Framing
		hostname string
		facility string
	}{
		{"udp", RFC3164, 0, "mx.test", "local4"},
		{"udp", RFC5424, 0, "mx.test", "mail"},
		{"tcp", RFC3164, OctetCounting, "mx.test", "local4"},
		{"tcp", RFC3164, Newline, "", "local4"}, // no HOSTNAME, as the ESA sends
		{"tcp", RFC5424, OctetCounting, "mx.test", "local0"},
		{"tls", RFC3164, OctetCounting, "mx.test", "local4"},
		{"tls", RFC5424, OctetCounting, "mx.test", "local7"},
	} {
		name := fmt.Sprintf("%s/%s/%s/framing%d/host%q", c.network, []string{"rfc3164", "rfc5424"}[c.format], c.facility, c.framing, c.hostname)
		t.Run(name, func(t *testing.T) {
			r := rsyslogtest.Start(t, c.network)
			o := Options{Network: c.network, Address: fmt.Sprintf("127.0.0.1:%d", r.Port), Format: c.format,
				Framing: c.framing, Facility: Facilities[c.facility], Hostname: c.hostname, Location: time.UTC,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
			if r.CA != nil {
				o.TLS = &tls.Config{RootCAs: r.CA.Pool}
			}
			s, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range formatLines {
				if !s.Send(at, l.sev, []byte(l.msg)) {
					t.Fatalf("Send(%q) dropped", l.msg)
				}
			}
			s.Send(at, Informational, []byte("Info: end"))
			got := r.WaitFor("Info: end")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(formatLines)+1 {
				t.Fatalf("rsyslog received %d lines, want %d:\n%s", len(got), len(formatLines)+1, strings.Join(got, "\n"))
			}
			if c.network == "udp" {
				slices.Sort(got[:len(formatLines)]) // datagrams may be reordered
			}
			var want []string
			for _, l := range formatLines {
				pri := Facilities[c.facility]*8 + l.sev
				var raw string
				var version, host string
				if c.format == RFC5424 {
					raw = fmt.Sprintf("<%d>1 2026-03-07T09:04:05.123456Z %s mail_logs - - - %s", pri, c.hostname, l.msg)
					version = "1"
				} else {
					h := ""
					if c.hostname != "" {
						h = c.hostname + " "
					}
					raw = fmt.Sprintf("<%d>Mar  7 09:04:05 %smail_logs: %s", pri, h, l.msg)
					version = "0"
				}
				if max := map[string]int{"udp": DefaultMaxUDP}[c.network]; max == 0 && len(raw) > DefaultMaxStream || max > 0 && len(raw) > max {
					if max == 0 {
						max = DefaultMaxStream
					}
					raw = raw[:max]
					raw = strings.ToValidUTF8(raw, "") // the cut falls inside an "é"
				}
				host = c.hostname
				if host == "" {
					host = "*" // rsyslog puts the peer's name: not checked
				}
				want = append(want, fmt.Sprintf("%d|%d|%s|mail_logs|%s|%s", Facilities[c.facility], l.sev, host, version, raw))
			}
			if c.network == "udp" {
				slices.Sort(want)
			}
			for i, w := range want {
				g := got[i]
				if strings.Contains(w, "|*|") {
					f := strings.SplitN(g, "|", 4)
					f[2] = "*"
					g = strings.Join(f, "|")
				}
				if g != w {
					t.Errorf("line %d:\n got %q\nwant %q", i, g, w)
				}
			}
			st := s.Stats()
			truncated := map[string]uint64{"udp": 1}[c.network]
			if st.Sent != uint64(len(formatLines)+1) || st.Dropped != 0 || st.Truncated != truncated || st.Connects != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// load sends the lines "Info: line <i>" for i in [from, to), noting in
// refused those Send refused. It checks after each Send that the queue keeps
// its bound. Paced, it lets the queue drain every 100 lines, as a receiver
// that keeps up would.
func load(t *testing.T, s *Sender, from, to int, refused map[int]bool, paced bool) {
	t.Helper()
	for i := from; i < to; i++ {
		if paced && i%100 == 0 {
			wait.Until(t, "the queue drains", func() bool { return s.Stats().Queued == 0 })
		}
		if !s.Send(time.Now(), Informational, fmt.Appendf(nil, "Info: line %d", i)) {
			refused[i] = true
		}
		if st := s.Stats(); st.Queued > s.o.QueueLines || st.QueuedBytes > s.o.QueueBytes {
			t.Fatalf("queue beyond its bound: %+v", st)
		}
	}
}

// received returns the line numbers rsyslog received, in order, and fails
// on a duplicate.
func received(t *testing.T, r *rsyslogtest.Server) []int {
	t.Helper()
	var nums []int
	seen := map[int]bool{}
	for _, l := range r.Lines() {
		_, num, ok := strings.Cut(l, "Info: line ")
		if !ok {
			continue
		}
		var n int
		if _, err := fmt.Sscan(num, &n); err != nil {
			t.Fatalf("bad line %q", l)
		}
		if seen[n] {
			t.Fatalf("line %d received twice", n)
		}
		seen[n] = true
		nums = append(nums, n)
	}
	return nums
}

// A receiver that hangs (SIGSTOP: it reads nothing, the socket buffers
// fill) mid-load: Send never blocks, the queue keeps its bound, and the
// lines refused are exactly the lines that never arrive once the receiver
// resumes; the drop counter counts them and the log reports them.
func TestHungReceiver(t *testing.T) {
	r := rsyslogtest.Start(t, "tcp")
	log := smtptest.NewLog()
	s, err := New(Options{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", r.Port), QueueLines: 500, QueueBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(log, nil)), WriteTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{}
	load(t, s, 0, 1000, refused, true)
	r.WaitFor("Info: line 999")
	r.Signal(syscall.SIGSTOP)
	// Enough to fill the kernel's buffers (some hundred KiB) and the queue.
	start := time.Now()
	load(t, s, 1000, 60000, refused, false)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("59000 Sends took %v with the receiver hung", d)
	}
	if len(refused) == 0 {
		t.Fatal("nothing dropped: the load did not fill the queue")
	}
	log.Wait(t, `syslog push: the queue is full.*dropped=\d+`)
	r.Signal(syscall.SIGCONT)
	load(t, s, 60000, 60010, refused, true)
	r.WaitFor("Info: line 60009")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := received(t, r)
	var want []int
	for i := range 60010 {
		if !refused[i] {
			want = append(want, i)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("received %d lines, want the %d accepted ones in order", len(got), len(want))
	}
	st := s.Stats()
	if st.Dropped != uint64(len(refused)) || st.Sent != uint64(len(want)) {
		t.Errorf("stats %+v; %d refused, %d accepted", st, len(refused), len(want))
	}
	t.Logf("60010 lines: %d received, %d dropped; %+v", len(got), len(refused), st)
}

// The receiver stopped (SIGTERM: it closes the connection) mid-load and
// started again: the Sender notices the close, queues up to its bound,
// drops and counts the rest, reconnects and sends what it queued. No line
// arrives twice or out of order, none Send refused arrives, and the lines
// lost without notice (written to the connection as the receiver closed
// it: TCP cannot tell) are few.
func TestReceiverRestart(t *testing.T) {
	r := rsyslogtest.Start(t, "tcp")
	log := smtptest.NewLog()
	s, err := New(Options{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", r.Port), QueueLines: 500,
		Logger: slog.New(slog.NewTextHandler(log, nil)), MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{}
	load(t, s, 0, 5000, refused, true)
	r.Stop()
	load(t, s, 5000, 10000, refused, false)
	log.Wait(t, `syslog push: the queue is full.*dropped=\d+`)
	log.Wait(t, `level=WARN msg="syslog push: cannot connect, lines are queued" destination="tcp 127.0.0.1:\d+" err=".*connection refused"`)
	r.Restart()
	wait.Until(t, "the sender reconnected", func() bool { return s.Stats().Connects >= 2 })
	load(t, s, 10000, 15000, refused, true)
	defer func() {
		if t.Failed() {
			ls := r.Lines()
			t.Logf("stats %+v; log:\n%s\nlast lines: %q", s.Stats(), log, ls[max(len(ls)-5, 0):])
		}
	}()
	r.WaitFor("Info: line 14999")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := received(t, r)
	if !slices.IsSorted(got) {
		t.Error("lines received out of order")
	}
	lost := 0
	gotSet := map[int]bool{}
	for _, n := range got {
		gotSet[n] = true
		if refused[n] {
			t.Errorf("line %d was refused by Send and received", n)
		}
	}
	for i := range 15000 {
		if !refused[i] && !gotSet[i] {
			lost++
		}
	}
	st := s.Stats()
	for i := range refused {
		if i < 5000 || i >= 10000 {
			t.Errorf("line %d refused while the receiver was up", i)
		}
	}
	if st.Dropped != uint64(len(refused)) || len(refused) < 4000 {
		t.Errorf("stats %+v: %d refused", st, len(refused))
	}
	if st.Sent != uint64(15000-len(refused)) {
		t.Errorf("sent %d, want %d", st.Sent, 15000-len(refused))
	}
	if len(got)+len(refused)+lost != 15000 || lost > 500 {
		t.Errorf("%d received + %d dropped + %d lost unnoticed != 15000 (or too many lost)", len(got), len(refused), lost)
	}
	t.Logf("15000 lines: %d received, %d dropped (counted), %d lost unnoticed; %+v", len(got), len(refused), lost, st)
}

// Close does not wait out a backoff: a server that came back meanwhile
// gets the queue before Close's deadline.
func TestCloseRetriesAtOnce(t *testing.T) {
	r := rsyslogtest.Start(t, "tcp")
	r.Stop()
	s, err := New(Options{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", r.Port), MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{}
	load(t, s, 0, 10, refused, false)
	wait.Until(t, "a failed connection", func() bool { return s.Stats().Failures > 0 })
	r.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.WaitFor("Info: line 9")
	if got := received(t, r); len(got) != 10 || len(refused) != 0 {
		t.Errorf("received %v, refused %v", got, refused)
	}
}

// A server that reads everything and then closes the connection (a
// graceful restart): the Sender notices the close before it writes again,
// so the next lines go on a new connection rather than into the closed
// one, where they would be lost unnoticed.
func TestServerCloseNoticed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got []string
	closed := make(chan struct{})
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				mu.Lock()
				got = append(got, sc.Text())
				mu.Unlock()
				if first && strings.HasSuffix(sc.Text(), "Info: line 9") {
					break
				}
			}
			c.Close()
			if first {
				close(closed)
			}
		}
	}()
	s, err := New(Options{Network: "tcp", Address: ln.Addr().String(), Framing: Newline,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{}
	load(t, s, 0, 10, refused, false)
	<-closed
	wait.Until(t, "the Sender sees the server's close", func() bool { return !s.Stats().Connected })
	load(t, s, 10, 20, refused, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "20 lines received", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 20
	})
	if st := s.Stats(); st.Connects != 2 || st.Sent != 20 || len(refused) != 0 {
		t.Errorf("stats %+v, refused %v", st, refused)
	}
}

// UDP to a server that is down: the refusals the kernel reports are
// counted as failures and the Sender backs off, so the queue fills and the
// rest is dropped, counted; once the server is back the queue is sent.
// Each refused write costs the datagram sent before it (lost unnoticed,
// as UDP is), one per retry.
func TestUDPReceiverDown(t *testing.T) {
	r := rsyslogtest.Start(t, "udp")
	s, err := New(Options{Network: "udp", Address: fmt.Sprintf("127.0.0.1:%d", r.Port), QueueLines: 100,
		MaxBackoff: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{}
	load(t, s, 0, 100, refused, true)
	r.WaitFor("Info: line 99")
	r.Stop()
	load(t, s, 100, 1000, refused, false)
	wait.Until(t, "a refused datagram", func() bool { return s.Stats().Failures > 0 })
	r.Restart()
	load(t, s, 1000, 1100, refused, true)
	r.WaitFor("Info: line 1099")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := received(t, r)
	st := s.Stats()
	if len(refused) < 790 || st.Dropped != uint64(len(refused)) {
		t.Errorf("%d refused, stats %+v", len(refused), st)
	}
	for _, n := range got {
		if refused[n] {
			t.Errorf("line %d was refused and received", n)
		}
	}
	lost := 1100 - len(refused) - len(got)
	if lost < 0 || uint64(lost) > st.Failures+1 {
		t.Errorf("%d lost unnoticed with %d failures", lost, st.Failures)
	}
	t.Logf("1100 lines: %d received, %d dropped, %d lost unnoticed; %+v", len(got), len(refused), lost, st)
}
