package metrics

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/tracking"
)

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	return fams
}

func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	for _, m := range fams[name].GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return -1
}

// The counters of overflows no traffic test reaches, moved for real: a
// mail log whose file blocks (a FIFO nobody reads, as a hung disk) drops
// lines once its buffer is full; a tracking feed whose store never opens
// drops entries beyond its buffer.
func TestScrapeOverflowCounters(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "mail_logs.current")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO: %v", err)
	}
	// A reader so that the writer's open does not block; it reads nothing
	// until the end, so the pipe fills and the writer's flush blocks.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := maillog.Open(fifo, maillog.Options{FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	feed := tracking.NewFeed(tracking.FeedOptions{Host: "gw", Buffer: 10})
	m := New(Options{})
	m.Watch(Sources{MailLog: w, Tracking: feed})
	// 40 MiB of lines at most, more than the writer's 32 MiB buffer.
	e := event.Entry{Level: event.Info, Event: event.Subject{MID: 1, Subject: strings.Repeat("s", 400), Quote: '\''}}
	for i := 0; i < 100_000 && w.Stats().Dropped == 0; i++ {
		w.Emit(e)
	}
	for range 15 {
		feed.Emit(e)
	}
	fams := gather(t, m)
	if v := sample(fams, "mailgate_mail_log_dropped_lines_total"); v < 1 {
		t.Errorf("mail log dropped lines %v", v)
	}
	if v := sample(fams, "mailgate_tracking_dropped_entries_total"); v != 5 {
		t.Errorf("tracking dropped entries %v, want 5", v)
	}
	if v := sample(fams, "mailgate_tracking_lag_seconds"); v < 0 {
		t.Errorf("tracking lag %v", v)
	}
	// Let the writer go: the reader drains the pipe until Close is done.
	done := make(chan struct{})
	go func() {
		defer close(done)
		syscall.SetNonblock(int(r.Fd()), false)
		buf := make([]byte, 1<<20)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	w.Close()
	<-done
	r.Close()
}

// Destinations: the configured ones always by name, others up to the cap,
// then "other"; attempts counted per recipient outcome.
func TestDestinationCap(t *testing.T) {
	m := New(Options{Destinations: []string{"ALL", ".partner.example"}, MaxDestinations: 2})
	for _, d := range []string{"a.example", "b.example", "c.example", "ALL", ".partner.example", "a.example", "d.example"} {
		m.Attempted(outbound.Attempt{Destination: d, Delivered: 1, Transaction: time.Millisecond})
	}
	m.Attempted(outbound.Attempt{Destination: "ALL", Deferred: 2, Bounced: 1})
	fams := gather(t, m)
	for _, tt := range []struct {
		dest string
		want float64
	}{{"a.example", 2}, {"b.example", 1}, {"c.example", -1}, {"other", 2}, {"ALL", 1}, {".partner.example", 1}} {
		if got := sample(fams, "mailgate_delivered_recipients_total", "destination", tt.dest); got != tt.want {
			t.Errorf("delivered to %s: %v, want %v", tt.dest, got, tt.want)
		}
	}
	if got := sample(fams, "mailgate_delivery_attempts_total", "destination", "ALL"); got != 2 {
		t.Errorf("attempts to ALL: %v", got)
	}
	if d, b := sample(fams, "mailgate_deferred_recipients_total", "destination", "ALL"), sample(fams, "mailgate_bounced_recipients_total", "destination", "ALL"); d != 2 || b != 1 {
		t.Errorf("ALL: deferred %v bounced %v", d, b)
	}
}

// A listener's recipients are those of the messages queued, a duplicate
// (the same RID again) once; an aborted transaction's none.
func TestListenerRecipients(t *testing.T) {
	m := New(Options{})
	s := m.Listener("In")
	emit := func(evs ...event.Event) {
		for _, ev := range evs {
			s.Emit(event.Entry{Level: event.Info, Event: ev})
		}
	}
	emit(event.NewICID{ICID: 1},
		event.RcptTo{MID: 1, RID: 0}, event.RcptTo{MID: 1, RID: 1}, event.RcptTo{MID: 1, RID: 0}, event.Ready{MID: 1, Bytes: 100}, event.Queued{MID: 1},
		event.RcptTo{MID: 2, RID: 0}, event.MessageAborted{MID: 2, Reason: event.AbortReceivingBySender}, event.MessageFinished{MID: 2, Status: event.FinishedAborted})
	fams := gather(t, m)
	if v := sample(fams, "mailgate_received_recipients_total", "listener", "In"); v != 2 {
		t.Errorf("recipients %v, want 2", v)
	}
	if v := sample(fams, "mailgate_connections_open", "listener", "In"); v != 1 {
		t.Errorf("open connections %v, want 1", v)
	}
	emit(event.ConnectionEnd{ICID: 1, Cause: event.CauseQuit})
	fams = gather(t, m)
	if v := sample(fams, "mailgate_connections_open", "listener", "In"); v != 0 {
		t.Errorf("open connections after the end %v, want 0", v)
	}
	if n := len(s.(*listenerSink).rcpts); n != 0 {
		t.Errorf("%d transactions still held", n)
	}
}

// The cost a listener's sink adds to the SMTP path: the events of one
// connection with one message of two recipients.
func BenchmarkListenerSink(b *testing.B) {
	s := New(Options{}).Listener("In")
	evs := []event.Event{event.NewICID{ICID: 1}, event.HATMatch{ICID: 1, Action: event.ActionRelay}, event.StartMID{MID: 1},
		event.MailFrom{MID: 1}, event.RcptTo{MID: 1, RID: 0}, event.RcptTo{MID: 1, RID: 1}, event.Ready{MID: 1, Bytes: 1000},
		event.Queued{MID: 1}, event.ICIDClose{ICID: 1}, event.ConnectionEnd{ICID: 1, Cause: event.CauseQuit}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for _, ev := range evs {
				s.Emit(event.Entry{Level: event.Info, Event: ev})
			}
		}
	})
}
