package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// testOptions: ~20k lines, with the rare cases made common enough that
// every kind of line shows up.
func testOptions() Options {
	o := DefaultOptions()
	o.Lines = 20000
	o.Seed = 7
	o.Dead, o.RATAll, o.Relay = 0.1, 0.02, 0.4
	return o
}

func generate(t *testing.T, o Options) (log []byte, truth []Truth) {
	t.Helper()
	var lb, tb bytes.Buffer
	if _, err := Generate(o, &lb, &tb); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&tb)
	for dec.More() {
		var tr Truth
		if err := dec.Decode(&tr); err != nil {
			t.Fatal(err)
		}
		truth = append(truth, tr)
	}
	return lb.Bytes(), truth
}

// TestLinesParse: every line parses to a known event, renders back to
// itself (it is in mailgate's own form), and every kind of line the
// generator is meant to write is there.
func TestLinesParse(t *testing.T) {
	log, truth := generate(t, testOptions())
	seen := map[string]int{}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		n++
		line := sc.Text()
		e, err := maillog.ParseLine(line, time.UTC)
		if err != nil {
			t.Fatalf("line %d %q: %v", n, line, err)
		}
		if _, ok := e.Event.(event.Unknown); ok || e.Level != event.Info || e.Time.IsZero() {
			t.Fatalf("line %d %q: parsed as %#v", n, line, e)
		}
		if back := string(maillog.AppendLine(nil, e, time.UTC)); back != line {
			t.Fatalf("line %d renders back differently:\n%s\n%s", n, line, back)
		}
		name := reflect.TypeOf(e.Event).Name()
		switch ev := e.Event.(type) {
		case event.HATMatch:
			name += "/" + ev.Action
		case event.Outcome:
			name += fmt.Sprintf("/hard=%v/dcid0=%v", ev.Hard, ev.DCID == 0)
		case event.MessageAborted:
			name += "/" + ev.Reason
		case event.MessageFinished:
			name += "/" + ev.Status
		case event.TLS:
			name += "/" + ev.Conn.Kind.String()
		case event.Subject:
			name += "/" + string(ev.Quote)
		}
		seen[name]++
	}
	if n < 19000 || n > 30000 {
		t.Errorf("%d lines, want about 20000", n)
	}
	for _, want := range []string{
		"BeginLogfile", "LogfileVersion", "TimeOffset",
		"NewICID", "HATMatch/ACCEPT", "HATMatch/RELAY", "HATMatch/REJECT", "TLS/ICID", "StartMID", "MailFrom",
		"RcptTo", "RcptRejected", "MessageIDHeader", "Subject/'", `Subject/"`, "Ready", "PolicyMatch", "Queued",
		"ICIDLost", "MessageAborted/Receiving aborted", "MessageAborted/Receiving aborted by sender",
		"MessageAborted/Dropped by CASE", "MessageFinished/done", "MessageFinished/aborted", "ICIDClose",
		"NewDCID", "TLS/DCID", "DeliveryStart", "MessageDone", "Response", "DCIDClose",
		"Outcome/hard=true/dcid0=false", "Outcome/hard=true/dcid0=true", "Outcome/hard=false/dcid0=false",
		"Pending", "BounceGenerated", "ConnectionError",
	} {
		if seen[want] == 0 {
			t.Errorf("no %s line", want)
		}
	}
	statuses := map[string]int{}
	for _, tr := range truth {
		statuses[tr.Status]++
	}
	for _, s := range []string{"delivered", "bounced", "delayed", "aborted", "rejected", "dropped", "queued"} {
		if statuses[s] == 0 {
			t.Errorf("no %s message in the truth (%v)", s, statuses)
		}
	}
	t.Logf("%d lines; lines by kind %v; messages by status %v", n, seen, statuses)
}

// TestDeterministic: the same seed gives the same log, another seed another.
func TestDeterministic(t *testing.T) {
	o := testOptions()
	o.Lines = 3000
	a, _ := generate(t, o)
	b, _ := generate(t, o)
	if !bytes.Equal(a, b) {
		t.Error("two runs with the same seed differ")
	}
	o.Seed++
	c, _ := generate(t, o)
	if bytes.Equal(a, c) {
		t.Error("another seed gives the same log")
	}
}

// TestMessagesBudget: -messages stops after that many received messages.
func TestMessagesBudget(t *testing.T) {
	o := testOptions()
	o.Lines, o.Messages = 0, 500
	var lb bytes.Buffer
	s, err := Generate(o, &lb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 500 {
		t.Errorf("%d messages, want 500", s.Messages)
	}
	if n := int64(strings.Count(lb.String(), "\n")); n != s.Lines {
		t.Errorf("%d lines written, summary says %d", n, s.Lines)
	}
}

// TestTrackerAgrees imports the log into a tracking store and compares
// what the tracker concluded with the truth file. ESAGEN_TEST_LINES sets
// the size of the log (a bigger one reaches retries, connection reuse and
// the tracker's eviction); the default is testOptions'.
func TestTrackerAgrees(t *testing.T) {
	o := testOptions()
	if s := os.Getenv("ESAGEN_TEST_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("ESAGEN_TEST_LINES=%q: %v", s, err)
		}
		o.Lines = n
		o.Dead, o.RATAll, o.Relay = DefaultOptions().Dead, DefaultOptions().RATAll, DefaultOptions().Relay
	}
	log, truth := generate(t, o)
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	im := &tracking.Importer{Tracker: tracking.NewTracker(st, tracking.Options{ChunkSize: 1000}), Host: "esa1", Location: time.UTC}
	if err := im.Import(ctx, bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, want := range truth {
		m, _, err := st.Find(ctx, "esa1", want.MID)
		if err != nil {
			t.Errorf("MID %d: %v", want.MID, err)
			bad++
			continue
		}
		got := Truth{MID: m.MID, Status: string(m.Status), Sender: m.Sender, Subject: m.Subject, BounceOf: m.BounceOf,
			Recipients: []string{}}
		if m.Status == tracking.Aborted {
			got.Abort = string(m.Abort)
		}
		for _, r := range m.Recipients {
			if r.RID < 0 {
				got.Rejected = append(got.Rejected, r.Address)
			} else {
				got.Recipients = append(got.Recipients, r.Address)
			}
		}
		slices.Sort(got.Rejected)
		w := want
		w.Rejected = slices.Sorted(slices.Values(w.Rejected))
		if !reflect.DeepEqual(got, w) {
			bad++
			if bad <= 10 {
				t.Errorf("MID %d:\n got %+v\nwant %+v", want.MID, got, w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages differ", bad, len(truth))
	}
}

// BenchmarkGenerate reports the cost per line; allocations are per message
// (its record, addresses, subject), not per line.
func BenchmarkGenerate(b *testing.B) {
	o := DefaultOptions()
	o.Lines = 200000
	b.ReportAllocs()
	var lines int64
	for b.Loop() {
		s, err := Generate(o, discard{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		lines += s.Lines
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
