// Package storetest is the suite every tracking.Store passes: the SQLite and
// the PostgreSQL backends are held to the same behaviour by running it.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// Run runs the suite; open returns a new, empty store for each subtest
// (and closes it at the test's cleanup).
func Run(t *testing.T, open func(t *testing.T) tracking.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tracking.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Replace", testReplace},
		{"LoadAbsent", testLoadAbsent},
		{"Many", testMany},
		{"Concurrent", testConcurrent},
		{"Canceled", testCanceled},
		{"Search", testSearch},
		{"NullSender", testNullSender},
		{"Histogram", testHistogram},
		{"Watermark", testWatermark},
		{"Tracker", testTracker},
		{"BulkLoad", testBulkLoad},
		{"RetainAge", testRetainAge},
		{"RetainSize", testRetainSize},
		{"Gaps", testGaps},
		{"Auth", testAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
	// Importing twice must give what importing once gives, and whatever the
	// chunk size: the Tracker then reads its records back from the store.
	t.Run("TrackerChunks", func(t *testing.T) { testTrackerChunks(t, open(t), open(t)) })
	// A split's records, whether the other record is in memory or not.
	t.Run("Split", func(t *testing.T) { testSplit(t, open(t), open(t)) })
}

// base is a time in whole minutes (and in whole multiples of the
// Histogram steps used below).
var base = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

// full is a message with every field set, times to the nanosecond, and
// lines that a careless encoding would mangle.
func full() *tracking.Message {
	return &tracking.Message{
		Host: "esa1.example.com", MID: 1 << 40, ICID: 5, DCIDs: []uint64{8, 1<<63 - 1},
		RemoteIP: "2001:db8::1", RemoteHost: "mx.example.net", SenderGroup: "RELAYLIST",
		Sender: "Ünï.Côdé@Example.com",
		Recipients: []tracking.Recipient{
			{RID: 0, Address: "b@example.net", Status: tracking.Delivered, DCID: 8, Response: "2.0.0 Ok: queued as 12AB",
				Time: at(time.Second + 123456789)},
			{RID: 1, Address: "c@example.org", Status: tracking.Delayed, DCID: 1<<63 - 1, Code: "4.4.1",
				Response: `Connection timed out: "quoted" \x00 'it''s' 日本語`, NextRetry: at(time.Hour + 1),
				Time: at(2*time.Second + 1)},
			{RID: -1, Address: "x@bad.example", Status: tracking.Rejected, Response: "Rejected by Receiving \x00 (a NUL)",
				Time: at(500 * time.Millisecond)},
		},
		Subject:   `Grüße, 日本語 😀 — a\x1b[2Jb\x00 100% off_sale`,
		MessageID: "<20240301100000.1@example.com>", Size: 1<<40 + 7,
		Started: at(1), Finished: at(3*time.Second + 999999999),
		Status: tracking.Aborted, Abort: tracking.AbortLost, AbortReason: "Receiving aborted",
		AbortState: "data", AbortBytes: 12345, BounceOf: 4, Updated: at(3*time.Second + 999999999),
		SPF: []tracking.SPFCheck{{Identity: "helo", Address: "postmaster@mx.example.net", Result: "none"},
			{Identity: "mailfrom", Address: "Ünï.Côdé@Example.com", Result: "softfail"}},
		DKIM: []tracking.DKIMCheck{{Result: "pass", Domain: "example.com", Selector: "s1", Identity: "@example.com"},
			{Result: "permfail", Domain: "日本.example", Selector: `s\2`, Identity: `"q"@x`, Reason: "body hash did not verify \x00 (a NUL)"},
			{Result: "malformed", Reason: "signature missing required tag"}},
		DMARC:   &tracking.DMARCCheck{Domain: "example.com", Result: "fail", SPFAligned: true},
		DNSList: "zen.spamhaus.org",
		Lines: []tracking.Line{
			{Time: at(1), Level: event.Info, Text: "Start MID 1099511627776 ICID 5"},
			{Time: at(1), Level: event.Info, Text: "MID 1099511627776 ICID 5 From: <Ünï.Côdé@Example.com>"},
			{Time: at(2), Level: event.Debug, Text: `MID 1099511627776 Subject 'Grüße, 日本語 😀 — a\x1b[2Jb\x00'`},
			{Time: at(time.Second), Level: event.Warning, Text: "  leading and trailing spaces, and  double  ones  "},
			{Time: at(time.Second), Level: event.Critical, Text: ""},
			{Time: at(3*time.Second + 999999999), Level: event.Trace, Text: `a \ backslash, \\ two, \n not a newline, \u2028`},
		},
	}
}

// bare is a message with nothing but its key: every zero must read back
// as zero (times as the zero time, not 1970).
func bare() *tracking.Message {
	return &tracking.Message{Host: "esa1.example.com", MID: 2}
}

func fullConns() []*tracking.Conn {
	return []*tracking.Conn{
		{Host: "esa1.example.com", Kind: event.InboundConn, ID: 5, RemoteIP: "10.1.1.209",
			RemoteHost: "remotehost.com (not verified)", SenderGroup: "UNKNOWNLIST", DNSList: "list.dnswl.org", Started: at(7),
			Finished: at(time.Minute + 8), Lost: true, Cause: "peer_reset", State: "data", LastCommand: "DATA",
			DataBytes: 4096, MIDs: []uint64{6, 1 << 40, 7}, Lines: []tracking.Line{
				{Time: at(7), Level: event.Info, Text: "New SMTP ICID 5 interface Management (10.1.1.1) address 10.1.1.209 reverse dns host remotehost.com verified no"},
				{Time: at(time.Minute + 8), Level: event.Info, Text: "ICID 5 close"},
			}},
		{Host: "esa1.example.com", Kind: event.OutboundConn, ID: 5, RemoteIP: "10.2.2.2", Started: at(9),
			Lines: []tracking.Line{{Time: at(9), Level: event.Info, Text: "New SMTP DCID 5 interface 10.1.1.1 address 10.2.2.2 port 25"}}},
		{Host: "esa1.example.com", Kind: event.OutboundConn, ID: 6},
	}
}

func write(t *testing.T, s tracking.Store, b *tracking.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func load(t *testing.T, s tracking.Store, k tracking.Keys) *tracking.Batch {
	t.Helper()
	b, err := s.Load(context.Background(), k)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return b
}

func keysOf(b *tracking.Batch) tracking.Keys {
	var k tracking.Keys
	for _, m := range b.Messages {
		k.Messages = append(k.Messages, tracking.MessageKey{Host: m.Host, MID: m.MID})
	}
	for _, c := range b.Conns {
		k.Conns = append(k.Conns, tracking.ConnKey{Host: c.Host, Kind: c.Kind, ID: c.ID})
	}
	return k
}

// canon puts records in a form two equal ones share: sorted by key, times
// in UTC without a monotonic reading, empty slices nil. The stores give
// records in no particular order and need not tell nil from empty.
func canon(b *tracking.Batch) ([]tracking.Message, []tracking.Conn) {
	ms := make([]tracking.Message, 0, len(b.Messages))
	for _, m := range b.Messages {
		c := *m
		c.DCIDs = nilIfEmpty(slices.Clone(c.DCIDs))
		c.Recipients = nilIfEmpty(slices.Clone(c.Recipients))
		for i := range c.Recipients {
			r := &c.Recipients[i]
			r.NextRetry, r.Time = utc(r.NextRetry), utc(r.Time)
		}
		c.Started, c.Finished, c.Updated = utc(c.Started), utc(c.Finished), utc(c.Updated)
		c.Lines = canonLines(c.Lines)
		c.SPF, c.DKIM = nilIfEmpty(slices.Clone(c.SPF)), nilIfEmpty(slices.Clone(c.DKIM))
		ms = append(ms, c)
	}
	slices.SortFunc(ms, func(a, b tracking.Message) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.MID, b.MID))
	})
	cs := make([]tracking.Conn, 0, len(b.Conns))
	for _, c := range b.Conns {
		d := *c
		d.Started, d.Finished = utc(d.Started), utc(d.Finished)
		d.MIDs = nilIfEmpty(slices.Clone(d.MIDs))
		d.Lines = canonLines(d.Lines)
		cs = append(cs, d)
	}
	slices.SortFunc(cs, func(a, b tracking.Conn) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return ms, cs
}

func canonLines(ls []tracking.Line) []tracking.Line {
	ls = nilIfEmpty(slices.Clone(ls))
	for i := range ls {
		ls[i].Time = utc(ls[i].Time)
	}
	return ls
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// utc keeps the zero time zero (its UTC() is already the zero value) and
// drops the monotonic reading and location of the others.
func utc(t time.Time) time.Time { return t.UTC() }

// sameRecords fails the test unless got holds the records of want.
func sameRecords(t *testing.T, got, want *tracking.Batch) {
	t.Helper()
	gm, gc := canon(got)
	wm, wc := canon(want)
	if len(gm) != len(wm) || len(gc) != len(wc) {
		t.Fatalf("got %d messages, %d connections; want %d, %d", len(gm), len(gc), len(wm), len(wc))
	}
	for i := range wm {
		if !reflect.DeepEqual(gm[i], wm[i]) {
			t.Errorf("message %s/%d:\n got %s\nwant %s", wm[i].Host, wm[i].MID, show(gm[i]), show(wm[i]))
		}
	}
	for i := range wc {
		if !reflect.DeepEqual(gc[i], wc[i]) {
			t.Errorf("%v %d of %s:\n got %s\nwant %s", wc[i].Kind, wc[i].ID, wc[i].Host, show(gc[i]), show(wc[i]))
		}
	}
}

// show prints a record with its lines (which its JSON leaves out).
func show(v any) string {
	s := fmt.Sprintf("%+v", v)
	switch r := v.(type) {
	case tracking.Message:
		s += fmt.Sprintf(" lines %q", r.Lines)
	case tracking.Conn:
		s += fmt.Sprintf(" lines %q", r.Lines)
	}
	return s
}

func testRoundTrip(t *testing.T, s tracking.Store) {
	want := &tracking.Batch{Messages: []*tracking.Message{full(), bare()}, Conns: fullConns()}
	write(t, s, want)
	got := load(t, s, keysOf(want))
	sameRecords(t, got, want)
	for _, m := range got.Messages {
		if m.MID == 2 && (!m.Started.IsZero() || !m.Finished.IsZero() || !m.Updated.IsZero()) {
			t.Errorf("zero times read back as %v, %v, %v", m.Started, m.Finished, m.Updated)
		}
	}
	// The lines come back in the order written, which is not the order
	// of their times.
	for _, m := range got.Messages {
		if m.MID == full().MID && !reflect.DeepEqual(canonLines(m.Lines), canonLines(full().Lines)) {
			t.Errorf("lines %q, want %q", m.Lines, full().Lines)
		}
	}
}

func testReplace(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	first := full()
	conns := fullConns()
	write(t, s, &tracking.Batch{Messages: []*tracking.Message{first, bare()}, Conns: conns})

	m := full()
	m.Status, m.Abort, m.AbortReason, m.AbortState, m.AbortBytes = tracking.Delivered, "", "", "", 0
	m.Subject, m.Finished = "changed", time.Time{}
	m.SPF = []tracking.SPFCheck{{Identity: "mailfrom", Address: "a@example.com", Result: "pass"}}
	m.DKIM, m.DMARC, m.DNSList = nil, &tracking.DMARCCheck{Domain: "example.com", Result: "pass", DKIMAligned: true}, ""
	m.Lines = m.Lines[:2]
	m.Recipients = append(m.Recipients, tracking.Recipient{RID: 2, Address: "new@example.com", Status: tracking.Queued})
	m.DCIDs = append(m.DCIDs, 99)
	c := *conns[0]
	c.Lost, c.Lines, c.Finished, c.Cause, c.DNSList = false, nil, time.Time{}, "", "zen.spamhaus.org"
	c.MIDs = append(slices.Clone(c.MIDs), 9)
	write(t, s, &tracking.Batch{Messages: []*tracking.Message{m}, Conns: []*tracking.Conn{&c}})

	got := load(t, s, keysOf(&tracking.Batch{Messages: []*tracking.Message{m, bare()}, Conns: conns}))
	sameRecords(t, got, &tracking.Batch{Messages: []*tracking.Message{m, bare()}, Conns: []*tracking.Conn{&c, conns[1], conns[2]}})

	// The replacement is what a search sees.
	for _, q := range []tracking.Query{
		{Status: tracking.Delivered}, {Subject: "changed"}, {Recipient: "new@example.com"}, {DCID: 99},
		{SPF: "pass"}, {DMARC: "pass"},
	} {
		r, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		if len(r) != 1 || r[0].MID != m.MID {
			t.Errorf("Search(%+v) = %v, want MID %d", q, mids(r), m.MID)
		}
	}
	for _, q := range []tracking.Query{{Status: tracking.Aborted}, {Subject: "Grüße"}, {Abort: tracking.AbortLost},
		{SPF: "softfail"}, {DKIM: "pass"}, {DKIM: "permfail"}, {DMARC: "fail"}, {DNSList: "zen.spamhaus.org"}} {
		r, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		if len(r) != 0 {
			t.Errorf("Search(%+v) = %v, want none: the record was replaced", q, mids(r))
		}
	}

	// Within one batch, the last record of a key is the one kept.
	a, b := bare(), bare()
	a.Subject, b.Subject = "first", "second"
	write(t, s, &tracking.Batch{Messages: []*tracking.Message{a, b}})
	got = load(t, s, tracking.Keys{Messages: []tracking.MessageKey{{Host: b.Host, MID: b.MID}}})
	if len(got.Messages) != 1 || got.Messages[0].Subject != "second" {
		t.Errorf("after a batch with the key twice: %+v, want the second", got.Messages)
	}
}

func testLoadAbsent(t *testing.T, s tracking.Store) {
	got := load(t, s, tracking.Keys{})
	if len(got.Messages) != 0 || len(got.Conns) != 0 {
		t.Errorf("Load of nothing = %+v", got)
	}
	absent := tracking.Keys{
		Messages: []tracking.MessageKey{{Host: "esa1.example.com", MID: 3}, {Host: "esa2.example.com", MID: 1 << 40}},
		Conns: []tracking.ConnKey{{Host: "esa1.example.com", Kind: event.OutboundConn, ID: 7},
			{Host: "esa2.example.com", Kind: event.InboundConn, ID: 5}},
	}
	got = load(t, s, absent)
	if len(got.Messages) != 0 || len(got.Conns) != 0 {
		t.Errorf("Load of an empty store = %+v", got)
	}
	stored := &tracking.Batch{Messages: []*tracking.Message{full()}, Conns: fullConns()[:1]}
	write(t, s, stored)
	k := keysOf(stored)
	k.Messages = append(k.Messages, absent.Messages...)
	k.Conns = append(k.Conns, absent.Conns...)
	// The inbound connection 5 is stored; the outbound 5 is not.
	k.Conns = append(k.Conns, tracking.ConnKey{Host: "esa1.example.com", Kind: event.OutboundConn, ID: 5})
	sameRecords(t, load(t, s, k), stored)
}

// Messages is a batch of n messages of host from MID first on, each with
// two recipients, a delivery and 12 lines, as a busy gateway's Tracker
// writes them; their inbound connections too when conns is set.
func Messages(host string, first uint64, n int, conns bool) *tracking.Batch {
	b := &tracking.Batch{Watermarks: map[string]time.Time{}}
	for i := range n {
		mid := first + uint64(i)
		icid, dcid := mid/2+1, mid/3+1
		t0 := base.Add(time.Duration(i) * time.Millisecond)
		from, to1, to2 := fmt.Sprintf("sender%d@example.com", i%977), fmt.Sprintf("user%d@example.net", i), fmt.Sprintf("list%d@example.org", i%13)
		ln := func(d time.Duration, f string, a ...any) tracking.Line {
			return tracking.Line{Time: t0.Add(d), Level: event.Info, Text: fmt.Sprintf(f, a...)}
		}
		m := &tracking.Message{
			Host: host, MID: mid, ICID: icid, DCIDs: []uint64{dcid}, RemoteIP: "192.0.2.17",
			RemoteHost: "mail.example.com", SenderGroup: "ACCEPTLIST", Sender: from,
			Recipients: []tracking.Recipient{
				{RID: 0, Address: to1, Status: tracking.Delivered, DCID: dcid, Response: "2.0.0 Ok: queued as 4Xyz", Time: t0.Add(9 * time.Millisecond)},
				{RID: 1, Address: to2, Status: tracking.Delivered, DCID: dcid, Response: "2.0.0 Ok: queued as 4Xyz", Time: t0.Add(9 * time.Millisecond)},
			},
			Subject: fmt.Sprintf("Invoice %d for March", i), MessageID: fmt.Sprintf("<%d.%d@mail.example.com>", mid, i),
			Size: 20000 + int64(i), Started: t0, Finished: t0.Add(11 * time.Millisecond), Status: tracking.Delivered,
			Updated: t0.Add(11 * time.Millisecond),
			Lines: []tracking.Line{
				ln(0, "Start MID %d ICID %d", mid, icid),
				ln(1, "MID %d ICID %d From: <%s>", mid, icid, from),
				ln(2, "MID %d ICID %d RID 0 To: <%s>", mid, icid, to1),
				ln(3, "MID %d ICID %d RID 1 To: <%s>", mid, icid, to2),
				ln(4, "MID %d Message-ID '<%d.%d@mail.example.com>'", mid, mid, i),
				ln(5, "MID %d Subject 'Invoice %d for March'", mid, i),
				ln(6, "MID %d ready %d bytes from <%s>", mid, 20000+i, from),
				ln(7, "MID %d matched all recipients for per-recipient policy DEFAULT in the inbound table", mid),
				ln(8, "MID %d queued for delivery", mid),
				ln(9, "Delivery start DCID %d MID %d to RID [0, 1]", dcid, mid),
				ln(10, "Message done DCID %d MID %d to RID [0, 1]", dcid, mid),
				ln(11, "MID %d RID [0, 1] Response '2.0.0 Ok: queued as 4Xyz'", mid),
				ln(12, "Message finished MID %d done", mid),
			},
		}
		b.Messages = append(b.Messages, m)
		if conns && (i == 0 || icid != b.Conns[len(b.Conns)-1].ID) {
			b.Conns = append(b.Conns, &tracking.Conn{Host: host, Kind: event.InboundConn, ID: icid, RemoteIP: "192.0.2.17",
				RemoteHost: "mail.example.com", SenderGroup: "ACCEPTLIST", Started: t0, Lines: []tracking.Line{
					{Time: t0, Level: event.Info, Text: fmt.Sprintf("New SMTP ICID %d interface Management (10.1.1.1) address 192.0.2.17 reverse dns host mail.example.com verified yes", icid)},
					{Time: t0, Level: event.Info, Text: fmt.Sprintf("ICID %d ACCEPT SG ACCEPTLIST match 192.0.2.0/24 SBRS None country United States", icid)},
				}})
		}
		b.Watermarks[host] = m.Updated
	}
	return b
}

// testMany writes and loads more records than one statement carries.
func testMany(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	b := Messages("esa1.example.com", 1, 1500, true)
	more := Messages("esa2.example.com", 1, 10, true)
	b.Messages = append(b.Messages, more.Messages...)
	b.Conns = append(b.Conns, more.Conns...)
	write(t, s, b)
	sameRecords(t, load(t, s, keysOf(b)), b)
	// Again, as updates of every row.
	write(t, s, b)
	sameRecords(t, load(t, s, keysOf(b)), b)

	// A batch, out of key order, whose first half is stored already and
	// has changed: the stored rows are replaced, the others added, and no
	// search finds what was replaced.
	c := Messages("esa1.example.com", 751, 1500, true)
	for _, m := range c.Messages {
		m.Subject = "Reminder " + m.Subject
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(c.Messages), func(i, j int) { c.Messages[i], c.Messages[j] = c.Messages[j], c.Messages[i] })
	write(t, s, c)
	sameRecords(t, load(t, s, keysOf(c)), c)
	for _, q := range []tracking.Query{{Subject: "Reminder Invoice 0 for March"}, {Subject: "Invoice 1499 for March"}} {
		r, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) != 1 {
			t.Errorf("Search(%+v) = %v, want one message", q, mids(r))
		}
	}
}

// testConcurrent has several gateways write at once, as they share a
// PostgreSQL store.
func testConcurrent(t *testing.T, s tracking.Store) {
	var batches []*tracking.Batch
	for i := range 4 {
		batches = append(batches, Messages(fmt.Sprintf("esa%d", i), 1, 300, true))
	}
	errs := make(chan error, len(batches))
	for _, b := range batches {
		go func() {
			err := s.Write(context.Background(), b)
			if err == nil {
				err = s.Write(context.Background(), b)
			}
			errs <- err
		}()
	}
	for range batches {
		if err := <-errs; err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	for _, b := range batches {
		sameRecords(t, load(t, s, keysOf(b)), b)
	}
}

// testCanceled checks that a write that fails leaves nothing behind, and
// the store usable.
func testCanceled(t *testing.T, s tracking.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &tracking.Batch{Messages: []*tracking.Message{full()}, Conns: fullConns(),
		Watermarks: map[string]time.Time{"esa1.example.com": at(time.Hour)}}
	if err := s.Write(ctx, b); err == nil {
		t.Fatal("Write with a canceled context: no error")
	}
	if got := load(t, s, keysOf(b)); len(got.Messages) != 0 || len(got.Conns) != 0 {
		t.Errorf("after a failed write: %d messages, %d connections", len(got.Messages), len(got.Conns))
	}
	if w, err := s.Watermark(context.Background(), "esa1.example.com"); err != nil || !w.IsZero() {
		t.Errorf("after a failed write: watermark %v, %v", w, err)
	}
	write(t, s, b)
	sameRecords(t, load(t, s, keysOf(b)), b)
}

// The search fixture, newest first: started, host/MID.
//
//	5m esa2/4  4m esa2/1  3m esa1/5  3m esa1/3  2m esa1/2  1m esa1/1
func searchFixture() []*tracking.Message {
	rc := func(addrs ...string) []tracking.Recipient {
		var rs []tracking.Recipient
		for i, a := range addrs {
			rs = append(rs, tracking.Recipient{RID: i, Address: a, Status: tracking.Queued})
		}
		return rs
	}
	return []*tracking.Message{
		{Host: "esa1", MID: 1, ICID: 10, DCIDs: []uint64{20}, RemoteIP: "10.0.0.1", Sender: "Alice@Example.com",
			Recipients: rc("bob@example.net", "carol@other.org"), Subject: "Quarterly Report Ünïcode",
			MessageID: "<a1@example.com>", Status: tracking.Delivered, Started: at(time.Minute), Lines: []tracking.Line{{Time: at(time.Minute), Level: event.Info, Text: "Start MID 1 ICID 10"}},
			SPF:   []tracking.SPFCheck{{Identity: "helo", Address: "postmaster@mx", Result: "fail"}, {Identity: "mailfrom", Address: "Alice@Example.com", Result: "pass"}},
			DKIM:  []tracking.DKIMCheck{{Result: "pass", Domain: "example.com"}, {Result: "permfail", Domain: "other.example"}},
			DMARC: &tracking.DMARCCheck{Domain: "example.com", Result: "pass", DKIMAligned: true}},
		{Host: "esa1", MID: 2, ICID: 10, DCIDs: []uint64{21}, RemoteIP: "10.0.0.2", Sender: "dave@example.com",
			Recipients: rc("Bob@Example.NET"), Subject: "lunch?", MessageID: "<b2@x>", Status: tracking.Bounced,
			Started: at(2 * time.Minute), SPF: []tracking.SPFCheck{{Identity: "mailfrom", Address: "dave@example.com", Result: "fail"}},
			DKIM: []tracking.DKIMCheck{{Result: "permfail", Domain: "example.com"}}, DMARC: &tracking.DMARCCheck{Domain: "example.com", Result: "fail"}},
		{Host: "esa1", MID: 3, ICID: 11, RemoteIP: "10.0.0.3", Sender: "eve@evil.test", Recipients: rc("bob@example.net"),
			Subject: "100% off_sale", Status: tracking.Aborted, Abort: tracking.AbortTimeout, Started: at(3 * time.Minute),
			DNSList: "zen.spamhaus.org", DKIM: []tracking.DKIMCheck{{Result: "malformed", Reason: "pass permfail"}}},
		{Host: "esa1", MID: 5, ICID: 12, RemoteIP: "10.0.0.5", Sender: "frank@example.org", Recipients: rc("ann@example.org"),
			Subject: "tie", Status: tracking.Queued, Started: at(3 * time.Minute)},
		{Host: "esa2", MID: 1, ICID: 10, DCIDs: []uint64{20}, RemoteIP: "10.0.0.1", Sender: "alice@example.com",
			Recipients: rc("zed@example.org"), Subject: "quarterly numbers", Status: tracking.Queued, Started: at(4 * time.Minute),
			DNSList: "list.dnswl.org", DMARC: &tracking.DMARCCheck{Result: "temperror"}},
		{Host: "esa2", MID: 4, ICID: 13, RemoteIP: "10.0.0.4", Sender: "mallory@example.com.evil",
			Recipients: rc("x_y@example.net"), Subject: "re: hi", Status: tracking.Aborted, Abort: tracking.AbortSenderQuit,
			Started: at(5 * time.Minute)},
	}
}

func mids(ms []tracking.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s/%d", m.Host, m.MID))
	}
	return out
}

func testSearch(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	fixture := searchFixture()
	write(t, s, &tracking.Batch{Messages: fixture})
	all := []string{"esa2/4", "esa2/1", "esa1/5", "esa1/3", "esa1/2", "esa1/1"}
	tests := []struct {
		q    tracking.Query
		want []string
	}{
		{tracking.Query{}, all},
		{tracking.Query{Host: "esa1"}, []string{"esa1/5", "esa1/3", "esa1/2", "esa1/1"}},
		{tracking.Query{Host: "esa3"}, nil},
		{tracking.Query{MID: 1}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Host: "esa2", MID: 1}, []string{"esa2/1"}},
		{tracking.Query{ICID: 10}, []string{"esa2/1", "esa1/2", "esa1/1"}},
		{tracking.Query{Host: "esa1", ICID: 10}, []string{"esa1/2", "esa1/1"}},
		{tracking.Query{DCID: 20}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{DCID: 21}, []string{"esa1/2"}},
		{tracking.Query{Host: "esa2", DCID: 21}, nil},
		{tracking.Query{Sender: "alice@example.com"}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Sender: "ALICE@EXAMPLE.COM"}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Sender: "alice"}, nil},
		{tracking.Query{Sender: "*@example.com"}, []string{"esa2/1", "esa1/2", "esa1/1"}},
		{tracking.Query{Sender: "*@EXAMPLE.com"}, []string{"esa2/1", "esa1/2", "esa1/1"}},
		{tracking.Query{Sender: "al*"}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Sender: "*example*"}, []string{"esa2/4", "esa2/1", "esa1/5", "esa1/2", "esa1/1"}},
		{tracking.Query{Recipient: "bob@example.net"}, []string{"esa1/3", "esa1/2", "esa1/1"}},
		{tracking.Query{Recipient: "BOB@example.net"}, []string{"esa1/3", "esa1/2", "esa1/1"}},
		{tracking.Query{Recipient: "*@example.net"}, []string{"esa2/4", "esa1/3", "esa1/2", "esa1/1"}},
		{tracking.Query{Recipient: "Carol@*"}, []string{"esa1/1"}},
		{tracking.Query{Recipient: "x_y@*"}, []string{"esa2/4"}},
		{tracking.Query{Recipient: "xzy@*"}, nil}, // '_' is no wildcard
		{tracking.Query{Recipient: "x%@*"}, nil},  // nor is '%'
		{tracking.Query{Host: "esa1", Recipient: "*@example.org"}, []string{"esa1/5"}},
		{tracking.Query{Subject: "QUARTERLY"}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Subject: "report Ü"}, []string{"esa1/1"}}, // SQLite folds only ASCII
		{tracking.Query{Subject: "Ünïcode"}, []string{"esa1/1"}},
		{tracking.Query{Subject: "%"}, []string{"esa1/3"}},
		{tracking.Query{Subject: "_"}, []string{"esa1/3"}},
		{tracking.Query{Subject: "0% OFF_s"}, []string{"esa1/3"}},
		{tracking.Query{Subject: "off sale"}, nil},
		{tracking.Query{MessageID: "<b2@x>"}, []string{"esa1/2"}},
		{tracking.Query{MessageID: "<B2@x>"}, nil},
		{tracking.Query{RemoteIP: "10.0.0.1"}, []string{"esa2/1", "esa1/1"}},
		{tracking.Query{Status: tracking.Delivered}, []string{"esa1/1"}},
		{tracking.Query{Status: tracking.Aborted}, []string{"esa2/4", "esa1/3"}},
		{tracking.Query{Status: tracking.Rejected}, nil},
		{tracking.Query{Abort: tracking.AbortTimeout}, []string{"esa1/3"}},
		{tracking.Query{Abort: tracking.AbortSenderQuit}, []string{"esa2/4"}},
		{tracking.Query{Since: at(2 * time.Minute)}, []string{"esa2/4", "esa2/1", "esa1/5", "esa1/3", "esa1/2"}},
		{tracking.Query{Until: at(2 * time.Minute)}, []string{"esa1/1"}},
		{tracking.Query{Since: at(2 * time.Minute), Until: at(4 * time.Minute)}, []string{"esa1/5", "esa1/3", "esa1/2"}},
		{tracking.Query{Since: at(3*time.Minute + 1)}, []string{"esa2/4", "esa2/1"}},
		{tracking.Query{Limit: 2}, []string{"esa2/4", "esa2/1"}},
		{tracking.Query{Limit: 1, Host: "esa1"}, []string{"esa1/5"}},
		{tracking.Query{Host: "esa1", Sender: "*@example.com", Status: tracking.Bounced}, []string{"esa1/2"}},
		{tracking.Query{Host: "esa1", Sender: "*@example.com", Status: tracking.Queued}, nil},
		// The MAIL FROM identity's SPF result, not the HELO's.
		{tracking.Query{SPF: "pass"}, []string{"esa1/1"}},
		{tracking.Query{SPF: "fail"}, []string{"esa1/2"}},
		{tracking.Query{SPF: "none"}, nil},
		// Any signature's DKIM result, a whole word of the list.
		{tracking.Query{DKIM: "permfail"}, []string{"esa1/2", "esa1/1"}},
		{tracking.Query{DKIM: "pass"}, []string{"esa1/1"}},
		{tracking.Query{DKIM: "fail"}, nil},
		{tracking.Query{DKIM: "malformed"}, []string{"esa1/3"}},
		{tracking.Query{DMARC: "fail"}, []string{"esa1/2"}},
		{tracking.Query{DMARC: "pass"}, []string{"esa1/1"}},
		{tracking.Query{DMARC: "temperror"}, []string{"esa2/1"}},
		{tracking.Query{DMARC: "none"}, nil},
		{tracking.Query{DNSList: "zen.spamhaus.org"}, []string{"esa1/3"}},
		{tracking.Query{DNSList: "spamhaus.org"}, nil},
		{tracking.Query{Host: "esa1", DMARC: "fail", DKIM: "permfail", SPF: "fail"}, []string{"esa1/2"}},
	}
	for _, tt := range tests {
		got, err := s.Search(ctx, tt.q)
		if err != nil {
			t.Errorf("Search(%+v): %v", tt.q, err)
			continue
		}
		if g := mids(got); !slices.Equal(g, tt.want) {
			t.Errorf("Search(%+v) = %v, want %v", tt.q, g, tt.want)
		}
	}

	// Found messages are whole, but for their lines.
	got, err := s.Search(ctx, tracking.Query{})
	if err != nil {
		t.Fatal(err)
	}
	want := &tracking.Batch{}
	for _, m := range fixture {
		c := *m
		c.Lines = nil
		want.Messages = append(want.Messages, &c)
	}
	found := &tracking.Batch{}
	for i := range got {
		found.Messages = append(found.Messages, &got[i])
	}
	sameRecords(t, found, want)

	// Without a Limit, a search returns DefaultLimit messages.
	write(t, s, Messages("esa3", 1, tracking.DefaultLimit+5, false))
	got, err = s.Search(ctx, tracking.Query{Host: "esa3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != tracking.DefaultLimit {
		t.Errorf("Search without a limit found %d, want %d", len(got), tracking.DefaultLimit)
	}
}

// testNullSender: the null reverse-path (a bounce's MAIL FROM:<>) is a
// value to search for, not an empty filter that finds everything.
func testNullSender(t *testing.T, s tracking.Store) {
	write(t, s, &tracking.Batch{Messages: append(searchFixture(),
		&tracking.Message{Host: "esa3", MID: 7, Recipients: []tracking.Recipient{{RID: 0, Address: "alice@example.com", Status: tracking.Delivered}},
			Status: tracking.Delivered, BounceOf: 2, Started: at(0)})})
	for _, sender := range []string{tracking.NullSender, "<>", " <> "} {
		q, err := tracking.ParseQuery(url.Values{"sender": {sender}}, base)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if g := mids(got); !slices.Equal(g, []string{"esa3/7"}) {
			t.Errorf("sender %q: %v, want [esa3/7]", sender, g)
		}
	}
}

func testHistogram(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	write(t, s, &tracking.Batch{Messages: searchFixture()})
	type (
		st = map[tracking.Status]int
		ab = map[tracking.Abort]int
	)
	tests := []struct {
		q    tracking.Query
		step time.Duration
		want []tracking.Bucket
	}{
		{tracking.Query{}, 2 * time.Minute, []tracking.Bucket{
			{Start: at(0), Status: st{tracking.Delivered: 1}, Abort: ab{}},
			{Start: at(2 * time.Minute), Status: st{tracking.Bounced: 1, tracking.Aborted: 1, tracking.Queued: 1},
				Abort: ab{tracking.AbortTimeout: 1}},
			{Start: at(4 * time.Minute), Status: st{tracking.Queued: 1, tracking.Aborted: 1},
				Abort: ab{tracking.AbortSenderQuit: 1}},
		}},
		// The Limit does not apply; the other filters do.
		{tracking.Query{Host: "esa1", Limit: 1}, time.Minute, []tracking.Bucket{
			{Start: at(time.Minute), Status: st{tracking.Delivered: 1}, Abort: ab{}},
			{Start: at(2 * time.Minute), Status: st{tracking.Bounced: 1}, Abort: ab{}},
			{Start: at(3 * time.Minute), Status: st{tracking.Aborted: 1, tracking.Queued: 1}, Abort: ab{tracking.AbortTimeout: 1}},
		}},
		{tracking.Query{Sender: "*@example.com"}, time.Hour, []tracking.Bucket{
			{Start: at(0), Status: st{tracking.Delivered: 1, tracking.Bounced: 1, tracking.Queued: 1}, Abort: ab{}},
		}},
		{tracking.Query{Host: "esa3"}, time.Hour, nil},
	}
	for _, tt := range tests {
		got, err := s.Histogram(ctx, tt.q, tt.step)
		if err != nil {
			t.Errorf("Histogram(%+v, %v): %v", tt.q, tt.step, err)
			continue
		}
		for i := range got {
			got[i].Start = utc(got[i].Start)
		}
		if !reflect.DeepEqual(nilIfEmpty(got), tt.want) {
			t.Errorf("Histogram(%+v, %v) =\n%+v\nwant\n%+v", tt.q, tt.step, got, tt.want)
		}
	}
	if _, err := s.Histogram(ctx, tracking.Query{}, 0); err == nil {
		t.Error("Histogram with a zero step: no error")
	}
}

func testWatermark(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	check := func(host string, want time.Time) {
		t.Helper()
		got, err := s.Watermark(ctx, host)
		if err != nil {
			t.Fatalf("Watermark(%s): %v", host, err)
		}
		if !got.Equal(want) || got.IsZero() != want.IsZero() {
			t.Errorf("Watermark(%s) = %v, want %v", host, got, want)
		}
	}
	check("esa1", time.Time{})
	t1 := at(time.Hour + 123456789)
	write(t, s, &tracking.Batch{Watermarks: map[string]time.Time{"esa1": t1}})
	check("esa1", t1)
	check("esa2", time.Time{})
	// An older time (a log imported late) does not move it back.
	write(t, s, &tracking.Batch{Watermarks: map[string]time.Time{"esa1": at(time.Minute)}})
	check("esa1", t1)
	t2, t3 := t1.Add(1), at(time.Second)
	write(t, s, &tracking.Batch{Messages: []*tracking.Message{bare()}, Watermarks: map[string]time.Time{"esa1": t2, "esa2": t3}})
	check("esa1", t2)
	check("esa2", t3)
}

// esaLog is one message's life in an ESA's text mail log.
const esaLog = `Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 5 interface Management (10.1.1.1) address 10.1.1.209 reverse dns host remotehost.com verified yes
Thu Aug 14 11:04:31 2014 Info: ICID 5 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 0.0
Thu Aug 14 11:04:32 2014 Info: Start MID 6 ICID 5
Thu Aug 14 11:04:32 2014 Info: MID 6 ICID 5 From: <a@example.com>
Thu Aug 14 11:04:33 2014 Info: MID 6 ICID 5 RID 0 To: <b@example.net>
Thu Aug 14 11:04:34 2014 Info: MID 6 Message-ID '<1@example.com>'
Thu Aug 14 11:04:34 2014 Info: MID 6 Subject 'hi'
Thu Aug 14 11:04:34 2014 Info: MID 6 ready 100 bytes from <a@example.com>
Thu Aug 14 11:04:34 2014 Info: MID 6 queued for delivery
Thu Aug 14 11:04:35 2014 Info: New SMTP DCID 8 interface 10.1.1.1 address 10.2.2.2 port 25
Thu Aug 14 11:04:35 2014 Info: Delivery start DCID 8 MID 6 to RID [0]
Thu Aug 14 11:04:36 2014 Info: Message done DCID 8 MID 6 to RID [0]
Thu Aug 14 11:04:36 2014 Info: MID 6 RID [0] Response '2.0.0 Ok'
Thu Aug 14 11:04:36 2014 Info: Message finished MID 6 done
Thu Aug 14 11:04:37 2014 Info: ICID 5 close
Thu Aug 14 11:04:41 2014 Info: DCID 8 close
`

var esaKeys = tracking.Keys{
	Messages: []tracking.MessageKey{{Host: "esa1", MID: 6}},
	Conns:    []tracking.ConnKey{{Host: "esa1", Kind: event.InboundConn, ID: 5}, {Host: "esa1", Kind: event.OutboundConn, ID: 8}},
}

func importLog(t *testing.T, s tracking.Store, chunk int) tracking.Stats {
	t.Helper()
	tr := tracking.NewTracker(s, tracking.Options{ChunkSize: chunk})
	im := &tracking.Importer{Tracker: tr, Host: "esa1", Location: time.UTC}
	if err := im.Import(context.Background(), strings.NewReader(esaLog)); err != nil {
		t.Fatalf("Import: %v", err)
	}
	return tr.Stats()
}

func testTracker(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	importLog(t, s, 0)
	first := load(t, s, esaKeys)
	if len(first.Messages) != 1 || len(first.Conns) != 2 {
		t.Fatalf("after the import: %d messages, %d connections; want 1, 2", len(first.Messages), len(first.Conns))
	}
	m := first.Messages[0]
	sec := func(s int) time.Time { return time.Date(2014, 8, 14, 11, 4, s, 0, time.UTC) }
	if m.Status != tracking.Delivered || m.Sender != "a@example.com" || m.Subject != "hi" || m.Size != 100 ||
		m.ICID != 5 || !slices.Equal(m.DCIDs, []uint64{8}) || m.RemoteIP != "10.1.1.209" ||
		m.RemoteHost != "remotehost.com" || m.SenderGroup != "UNKNOWNLIST" || m.MessageID != "<1@example.com>" ||
		m.Started.Truncate(time.Second) != sec(32) || m.Finished.Truncate(time.Second) != sec(36) {
		t.Errorf("message: %+v", *m)
	}
	if len(m.Recipients) != 1 || m.Recipients[0].Address != "b@example.net" ||
		m.Recipients[0].Status != tracking.Delivered || m.Recipients[0].DCID != 8 || m.Recipients[0].Response != "2.0.0 Ok" {
		t.Errorf("recipients: %+v", m.Recipients)
	}
	if len(m.Lines) != 11 {
		t.Errorf("message lines: %q, want 11", m.Lines)
	}
	for _, c := range first.Conns {
		if c.Finished.IsZero() || len(c.Lines) != map[event.ConnKind]int{event.InboundConn: 3, event.OutboundConn: 2}[c.Kind] {
			t.Errorf("%v %d: finished %v, lines %q", c.Kind, c.ID, c.Finished, c.Lines)
		}
	}
	// Find: the message with its lines, and its two connections.
	fm, fc, err := s.Find(ctx, "esa1", 6)
	if err != nil {
		t.Fatal(err)
	}
	if fm.MID != 6 || len(fm.Lines) != 11 || len(fc) != 2 {
		t.Errorf("Find: MID %d, %d lines, %d connections; want 6, 11, 2", fm.MID, len(fm.Lines), len(fc))
	}
	if _, _, err := s.Find(ctx, "esa1", 7); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("Find of an absent MID: %v", err)
	}
	w, err := s.Watermark(ctx, "esa1")
	if err != nil {
		t.Fatal(err)
	}
	if w.Truncate(time.Second) != sec(41) {
		t.Errorf("watermark %v, want %v", w, sec(41))
	}
	found, err := s.Search(ctx, tracking.Query{Recipient: "B@example.NET", DCID: 8, Status: tracking.Delivered})
	if err != nil || len(found) != 1 || found[0].MID != 6 {
		t.Errorf("Search = %v, %v", mids(found), err)
	}

	// The same lines again change nothing.
	st := importLog(t, s, 0)
	if st.Applied != 0 || st.Messages != 0 || st.Conns != 0 {
		t.Errorf("second import: %+v, want nothing applied or written", st)
	}
	sameRecords(t, load(t, s, esaKeys), first)
	w2, err := s.Watermark(ctx, "esa1")
	if err != nil || !w2.Equal(w) {
		t.Errorf("watermark after the second import: %v, %v; want %v", w2, err, w)
	}
}

// testTrackerChunks imports the log in chunks of two lines into a, so that
// the Tracker writes records unfinished and reads them back, twice; and in
// one chunk into b.
func testTrackerChunks(t *testing.T, a, b tracking.Store) {
	importLog(t, a, 2)
	first := load(t, a, esaKeys)
	importLog(t, a, 2)
	sameRecords(t, load(t, a, esaKeys), first)
	importLog(t, b, 0)
	sameRecords(t, load(t, b, esaKeys), first)
}

// BenchmarkWrite times the Write of batches of 20,000 messages (a
// Tracker's default chunk), each with two recipients and 13 lines: new
// ones ("insert"), then the same again ("replace").
func BenchmarkWrite(b *testing.B, s tracking.Store) {
	const n = 20000
	ctx := context.Background()
	next := uint64(1)
	var last *tracking.Batch
	b.Run("insert", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			last = Messages("esa1", next, n, false)
			next += n
			b.StartTimer()
			if err := s.Write(ctx, last); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replace", func(b *testing.B) {
		for range b.N {
			if err := s.Write(ctx, last); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFeedRound times what a running gateway's feed asks of its store
// each round (about a second): the Load of the round's records it does not
// hold, nearly all of them new (1,700 messages and their inbound
// connections; Messages gives two messages a connection, so the first may
// be stored), then the Write of those records; in a store that holds
// 20,000 messages before. An op is one message.
func BenchmarkFeedRound(b *testing.B, s tracking.Store) {
	const round = 1700
	ctx := context.Background()
	if err := s.Write(ctx, Messages("esa1", 1, 20000, true)); err != nil {
		b.Fatal(err)
	}
	next := uint64(20001)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		b.StopTimer()
		batch := Messages("esa1", next, round, true)
		next += round
		keys := keysOf(batch)
		b.StartTimer()
		got, err := s.Load(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Messages) != 0 {
			b.Fatalf("loaded %d messages never written", len(got.Messages))
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// testBulkLoad imports a log inside a bulk load as large as a month of
// mail: searches answer during it and after it, the same.
func testBulkLoad(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	done, err := tracking.BeginBulk(ctx, s, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	importLog(t, s, 1000)
	during, err := s.Search(ctx, tracking.Query{Limit: 1000})
	if err != nil || len(during) == 0 {
		t.Fatalf("search during a bulk load: %d messages, %v", len(during), err)
	}
	if err := done(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.Search(ctx, tracking.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mids(after), mids(during); !slices.Equal(got, want) {
		t.Fatalf("after the bulk load: %v, during it: %v", got, want)
	}
	one, err := s.Search(ctx, tracking.Query{Sender: during[0].Sender, Limit: 1000})
	if err != nil || len(one) == 0 {
		t.Fatalf("sender search after the bulk load: %d, %v", len(one), err)
	}
}

// authLog is a message whose client a DNS list placed, with the
// authentication lines of both gateways' forms: mailgate's (the SPF
// detail, the DMARC sentence) and an ESA's ("Verification passed").
const authLog = `Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 15 interface Management (10.1.1.1) address 192.0.2.7 reverse dns host unknown verified no
Thu Aug 14 11:04:31 2014 Info: ICID 15 ACCEPT SG SUSPECTLIST match dnslist[Zen.Spamhaus.org:127.0.0.10-127.0.0.11] SBRS not enabled
Thu Aug 14 11:04:32 2014 Info: Start MID 16 ICID 15
Thu Aug 14 11:04:32 2014 Info: MID 16 ICID 15 From: <a@example.org>
Thu Aug 14 11:04:32 2014 Info: MID 16 SPF: helo identity postmaster@mx.example.net None
Thu Aug 14 11:04:32 2014 Info: MID 16 SPF: mailfrom identity a@example.org SoftFail (v=spf1)
Thu Aug 14 11:04:33 2014 Info: MID 16 ICID 15 RID 0 To: <b@example.net>
Thu Aug 14 11:04:34 2014 Info: MID 16 ready 100 bytes from <a@example.org>
Thu Aug 14 11:04:34 2014 Info: MID 16 DKIM: pass signature verified (d=mail.example.org s=s1 i=@mail.example.org)
Thu Aug 14 11:04:34 2014 Info: MID 16 DKIM: permfail body hash did not verify [final] (d=example.org s=s2 i=@example.org)
Thu Aug 14 11:04:34 2014 Info: MID 16 DMARC: Message from domain example.org, DMARC pass (SPF aligned False, DKIM aligned True)
Thu Aug 14 11:04:34 2014 Info: MID 16 DMARC: Verification passed
Thu Aug 14 11:04:34 2014 Info: MID 16 queued for delivery
Thu Aug 14 11:04:37 2014 Info: ICID 15 close
`

// AuthRecord is what authLog's message holds.
func AuthRecord() (spf []tracking.SPFCheck, dkim []tracking.DKIMCheck, dmarc *tracking.DMARCCheck) {
	return []tracking.SPFCheck{{Identity: "helo", Address: "postmaster@mx.example.net", Result: "none"},
			{Identity: "mailfrom", Address: "a@example.org", Result: "softfail"}},
		[]tracking.DKIMCheck{{Result: "pass", Domain: "mail.example.org", Selector: "s1", Identity: "@mail.example.org"},
			{Result: "permfail", Domain: "example.org", Selector: "s2", Identity: "@example.org", Reason: "body hash did not verify"}},
		&tracking.DMARCCheck{Domain: "example.org", Result: "pass", DKIMAligned: true}
}

// testAuth: the authentication lines of a message, and the DNS list rule
// of its connection, become the record's fields, which searches find, in
// whatever chunks the Tracker reads them.
func testAuth(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	for _, chunk := range []int{1, 0} {
		tr := tracking.NewTracker(s, tracking.Options{ChunkSize: chunk})
		im := &tracking.Importer{Tracker: tr, Host: "esa1", Location: time.UTC}
		if err := im.Import(ctx, strings.NewReader(authLog)); err != nil {
			t.Fatalf("Import: %v", err)
		}
		m, conns, err := s.Find(ctx, "esa1", 16)
		if err != nil {
			t.Fatal(err)
		}
		spf, dkim, dmarc := AuthRecord()
		if !reflect.DeepEqual(m.SPF, spf) || !reflect.DeepEqual(m.DKIM, dkim) || !reflect.DeepEqual(m.DMARC, dmarc) {
			t.Errorf("chunk %d: spf %+v\ndkim %+v\ndmarc %+v;\nwant %+v\n%+v\n%+v", chunk, m.SPF, m.DKIM, m.DMARC, spf, dkim, dmarc)
		}
		if m.DNSList != "zen.spamhaus.org" || len(conns) != 1 || conns[0].DNSList != "zen.spamhaus.org" {
			t.Errorf("chunk %d: message's dnslist %q, connections %+v", chunk, m.DNSList, conns)
		}
		for _, q := range []tracking.Query{{SPF: "softfail"}, {DKIM: "pass"}, {DKIM: "permfail"}, {DMARC: "pass"},
			{DNSList: "zen.spamhaus.org"}, {SPF: "softfail", DKIM: "permfail", DMARC: "pass", DNSList: "zen.spamhaus.org"}} {
			got, err := s.Search(ctx, q)
			if err != nil || len(got) != 1 || got[0].MID != 16 || !reflect.DeepEqual(got[0].SPF, spf) {
				t.Errorf("chunk %d: Search(%+v) = %v, %v", chunk, q, mids(got), err)
			}
		}
		for _, q := range []tracking.Query{{SPF: "none"}, {DKIM: "tempfail"}, {DMARC: "fail"}, {DNSList: "spamhaus.org"}} {
			if got, err := s.Search(ctx, q); err != nil || len(got) != 0 {
				t.Errorf("chunk %d: Search(%+v) = %v, %v; want none", chunk, q, mids(got), err)
			}
		}
	}
}

// OldAuthMessage is a message as a store without the authentication
// results held it: its lines have them, its fields not. A migration test
// stores it with the old schema and hands the migrated store to
// CheckAuthMigrated.
func OldAuthMessage() *tracking.Message {
	m := &tracking.Message{Host: "esa1", MID: 16, ICID: 15, Sender: "a@example.org", Status: tracking.Queued,
		Recipients: []tracking.Recipient{{RID: 0, Address: "b@example.net", Status: tracking.Queued}},
		Started:    time.Date(2014, 8, 14, 11, 4, 32, 0, time.UTC), Updated: time.Date(2014, 8, 14, 11, 4, 34, 0, time.UTC)}
	for i, l := range strings.Split(strings.TrimSpace(authLog), "\n") {
		if _, text, ok := strings.Cut(l, "Info: "); ok && strings.Contains(text, "MID 16 ") {
			m.Lines = append(m.Lines, tracking.Line{Time: m.Started.Add(time.Duration(i) * time.Microsecond), Level: event.Info, Text: text})
		}
	}
	return m
}

// CheckAuthMigrated: the old record reads back whole, with no results;
// the next line written to it gives it the results of its lines.
func CheckAuthMigrated(t *testing.T, s tracking.Store) {
	t.Helper()
	ctx := context.Background()
	m, _, err := s.Find(ctx, "esa1", 16)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != "a@example.org" || len(m.Lines) != len(OldAuthMessage().Lines) || m.SPF != nil || m.DMARC != nil {
		t.Fatalf("after the migration: %+v", m)
	}
	if got, err := s.Search(ctx, tracking.Query{DMARC: "pass"}); err != nil || len(got) != 0 {
		t.Fatalf("a record without results found by its DMARC result: %v, %v", mids(got), err)
	}
	tr := tracking.NewTracker(s, tracking.Options{})
	im := &tracking.Importer{Tracker: tr, Host: "esa1", Location: time.UTC}
	if err := im.Import(ctx, strings.NewReader("Thu Aug 14 11:04:40 2014 Info: Message finished MID 16 done\n")); err != nil {
		t.Fatal(err)
	}
	m, _, err = s.Find(ctx, "esa1", 16)
	if err != nil {
		t.Fatal(err)
	}
	spf, dkim, dmarc := AuthRecord()
	if !reflect.DeepEqual(m.SPF, spf) || !reflect.DeepEqual(m.DKIM, dkim) || !reflect.DeepEqual(m.DMARC, dmarc) {
		t.Errorf("after a new line: spf %+v, dkim %+v, dmarc %+v", m.SPF, m.DKIM, m.DMARC)
	}
	if got, err := s.Search(ctx, tracking.Query{DMARC: "pass", SPF: "softfail"}); err != nil || len(got) != 1 {
		t.Errorf("Search by the rebuilt results: %v, %v", mids(got), err)
	}
}
