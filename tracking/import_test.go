package tracking_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// importWith imports files with im (its Tracker is made here) into a new
// store.
func importWith(t *testing.T, im *tracking.Importer, files ...string) *sqlitestore.Store {
	t.Helper()
	s := openTemp(t)
	im.Tracker = tracking.NewTracker(s, tracking.Options{ChunkSize: 3})
	for _, f := range files {
		if err := im.ImportFile(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func findMessage(t *testing.T, s tracking.Store, host string, mid uint64) *tracking.Message {
	t.Helper()
	m, _, err := s.Find(context.Background(), host, mid)
	if err != nil {
		t.Fatalf("%s MID %d: %v", host, mid, err)
	}
	return m
}

// TestImportSyslogHosts: in a file a syslog server wrote, each line is
// filed under the host its header names, with or without a <PRI>, in RFC
// 3164 or 5424 or rewrapped by a collector: two appliances' MID 100 on
// ICID 7 are two records, not one. A line that names no host goes under
// --host. Each line keeps its text as logged.
func TestImportSyslogHosts(t *testing.T) {
	file := "testdata/import/syslog-hosts.log"
	s := importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC, Year: 2026}, file)
	ms, err := s.Search(context.Background(), tracking.Query{MID: 100})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, m := range ms {
		hosts = append(hosts, m.Host)
	}
	slices.Sort(hosts)
	want := []string{"esa1.example.edu", "esa2.example.edu", "esa3.example.edu", "esa4.example.edu", "esa5.example.edu", "gw1"}
	if !slices.Equal(hosts, want) {
		t.Fatalf("MID 100 is on %v, want %v", hosts, want)
	}
	for _, w := range []struct{ host, sender, rcpt, ip string }{
		{"esa1.example.edu", "alice@example.net", "carol@example.edu", "192.0.2.10"},
		{"esa2.example.edu", "bob@example.org", "dave@example.edu", "198.51.100.20"},
	} {
		m := findMessage(t, s, w.host, 100)
		if m.Sender != w.sender || len(m.Recipients) != 1 || m.Recipients[0].Address != w.rcpt || m.RemoteIP != w.ip {
			t.Errorf("%s MID 100: sender %s, recipients %+v, remote %s; want %s, %s, %s", w.host, m.Sender, m.Recipients, m.RemoteIP, w.sender, w.rcpt, w.ip)
		}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, conns, err := s.Find(context.Background(), "esa2.example.edu", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range explain.Timeline(m, conns) {
		if l := e.Logged(); l == "" || !strings.Contains(string(raw), l+"\n") || !strings.Contains(l, "esa2.example.edu") {
			t.Errorf("timeline line %q is not a line of esa2 in the file", l)
		}
	}
	if m := findMessage(t, s, "esa4.example.edu", 100); !m.Started.Equal(time.Date(2026, 6, 26, 8, 42, 25, 0, time.UTC)) {
		t.Errorf("RFC 5424 line dated %v", m.Started)
	}
}

// TestImportYears: a syslog file's lines have no year. They take it from
// --year, or else from the file's modification time, and a message whose
// lines cross New Year keeps its order; only input that is no file is
// dated from the clock, and the importer says so.
func TestImportYears(t *testing.T) {
	src := "testdata/import/year-rollover.log"
	check := func(name string, s tracking.Store, year int) {
		t.Helper()
		m := findMessage(t, s, "esa1.example.edu", 200)
		start := time.Date(year, 12, 31, 23, 59, 58, 0, time.UTC)
		if !m.Started.Equal(start) || m.Updated.Year() != year+1 || m.Status != tracking.Queued {
			t.Errorf("%s: MID 200 started %v, updated %v, %s; want started %v, updated in %d, queued", name, m.Started, m.Updated, m.Status, start, year+1)
		}
	}
	check("--year 2019", importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC, Year: 2019}, src), 2019)

	// The file's time is in the January after (a rotated file).
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mail.log")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2022, 1, 3, 4, 0, 0, 0, time.UTC)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	var warned []string
	warn := func(s string) { warned = append(warned, s) }
	check("file time", importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC, Warn: warn}, file), 2021)
	if len(warned) != 0 {
		t.Errorf("warned %q with a file's time to go by", warned)
	}

	// A pipe has no time: the clock, and a warning.
	s := openTemp(t)
	im := &tracking.Importer{Tracker: tracking.NewTracker(s, tracking.Options{}), Host: "gw1", Location: time.UTC, Warn: warn}
	if err := im.Import(context.Background(), strings.NewReader(string(raw))); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "5 lines had no year") || !strings.Contains(warned[0], "--year") {
		t.Errorf("warnings %q, want one about 5 lines dated from the clock", warned)
	}
}

// TestImportSubjects: RFC 2047 subjects are stored decoded, so that a
// search by the words a reader sees finds them, and a search by the raw
// text of the log line too; the timeline keeps the line as logged.
func TestImportSubjects(t *testing.T) {
	s := importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC}, "testdata/import/subject-2047.log")
	for _, w := range []struct {
		mid     uint64
		subject string
		search  []string
	}{
		{300, "Été à Paris", []string{"Été à", "PARIS", "=?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?="}},
		{301, "Re: Café crème et brûlée", []string{"crème et brûlée", `=?windows-1252?Q?Re=3A_Caf=E9_cr=E8me?=`}},
	} {
		m := findMessage(t, s, "gw1", w.mid)
		if m.Subject != w.subject {
			t.Errorf("MID %d: subject %q, want %q", w.mid, m.Subject, w.subject)
		}
		if !strings.Contains(sqlrow.EncodeLines(m.Lines), "Subject '=?") {
			t.Errorf("MID %d: the timeline lost the raw Subject line:\n%s", w.mid, sqlrow.EncodeLines(m.Lines))
		}
		for _, q := range w.search {
			query, err := tracking.ParseQuery(url.Values{"subject": {q}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ms, err := s.Search(context.Background(), query)
			if err != nil || len(ms) != 1 || ms[0].MID != w.mid {
				t.Errorf("subject %q: found %d messages, %v; want MID %d", q, len(ms), err, w.mid)
			}
		}
	}
}

// TestImportESAAuth: real AsyncOS lines fill the authentication results
// as mailgate's own do: the cached SPF verdict, "DMARC: Verification
// passed" beside the sentence form, a body hash that did not verify; the
// filters find them.
func TestImportESAAuth(t *testing.T) {
	s := importWith(t, &tracking.Importer{Host: "esa1", Location: time.UTC, Year: 2023}, "testdata/import/esa-auth-elastic.log")
	m := findMessage(t, s, "esa1", 68119155)
	if want := []tracking.SPFCheck{{Identity: "mailfrom", Address: "no-reply@redactedMailFrom.com", Result: "pass"}}; !slices.Equal(m.SPF, want) {
		t.Errorf("MID 68119155 SPF %+v, want %+v", m.SPF, want)
	}
	if want := []tracking.DKIMCheck{{Result: "pass", Domain: "redactedMailFrom.com", Selector: "srsa2048", Identity: "@redactedMailFrom.com"}}; !slices.Equal(m.DKIM, want) {
		t.Errorf("MID 68119155 DKIM %+v, want %+v", m.DKIM, want)
	}
	if m.DMARC == nil || *m.DMARC != (tracking.DMARCCheck{Domain: "redactedMailFrom.com", Result: "pass", SPFAligned: true, DKIMAligned: true}) {
		t.Errorf("MID 68119155 DMARC %+v", m.DMARC)
	}
	m = findMessage(t, s, "REDACTED.africa.example.net", 204841507)
	if want := []tracking.DKIMCheck{{Result: "permfail", Domain: "example.com", Selector: "example2", Identity: "@example.com", Reason: "body hash did not verify"}}; !slices.Equal(m.DKIM, want) || m.SPF != nil || m.DMARC != nil {
		t.Errorf("MID 204841507: dkim %+v, spf %+v, dmarc %+v", m.DKIM, m.SPF, m.DMARC)
	}
	for q, want := range map[string]string{"dmarc=pass": "esa1/68119155", "spf=pass": "esa1/68119155", "dkim=pass": "esa1/68119155",
		"dkim=permfail": "REDACTED.africa.example.net/204841507"} {
		v, _ := url.ParseQuery(q)
		pq, err := tracking.ParseQuery(v, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ms, err := s.Search(context.Background(), pq)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || fmt.Sprintf("%s/%d", ms[0].Host, ms[0].MID) != want {
			t.Errorf("%s found %d messages, want %s", q, len(ms), want)
		}
	}
}
