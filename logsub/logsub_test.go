package logsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/rsyslogtest"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/syslog"
)

// receiver is mailgate's own syslog receiver on loopback, keeping what it
// receives.
type receiver struct {
	mu    sync.Mutex
	lines []string
	addr  string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	srv := &syslog.Server{Addr: "127.0.0.1:0", Handler: func(m syslog.Message) {
		r.mu.Lock()
		r.lines = append(r.lines, m.Line)
		r.mu.Unlock()
	}}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	r.addr = srv.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *receiver) wait(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	wait.Until(t, fmt.Sprintf("%d lines received", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		got = append([]string(nil), r.lines...)
		return len(got) >= n
	})
	return got
}

// bodies returns the lines of a log file after its header, without their
// timestamps ("Info: MID 1 queued for delivery").
func bodies(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 3 || !strings.HasSuffix(lines[0], "Info: Begin Logfile") {
		t.Fatalf("%s has no header: %q", path, lines)
	}
	var out []string
	for _, l := range lines[3:] {
		out = append(out, l[len("Mon Jan  2 15:04:05 2006 "):])
	}
	return out
}

// One log, a file and a syslog server, each at its own level; the
// gateway's slog records in a file of their own at debug level.
func TestSubscriptions(t *testing.T) {
	r := startReceiver(t)
	dir := t.TempDir()
	mailFile := filepath.Join(dir, "warn", "mail_logs.current")
	gwFile := filepath.Join(dir, "gw", "gateway.current")
	set, err := Open([]config.LogSubscription{
		{Log: config.LogMail, Level: event.Warning, File: &config.LogFile{Path: mailFile}},
		{Log: config.LogMail, Level: event.Info, Syslog: &config.SyslogPush{Address: r.addr, Transport: "tcp", Format: "rfc3164",
			Facility: "local4", Tag: "mail_logs", Hostname: "mx.test"}},
		{Log: config.LogGateway, Level: event.Debug, File: &config.LogFile{Path: gwFile}},
	}, Options{Version: "mailgate test", Serial: "mx.test", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 11, 16, 47, 0, time.UTC)
	mail := set.Log(config.LogMail)
	mail.Emit(event.Entry{Time: at, Level: event.Info, Event: event.Queued{MID: 1}})
	mail.Emit(event.Entry{Time: at, Level: event.Warning, Event: event.RcptRejected{MID: 1, ICID: 2, To: "x@example.com", By: "RAT"}})
	mail.Emit(event.Entry{Time: at, Level: event.Debug, Event: event.Queued{MID: 2}})
	if set.Log(config.LogStatus) != nil || set.Log(config.LogStatus).Enabled(event.Critical) {
		t.Error("a log without subscriptions has outputs")
	}
	set.Log(config.LogStatus).Emit(event.Entry{Event: event.Queued{MID: 3}}) // a nil Log discards

	var stderr bytes.Buffer
	logger := slog.New(Handler(slog.NewTextHandler(&stderr, nil), set.Log(config.LogGateway)))
	logger.Debug("spool recovered", "messages", 3)
	logger.With("destination", "tcp 192.0.2.1:514").WithGroup("push").Warn("write failed\nreconnecting", "err", errors.New("broken pipe"))
	logger.Error("stop", "err", "x")

	// The last line: TCP keeps the order, so what came before has come.
	mail.Emit(event.Entry{Time: at, Level: event.Critical, Event: event.Unknown{Text: "end"}})
	received := r.wait(t, 3)
	want := []string{
		"<166>Dec  7 11:16:47 mx.test mail_logs: Info: MID 1 queued for delivery",
		"<164>Dec  7 11:16:47 mx.test mail_logs: Warning: MID 1 ICID 2 To: <x@example.com> Rejected by RAT",
		"<162>Dec  7 11:16:47 mx.test mail_logs: Critical: end",
	}
	if strings.Join(received, "\n") != strings.Join(want, "\n") {
		t.Errorf("syslog received\n%s\nwant\n%s", strings.Join(received, "\n"), strings.Join(want, "\n"))
	}
	if err := set.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := bodies(t, mailFile); len(got) != 2 || got[0] != "Warning: MID 1 ICID 2 To: <x@example.com> Rejected by RAT" {
		t.Errorf("the warning file holds %q", got)
	}
	wantGW := []string{
		"Debug: spool recovered messages=3",
		`Warning: write failed\nreconnecting destination="tcp 192.0.2.1:514" push.err="broken pipe"`,
		"Critical: stop err=x",
	}
	// The senders' own reports go to the gateway log too, when they come.
	var got, pushed []string
	for _, l := range bodies(t, gwFile) {
		if strings.Contains(l, "syslog push: ") {
			pushed = append(pushed, l)
		} else {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(wantGW, "\n") {
		t.Errorf("the gateway file holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantGW, "\n"))
	}
	if len(pushed) != 1 || pushed[0] != `Debug: syslog push: connected destination="tcp `+r.addr+`"` {
		t.Errorf("the sender's reports in the gateway log: %q", pushed)
	}
	// Standard error keeps its own level: no debug record.
	if s := stderr.String(); strings.Contains(s, "spool recovered") || !strings.Contains(s, "level=WARN msg=\"write failed\\nreconnecting\" destination=\"tcp 192.0.2.1:514\" push.err=\"broken pipe\"") {
		t.Errorf("standard error:\n%s", s)
	}
	if st := set.Senders()[0].Stats(); st.Sent != 3 || st.Dropped != 0 {
		t.Errorf("sender stats %+v", st)
	}
}

func TestHandlerWithoutOutputs(t *testing.T) {
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	if Handler(h, nil) != slog.Handler(h) {
		t.Error("without gateway outputs the handler is not the primary one")
	}
}

// A TLS subscription as configured: the CA file and server name of the
// configuration check rsyslog's certificate; RFC 5424 with the mail facility.
func TestTLSSubscription(t *testing.T) {
	r := rsyslogtest.Start(t, "tls")
	set, err := Open([]config.LogSubscription{
		{Log: config.LogStatus, Level: event.Info, Syslog: &config.SyslogPush{Address: fmt.Sprintf("127.0.0.1:%d", r.Port),
			Transport: "tls", Format: "rfc5424", Facility: "mail", Tag: "status", Hostname: "mx.test",
			CA: r.CA.CertFile, ServerName: "127.0.0.1"}},
	}, Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 11, 16, 47, 0, time.UTC)
	set.Log(config.LogStatus).Emit(event.Entry{Time: at, Level: event.Info,
		Event: event.Status{Fields: []event.StatusField{{Name: "QKUsd", Value: "1"}, {Name: "CrtMID", Value: "2"}}}})
	got := r.WaitFor("Status: QKUsd 1 CrtMID 2")
	if err := set.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "2|6|mx.test|status|1|<22>1 2026-12-07T11:16:47.000000Z mx.test status - - - Info: Status: QKUsd 1 CrtMID 2"
	if len(got) != 1 || got[0] != want {
		t.Errorf("rsyslog received %q, want %q", got, want)
	}
}

// A CA that did not sign the server's certificate: nothing is sent, the
// failures are counted, the line waits in the queue.
func TestTLSSubscriptionWrongCA(t *testing.T) {
	r := rsyslogtest.Start(t, "tls")
	other := smtptest.NewCA(t)
	set, err := Open([]config.LogSubscription{
		{Log: config.LogMail, Level: event.Info, Syslog: &config.SyslogPush{Address: fmt.Sprintf("127.0.0.1:%d", r.Port),
			Transport: "tls", Format: "rfc3164", Facility: "local4", Tag: "mail_logs", CA: other.CertFile}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	set.Log(config.LogMail).Emit(event.Entry{Level: event.Info, Event: event.Queued{MID: 1}})
	s := set.Senders()[0]
	wait.Until(t, "a failed TLS connection", func() bool { return s.Stats().Failures > 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	set.Close(ctx)
	if st := s.Stats(); st.Sent != 0 || st.Connects != 0 || st.Dropped != 1 || len(r.Lines()) != 0 {
		t.Errorf("stats %+v, received %q", st, r.Lines())
	}
}
