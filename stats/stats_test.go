package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/outbound"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newCollector(t *testing.T, o Options) *Collector {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func emit(c *Collector, evs ...event.Event) {
	for _, ev := range evs {
		c.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: ev})
	}
}

// received is the lines of one message received on ICID icid with n
// recipients.
func received(icid, mid uint64, rcpts ...string) []event.Event {
	evs := []event.Event{event.StartMID{MID: mid, ICID: icid}, event.MailFrom{MID: mid, ICID: icid, From: "a@example.org"}}
	for i, r := range rcpts {
		evs = append(evs, event.RcptTo{MID: mid, ICID: icid, RID: i, To: r})
	}
	return append(evs, event.Ready{MID: mid, Bytes: 100}, event.Queued{MID: mid})
}

func TestEmitCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []event.Event
		want map[Counter]uint64
	}{
		{"a message and its recipients", received(1, 1, "a@x", "b@x"),
			map[Counter]uint64{InjMsgs: 1, InjRecips: 2}},
		{"a mailbox named twice is one recipient", []event.Event{
			event.StartMID{MID: 1, ICID: 1}, event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "a@x"},
			event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "A@x"}, event.RcptTo{MID: 1, ICID: 1, RID: 1, To: "b@x"},
			event.Queued{MID: 1}},
			map[Counter]uint64{InjMsgs: 1, InjRecips: 2}},
		{"a transaction not queued counts nothing, nor leaks into the next", []event.Event{
			event.NewICID{ICID: 1}, event.StartMID{MID: 1, ICID: 1}, event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "a@x"},
			event.MessageAborted{MID: 1, Reason: event.AbortReceivingBySender}, event.ICIDClose{ICID: 1},
			event.NewICID{ICID: 2}, event.StartMID{MID: 2, ICID: 2}, event.RcptTo{MID: 2, ICID: 2, RID: 0, To: "a@x"},
			event.ICIDClose{ICID: 2}, event.Queued{MID: 2}},
			map[Counter]uint64{ConnIn: 2, InjMsgs: 1, InjRecips: 0}},
		{"a generated bounce is no message received", []event.Event{
			event.StartMID{MID: 9, ICID: 0}, event.BounceGenerated{MID: 9, OrigMID: 1}, event.MailFrom{MID: 9},
			event.RcptTo{MID: 9, ICID: 0, RID: 0, To: "a@example.org"}, event.Ready{MID: 9}, event.Queued{MID: 9}},
			map[Counter]uint64{GenBounceRecips: 1, InjMsgs: 0, InjRecips: 0}},
		{"an alert is no message received", []event.Event{
			event.StartMID{MID: 10, ICID: 0}, event.MailFrom{MID: 10}, event.RcptTo{MID: 10, ICID: 0, RID: 0, To: "admin@example.org"},
			event.Subject{MID: 10, Subject: "Warning-mx.example.org: (System) x"}, event.Ready{MID: 10},
			event.AlertSent{Class: "System", Severity: "Warning", To: "admin@example.org", Subject: "Warning-mx.example.org: (System) x"},
			event.Queued{MID: 10}},
			map[Counter]uint64{GenBounceRecips: 0, InjMsgs: 0, InjRecips: 0}},
		{"refused recipients", []event.Event{
			event.RcptRejected{MID: 1, ICID: 1, To: "a@x", By: "RAT"},
			event.InvalidAddress{ICID: 1, MID: 1, Recipient: true, Detail: "bad"},
			event.InvalidAddress{ICID: 1, Detail: "a bad sender is no recipient"}},
			map[Counter]uint64{RejectedRecips: 2}},
		{"dropped, not an abort", []event.Event{
			event.MessageAborted{MID: 1, Reason: "Dropped by CASE"}, event.MessageAborted{MID: 2, Reason: event.AbortReceiving},
			event.MessageAborted{MID: 3, Reason: event.AbortReceivingBySender},
			event.MessageAborted{MID: 4, Reason: "Bounced by content filter 'x' in the inbound table"}},
			map[Counter]uint64{DroppedMsgs: 1}},
		{"the kinds of hard bounces", []event.Event{
			event.Outcome{Hard: true, DCID: 1, MID: 1, To: "a@x", Status: "5.1.1", Code: "550"},
			event.Outcome{Hard: true, MID: 1, To: "a@x", Status: "5.1.2", Code: "000"},
			event.Outcome{Hard: true, MID: 1, To: "a@x", Status: "5.4.4", Code: "000"},
			event.Outcome{Hard: true, MID: 1, To: "a@x", Status: "5.4.7", Code: "000"},
			event.Outcome{Hard: true, MID: 1, To: "a@x", Status: "5.0.0", Code: "000"},
			event.Outcome{DCID: 2, MID: 1, To: "a@x", Status: "4.4.1", Code: "000"}},
			map[Counter]uint64{HardBouncedRecips: 5, HardBounces5XX: 1, DNSHardBounces: 2, ExpiredHardBounces: 1,
				OtherHardBounces: 1, SoftBouncedEvts: 1, CompletedRecips: 5}},
		{"delivered and deleted complete", []event.Event{
			event.NewDCID{DCID: 1}, event.DeliveryStart{DCID: 1, MID: 1, RIDs: []int{0, 1}},
			event.MessageDone{DCID: 1, MID: 1, RIDs: []int{0, 1}}, event.DCIDClose{DCID: 1},
			event.Deleted{MID: 2, RIDs: []int{0, 1, 2}}},
			map[Counter]uint64{ConnOut: 1, DeliveredRecips: 2, DeletedRecips: 3, CompletedRecips: 5}},
		{"signatures", []event.Event{
			event.Signing{MID: 1, Text: "signing with example.org - matched example.org"},
			event.Signing{MID: 2, Text: "no signing profile"}},
			map[Counter]uint64{DKSignedMsgs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t, Options{})
			emit(c, tc.evs...)
			st := c.Status(false)
			for k, n := range tc.want {
				if r := st.Counter(k); r.Reset != n || r.Uptime != n || r.Lifetime != n {
					t.Errorf("%v: %+v, want %d", k, r, n)
				}
			}
			if len(st.Rates) != 0 {
				t.Errorf("rates without detail: %+v", st.Rates)
			}
		})
	}
}

func TestConnectionGauge(t *testing.T) {
	c := newCollector(t, Options{})
	emit(c, event.NewICID{ICID: 1}, event.NewICID{ICID: 2}, event.ICIDClose{ICID: 1})
	if n := c.Status(false).Gauges.ConnIn; n != 1 {
		t.Errorf("inbound connections: %d, want 1", n)
	}
}

func TestReset(t *testing.T) {
	c := newCollector(t, Options{})
	emit(c, received(1, 1, "a@x")...)
	c.Reset()
	emit(c, received(1, 2, "a@x", "b@x")...)
	st := c.Status(false)
	if r := st.Counter(InjRecips); r.Reset != 2 || r.Uptime != 3 || r.Lifetime != 3 {
		t.Errorf("inj_recips after a reset: %+v", r)
	}
	if st.LastReset.IsZero() {
		t.Error("no time of the last reset")
	}
}

func TestRates(t *testing.T) {
	var r ring
	t0 := time.Unix(1_000_000, 0)
	i := ratedIndex[InjRecips]
	// 100 recipients in one second: 6,000 an hour over a minute, 1,200
	// over five, 400 over fifteen (the ESA's own example).
	r.add(t0, InjRecips, 100)
	r.add(t0, DeletedRecips, 5) // not rated: no column
	for _, tc := range []struct {
		at                 time.Duration
		one, five, fifteen uint64
	}{
		{0, 6000, 1200, 400},
		{59 * time.Second, 6000, 1200, 400},
		{60 * time.Second, 0, 1200, 400},
		{299 * time.Second, 0, 1200, 400},
		{300 * time.Second, 0, 0, 400},
		{899 * time.Second, 0, 0, 400},
		{900 * time.Second, 0, 0, 0},
	} {
		now := t0.Add(tc.at)
		if got := [3]uint64{r.perHour(now, i, 60), r.perHour(now, i, 300), r.perHour(now, i, 900)}; got != [3]uint64{tc.one, tc.five, tc.fifteen} {
			t.Errorf("at +%v: %v, want %d %d %d", tc.at, got, tc.one, tc.five, tc.fifteen)
		}
	}
	// A count ten minutes later clears the buckets it passes, not the
	// first one; one 20 minutes later clears them all.
	r.add(t0.Add(10*time.Minute), InjRecips, 30)
	if got := r.perHour(t0.Add(10*time.Minute), i, 900); got != (100+30)*4 {
		t.Errorf("15 minutes with both counts: %d, want %d", got, 130*4)
	}
	// Sixteen minutes after the first count its bucket comes round
	// again: cleared on the way, it holds nothing of 16 minutes ago.
	r.add(t0.Add(16*time.Minute), InjRecips, 0)
	if got := r.perHour(t0.Add(16*time.Minute), i, 900); got != 30*4 {
		t.Errorf("16 minutes after the first count: %d, want %d", got, 30*4)
	}
	r.add(t0.Add(30*time.Minute), InjRecips, 1)
	if got := r.perHour(t0.Add(30*time.Minute), i, 900); got != 4 {
		t.Errorf("after a gap longer than the ring: %d, want 4", got)
	}
	// Asked for a time the ring has passed by more than its length (a
	// clock gone back), it has nothing to say.
	if got := r.perHour(t0.Add(10*time.Minute), i, 900); got != 0 {
		t.Errorf("15 minutes ending 20 minutes before the newest count: %d, want 0", got)
	}
	// A count from a clock gone back further than the ring is dropped.
	r.add(t0, InjRecips, 1000)
	if got := r.perHour(t0.Add(30*time.Minute), i, 900); got != 4 {
		t.Errorf("after a count from the past: %d, want 4", got)
	}
}

func TestLifetime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats.json")
	c, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	emit(c, received(1, 1, "a@x", "b@x")...)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err == nil {
		t.Error("a second Close did not fail")
	}
	c, err = New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	emit(c, received(1, 2, "a@x")...)
	st := c.Status(false)
	if r := st.Counter(InjRecips); r.Reset != 1 || r.Uptime != 1 || r.Lifetime != 3 {
		t.Errorf("inj_recips after a restart: %+v, want 1, 1, 3", r)
	}
	if st.SaveError != "" {
		t.Errorf("save error: %s", st.SaveError)
	}
	// A second restart: what the second run saved is the sum of both.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = newCollector(t, Options{Path: path})
	if r := c.Status(false).Counter(InjRecips); r.Uptime != 0 || r.Lifetime != 3 {
		t.Errorf("inj_recips after a second restart: %+v, want uptime 0, lifetime 3", r)
	}

	for _, bad := range []string{"{", `{"version":2,"counters":{}}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{Path: path}); err == nil {
			t.Errorf("lifetime file %q: no error", bad)
		}
	}
}

// The lifetime counters are saved every SaveInterval, not only at Close:
// a gateway killed loses at most one interval of them.
func TestLifetimeSavedPeriodically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats.json")
	c := newCollector(t, Options{Path: path, SaveInterval: 10 * time.Millisecond})
	emit(c, received(1, 1, "a@x", "b@x", "c@x")...)
	wait.Until(t, "the lifetime file holds 3 recipients", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var f lifetimeFile
		return json.Unmarshal(b, &f) == nil && f.Counters["inj_recips"] == 3 && f.Counters["inj_msgs"] == 1
	})
}

func TestSaveError(t *testing.T) {
	dir := t.TempDir()
	c := newCollector(t, Options{Path: filepath.Join(dir, "gone", "stats.json")})
	if err := c.save(); err == nil {
		t.Fatal("saving into a missing directory did not fail")
	}
	if st := c.Status(false); !strings.Contains(st.SaveError, "stats: save") {
		t.Errorf("status does not tell the save error: %q", st.SaveError)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./stats -update rewrites it):\n%s", name, got)
	}
}

// The text layouts, for fixed values: the ESA's labels in its order.
func TestTextGolden(t *testing.T) {
	utc := time.UTC
	now := time.Date(2026, 12, 7, 11, 30, 0, 0, utc)
	st := Status{AsOf: now, UpSince: now.Add(-(26*time.Hour + 3*time.Minute + 4*time.Second)), System: "Online",
		Oldest: &Oldest{MID: 17, Received: now.Add(-(29*24*time.Hour + 46*time.Minute + 53*time.Second))},
		IDs:    CurrentIDs{MID: 1234567, ICID: 89, DCID: 4321}}
	for k := range numCounters {
		n := uint64(k+1) * 1000
		st.Counters = append(st.Counters, CounterRow{Name: k.String(), Reset: n / 10, Uptime: n, Lifetime: n * 1000})
	}
	free := int64(8388608)
	st.Gauges = Gauges{ConnIn: 3, ConnOut: 2, Active: 7055, Unattempted: 55, Attempted: 7000, Destinations: 3,
		KilobytesUsed: 1234, KilobytesFree: &free}
	var b bytes.Buffer
	WriteStatus(&b, st, utc)
	golden(t, "status.golden", b.Bytes())

	for i, k := range rated {
		n := uint64(i+1) * 600
		st.Rates = append(st.Rates, RateRow{Name: k.String(), Last1: n * 10, Last5: n * 2, Last15: n})
	}
	st.LastReset = now.Add(-time.Hour)
	b.Reset()
	WriteStatus(&b, st, utc)
	golden(t, "status-detail.golden", b.Bytes())

	hosts := []Host{
		{Name: "example.com", Down: true, Counters: map[string]uint64{"delivered_recips": 182000, "soft_bounced_evts": 38548, "hard_bounced_recips": 13987},
			Gauges: outbound.HostGauges{RecipientGauges: outbound.RecipientGauges{Active: 7055}}},
		{Name: "partner.example", Counters: map[string]uint64{"delivered_recips": 12},
			Gauges: outbound.HostGauges{ConnectionsOut: 2}},
	}
	b.Reset()
	WriteTopHosts(&b, hosts, SortActive)
	golden(t, "tophosts.golden", b.Bytes())

	hs := HostStatus{Domain: "sub.example.com", AsOf: now, Host: Host{Name: ".example.com", Down: false, LastActivity: now.Add(-time.Minute),
		Counters: map[string]uint64{"soft_bounced_evts": 4, "completed_recips": 12, "hard_bounced_recips": 2,
			"5xx_hard_bounced_recips": 1, "expired_hard_bounced_recips": 1, "delivered_recips": 10},
		Gauges: outbound.HostGauges{Name: ".example.com", ConnectionsOut: 1, Pending: 1,
			RecipientGauges: outbound.RecipientGauges{Active: 3, Unattempted: 1, Attempted: 2, OldestMID: 17, Oldest: now.Add(-90 * time.Minute)}}},
		Route: outbound.HostRoute{Destination: ".example.com", Route: ".example.com", Hosts: []string{"10.0.0.1:25", "mx.example.net:2525"},
			Addresses: []string{"10.0.0.1:25", "192.0.2.7:2525"}}}
	b.Reset()
	WriteHostStatus(&b, hs, utc)
	golden(t, "hoststatus.golden", b.Bytes())

	prev := st
	cur := st
	cur.Counters = append([]CounterRow(nil), st.Counters...)
	cur.Counters[InjRecips].Uptime += 25
	cur.Counters[CompletedRecips].Uptime += 20
	b.Reset()
	b.WriteString(RateHeader)
	b.WriteString(RateLine(cur, prev, utc))
	golden(t, "rate.golden", b.Bytes())
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {8388608, "8,388,608"}, {123456789012, "123,456,789,012"}} {
		if got := Comma(tc.n); got != tc.want {
			t.Errorf("Comma(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d           time.Duration
		long, short string
	}{
		{0, "0 secs", "0h 0m 0s"},
		{time.Second, "1 sec", "0h 0m 1s"},
		{4*7*24*time.Hour + 46*time.Minute + 53*time.Second, "4 weeks 46 mins 53 secs", "28d 0h 46m 53s"},
		{22*time.Hour + 45*time.Minute + 40*time.Second, "22 hrs 45 mins 40 secs", "22h 45m 40s"},
		{-time.Second, "0 secs", "0h 0m 0s"},
	} {
		if got := Long(tc.d); got != tc.long {
			t.Errorf("Long(%v) = %q, want %q", tc.d, got, tc.long)
		}
		if got := Short(tc.d); got != tc.short {
			t.Errorf("Short(%v) = %q, want %q", tc.d, got, tc.short)
		}
	}
}

// The collector's state of connections and transactions under way ends
// with them: nothing piles up over a long run.
func TestNothingLeft(t *testing.T) {
	c := newCollector(t, Options{})
	for icid := uint64(1); icid <= 100; icid++ {
		mid := 10 * icid
		emit(c, event.NewICID{ICID: icid},
			// A transaction left by RSET, then one queued, then one lost
			// with the connection.
			event.StartMID{MID: mid, ICID: icid}, event.RcptTo{MID: mid, ICID: icid, RID: 0, To: "a@x"},
			event.StartMID{MID: mid + 1, ICID: icid}, event.RcptTo{MID: mid + 1, ICID: icid, RID: 0, To: "a@x"}, event.Queued{MID: mid + 1},
			event.StartMID{MID: mid + 2, ICID: icid}, event.RcptTo{MID: mid + 2, ICID: icid, RID: 0, To: "a@x"},
			event.ICIDClose{ICID: icid},
			event.BounceGenerated{MID: mid + 3, OrigMID: mid + 1}, event.Queued{MID: mid + 3},
			event.NewDCID{DCID: icid}, event.DCIDClose{DCID: icid})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.txns) + len(c.txnOf) + len(c.bounces) + len(c.icids) + len(c.dcids); n != 0 {
		t.Errorf("left: %d transactions, %d connections with one, %d bounces, %d ICIDs, %d DCIDs",
			len(c.txns), len(c.txnOf), len(c.bounces), len(c.icids), len(c.dcids))
	}
	if c.up[InjMsgs] != 100 || c.up[InjRecips] != 100 || c.up[GenBounceRecips] != 100 {
		t.Errorf("counts: %d messages, %d recipients, %d bounce recipients", c.up[InjMsgs], c.up[InjRecips], c.up[GenBounceRecips])
	}
}

// walkCounter is a queue of no messages that counts the walks of the queue
// (HostGauges) made of it.
type walkCounter struct{ walks int }

func (q *walkCounter) QueueGauges() outbound.QueueGauges { return outbound.QueueGauges{} }
func (q *walkCounter) HostGauges(string) []outbound.HostGauges {
	q.walks++
	return nil
}
func (q *walkCounter) Destination(domain string) string { return domain }
func (q *walkCounter) HostRoute(context.Context, string) outbound.HostRoute {
	return outbound.HostRoute{}
}

// AnyDown answers from memory, without a walk of the queue (the alert
// checks ask it every round).
func TestAnyDown(t *testing.T) {
	c := newCollector(t, Options{})
	q := &walkCounter{}
	c.Attach(q)
	if c.AnyDown() {
		t.Error("a destination down before any connection")
	}
	emit(c, event.ConnectionError{DCID: 0, Domain: "example.com", IP: "192.0.2.1", Port: 25, Reason: "connection refused"})
	if !c.AnyDown() {
		t.Error("no destination down after a connection error")
	}
	if q.walks != 0 {
		t.Errorf("%d walks of the queue", q.walks)
	}
}
