package tracking_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// want is what a reader of the log concludes about one message.
type want struct {
	mid         uint64
	status      tracking.Status
	abort       tracking.Abort
	abortState  string
	rcpts       string // "addr=status ..." in RID order, rejected ones last
	sender      string
	subject     string
	remoteIP    string
	icid        uint64
	dcids       []uint64
	bounceOf    uint64
	abortReason string
}

var foldCases = []struct {
	file string
	want []want
}{
	{"delivered.log", []want{{mid: 6, status: tracking.Delivered, rcpts: "bob@example.net=delivered carol@example.net=delivered",
		sender: "alice@example.com", subject: "Quarterly report", remoteIP: "127.0.0.1", icid: 5, dcids: []uint64{8}}}},
	{"rst.log", []want{{mid: 11, status: tracking.Aborted, abort: tracking.AbortPeerReset, abortState: "data", rcpts: "bob@example.com=aborted",
		sender: "news@partner.example", subject: "Newsletter", remoteIP: "192.0.2.7", icid: 10, abortReason: "Receiving aborted"}}},
	{"quit.log", []want{{mid: 21, status: tracking.Aborted, abort: tracking.AbortSenderQuit, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.8", icid: 20, abortReason: "Receiving aborted by sender"}}},
	// mailgate's own "ended" line, after the abort, says the state.
	{"quit-data.log", []want{{mid: 91, status: tracking.Aborted, abort: tracking.AbortSenderQuit, abortState: "data", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.9", icid: 90, abortReason: "Receiving aborted by sender"}}},
	// Without its "lost" line the ESA's lines read as unknown; mailgate's
	// own line says the client reset the connection.
	{"ended-cause.log", []want{{mid: 101, status: tracking.Aborted, abort: tracking.AbortPeerReset, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.10", icid: 100, abortReason: "Receiving aborted"}}},
	// A lone "Receiving aborted" proves no timeout: the ESA writes it for a
	// lost connection, a timeout and a limit alike.
	{"timeout-esa.log", []want{{mid: 31, status: tracking.Aborted, abort: tracking.AbortUnknown, abortState: "rcpt", rcpts: "user@example.com=aborted",
		sender: "sender@example.org", remoteIP: "198.51.100.9", icid: 30, abortReason: "Receiving aborted"}}},
	{"lost-esa.log", []want{{mid: 41, status: tracking.Aborted, abort: tracking.AbortLost, abortState: "data", rcpts: "user@example.com=aborted",
		sender: "sender@example.org", subject: "Invoice", remoteIP: "198.51.100.10", icid: 40, abortReason: "Receiving aborted"}}},
	{"bounce.log", []want{
		{mid: 51, status: tracking.Bounced, rcpts: "nobody@example.net=bounced bob@example.net=delivered", sender: "alice@example.com",
			remoteIP: "127.0.0.1", icid: 50, dcids: []uint64{52}},
		{mid: 53, status: tracking.Delivered, rcpts: "=delivered", dcids: []uint64{52}, bounceOf: 51},
	}},
	{"delayed.log", []want{{mid: 61, status: tracking.Delayed, rcpts: "bob@slow.example=delayed", sender: "alice@example.com", icid: 60, dcids: []uint64{62}}}},
	{"rejected.log", []want{
		{mid: 71, status: tracking.Rejected, abortState: "rcpt", rcpts: "postmaster@elsewhere.example=rejected", sender: "spam@bad.example",
			remoteIP: "203.0.113.5", icid: 70, abortReason: "Receiving aborted by sender"},
		{mid: 72, status: tracking.Rejected, abortState: "data", rcpts: "bob@example.com=rejected", sender: "big@example.org", icid: 73,
			abortReason: "Message size exceeds limit"},
	}},
	// Each cause of mailgate's "ended" line keeps its kind (bad commands
	// and shutdown read as a timeout before).
	{"bad-commands.log", []want{{mid: 201, status: tracking.Aborted, abort: tracking.AbortBadCommands, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.20", icid: 200, abortReason: "Receiving aborted"}}},
	{"io-error.log", []want{{mid: 271, status: tracking.Aborted, abort: tracking.AbortIOError, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.27", icid: 270, abortReason: "Receiving aborted"}}},
	{"limits.log", []want{
		{mid: 281, status: tracking.Aborted, abort: tracking.AbortIdle, abortState: "rcpt", rcpts: "bob@example.com=aborted",
			sender: "app@client.example", remoteIP: "192.0.2.28", icid: 280, abortReason: "Receiving aborted"},
		{mid: 286, status: tracking.Aborted, abort: tracking.AbortPipelining, abortState: "rcpt", rcpts: "bob@example.com=aborted",
			sender: "app@client.example", remoteIP: "192.0.2.29", icid: 285, abortReason: "Receiving aborted"},
	}},
	{"shutdown.log", []want{{mid: 211, status: tracking.Aborted, abort: tracking.AbortShutdown, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.21", icid: 210, abortReason: "Receiving aborted"}}},
	{"time-limit.log", []want{{mid: 216, status: tracking.Aborted, abort: tracking.AbortTimeLimit, abortState: "data", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.25", icid: 215, abortReason: "Receiving aborted"}}},
	// swaks --to bob: the only recipient refused for its syntax (501)
	// makes the message rejected, not aborted by the sender.
	{"invalid-rcpt.log", []want{{mid: 221, status: tracking.Rejected, abortState: "mail", rcpts: "bob=rejected",
		sender: "alice@example.org", remoteIP: "127.0.0.1", icid: 220, abortReason: "Receiving aborted by sender"}}},
	// MAIL, RCPT, RSET, QUIT: a reset in the RCPT state, not a QUIT in the
	// HELO state.
	{"rset.log", []want{{mid: 231, status: tracking.Aborted, abort: tracking.AbortSenderReset, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.23", icid: 230, abortReason: "Receiving aborted by sender"}}},
	// An ESA's "by sender" alone: QUIT, RSET or EHLO; a message after it
	// on the same connection proves a reset.
	{"rset-esa.log", []want{
		{mid: 241, status: tracking.Aborted, abort: tracking.AbortSenderReset, abortState: "rcpt", rcpts: "user@example.com=aborted",
			sender: "probe@example.org", remoteIP: "198.51.100.24", icid: 240, abortReason: "Receiving aborted by sender"},
		{mid: 242, status: tracking.Aborted, abort: tracking.AbortSender, abortState: "rcpt", rcpts: "other@example.com=aborted",
			sender: "probe@example.org", remoteIP: "198.51.100.24", icid: 240, abortReason: "Receiving aborted by sender"},
	}},
	// The ESA's timeout line after the abort proves the timeout.
	{"timeout-disconnected-esa.log", []want{{mid: 251, status: tracking.Aborted, abort: tracking.AbortTimeout, abortState: "rcpt", rcpts: "user@example.com=aborted",
		sender: "sender@example.org", remoteIP: "198.51.100.25", icid: 250, abortReason: "Receiving aborted"}}},
	// A content filter's bounce is a bounce; "Injection aborted" an abort
	// of its own; "ready" with the log ending in the work queue, accepted.
	{"filter-bounce-esa.log", []want{
		{mid: 261, status: tracking.Bounced, rcpts: "user25@mycompany.example=bounced", sender: "user15@fjvco.example",
			remoteIP: "198.51.100.26", icid: 260, abortReason: "Bounced by content filter 'block_exe' in the inbound table"},
		{mid: 262, status: tracking.Aborted, abort: tracking.AbortInjection, abortState: "rcpt", rcpts: "user26@mycompany.example=aborted",
			sender: "user15@fjvco.example", remoteIP: "198.51.100.26", icid: 260, abortReason: "Injection aborted"},
		{mid: 263, status: tracking.Queued, rcpts: "user27@mycompany.example=queued", sender: "user15@fjvco.example",
			remoteIP: "198.51.100.26", icid: 260},
	}},
	// An ESA's quarantines: held, released (goes on), deleted (dropped);
	// the spam quarantine, on and off the box; a filter's old disposal.
	{"quarantine-esa.log", []want{
		{mid: 301, status: tracking.Quarantined, rcpts: "u1@mycompany.example=quarantined", sender: "a@sender.example", icid: 300,
			abortReason: `MID 301 quarantined to "Policy" (DLP violation)`},
		{mid: 302, status: tracking.Delivered, rcpts: "u2@mycompany.example=delivered", sender: "a@sender.example", icid: 300, dcids: []uint64{390}},
		{mid: 303, status: tracking.Dropped, rcpts: "u3@mycompany.example=dropped", sender: "a@sender.example", icid: 300,
			abortReason: `MID 303 deleted from quarantine "Policy" (expired)`},
		{mid: 304, status: tracking.Quarantined, rcpts: "u4@mycompany.example=quarantined", sender: "a@sender.example", icid: 300, dcids: []uint64{391},
			abortReason: "delivered to the external spam quarantine"},
		{mid: 305, status: tracking.Queued, rcpts: "u5@mycompany.example=queued", sender: "a@sender.example", icid: 300},
		{mid: 306, status: tracking.Delivered, rcpts: "u5@mycompany.example=delivered", sender: "a@sender.example", dcids: []uint64{392}},
		// Split: the recipient that went on as MID 308 ends there; the
		// child has its parent's envelope and connection.
		{mid: 307, status: tracking.Delivered, rcpts: "u7@mycompany.example=delivered u8@mycompany.example=split", sender: "a@sender.example", icid: 300, dcids: []uint64{393}},
		{mid: 308, status: tracking.Queued, rcpts: "u8@mycompany.example=queued", sender: "a@sender.example", icid: 300},
		{mid: 311, status: tracking.Dropped, rcpts: "u11@mycompany.example=dropped", sender: "a@sender.example", icid: 300,
			abortReason: "MID 311 was dropped by content filter 'dontsend' in the inbound table"},
	}},
	// Splits (split_test.go has more): mailgate's own lines, the child
	// naming its parent's RIDs; the same before the child's From and To
	// lines were logged (its delivery lines name RIDs only); an ESA's,
	// the child's RIDs numbered anew; the same interleaved as a syslog
	// server may write them (the child's lines before the split line, the
	// parent's subject after it).
	{"split-mailgate.log", splitMailgate},
	{"split-mailgate-rids.log", splitMailgate[:2]},
	{"split-esa.log", splitESA},
	{"split-interleaved-esa.log", splitESA},
	// A log that stops short: the first child's lines are not in it (the
	// SL/BL line names its recipient), the second's end at its To line
	// (held in the work queue).
	{"split-alone.log", []want{
		{mid: 801, status: tracking.Delivered, rcpts: "user1@mycompany.com=delivered user2@mycompany.com=split user3@mycompany.com=split",
			sender: "user15@fjvco.com", icid: 800, dcids: []uint64{810}},
		{mid: 802, status: tracking.Queued, sender: "user15@fjvco.com", icid: 800},
		{mid: 803, status: tracking.Queued, rcpts: "user3@mycompany.com=queued", sender: "user15@fjvco.com", icid: 800},
	}},
	// mailgate's own quarantine lines: a message in two quarantines
	// stays quarantined until it left both; deleted from one of them it
	// is dropped whatever the other did (the ESA's rule).
	{"quarantine-mailgate.log", []want{
		{mid: 901, status: tracking.Quarantined, rcpts: "b@example.net=quarantined", sender: "a@example.org", icid: 900,
			abortReason: `MID 901 quarantined to "Virus" (content filter:qhold2)`},
		{mid: 902, status: tracking.Delivered, rcpts: "c@example.net=delivered", sender: "a@example.org", icid: 900, dcids: []uint64{990}},
		{mid: 903, status: tracking.Dropped, rcpts: "d@example.net=dropped", sender: "a@example.org", icid: 900,
			abortReason: `MID 903 deleted from all quarantines`},
		{mid: 904, status: tracking.Dropped, rcpts: "e@example.net=dropped", sender: "a@example.org", icid: 900,
			abortReason: `MID 904 deleted from quarantine "Policy" (manual)`},
		{mid: 905, status: tracking.Dropped, rcpts: "f@example.net=dropped", sender: "a@example.org", icid: 900,
			abortReason: "Dropped by content filter 'dropfile' in the outbound table"},
	}},
	// DMARC's quarantine action (mailgate's lines): held in Policy,
	// tagged (no work queue), held and released.
	{"dmarc-quarantine.log", []want{
		{mid: 941, status: tracking.Quarantined, rcpts: "joe@mycompany.example=quarantined", sender: "bob@other.example", subject: "invoice",
			remoteIP: "192.0.2.40", icid: 940, abortReason: `MID 941 quarantined to "Policy" (DMARC)`},
		{mid: 942, status: tracking.Queued, rcpts: "joe@mycompany.example=queued", sender: "bob@other.example", remoteIP: "192.0.2.40", icid: 940},
		{mid: 943, status: tracking.Delivered, rcpts: "ann@mycompany.example=delivered", sender: "bob@other.example", remoteIP: "192.0.2.40", icid: 940, dcids: []uint64{945}},
	}},
	// The sender-authentication refusals and verdicts (mailgate's lines):
	// SPF fail refused and temperror deferred at MAIL FROM, DMARC refused
	// at the end of DATA, a DMARC fail accepted (the quarantine tag), a
	// client a DNS list placed.
	{"auth.log", []want{
		{mid: 401, status: tracking.Rejected, abortState: "mail", sender: "alice@example.org", remoteIP: "192.0.2.7", icid: 400,
			abortReason: "SPF unauthorized mail is prohibited."},
		{mid: 411, status: tracking.Rejected, abortState: "mail", sender: "bob@slow.example", remoteIP: "192.0.2.8", icid: 410,
			abortReason: "Temporary error occurred during SPF verification."},
		{mid: 421, status: tracking.Rejected, abortState: "data", rcpts: "joe@mycompany.example=rejected", sender: "carol@other.example",
			remoteIP: "192.0.2.9", icid: 420, abortReason: "DMARC unauthenticated mail is prohibited."},
		{mid: 431, status: tracking.Queued, rcpts: "joe@mycompany.example=queued", sender: "dave@other.example", remoteIP: "192.0.2.10", icid: 430},
		{mid: 451, status: tracking.Queued, rcpts: "joe@mycompany.example=queued", sender: "erin@example.net", remoteIP: "192.0.2.12", icid: 450},
	}},
	{"dropped.log", []want{{mid: 81, status: tracking.Dropped, rcpts: "daniel@mycompany.example=dropped", sender: "207-TJZ@potomac.example",
		icid: 80, abortReason: "Dropped by CASE"}}},
}

var splitMailgate = []want{
	{mid: 601, status: tracking.Delivered, rcpts: "ceo@example.com=delivered x@example.net=split cfo@example.com=delivered",
		sender: "alice@example.com", subject: "Board pack", remoteIP: "127.0.0.1", icid: 600, dcids: []uint64{603}},
	{mid: 602, status: tracking.Delivered, rcpts: "x@example.net=delivered",
		sender: "alice@example.com", subject: "Board pack", remoteIP: "127.0.0.1", icid: 600, dcids: []uint64{603}},
	{mid: 611, status: tracking.Queued, rcpts: "ceo@example.com=queued x@example.net=split", sender: "bob@example.com", icid: 610},
	{mid: 612, status: tracking.Dropped, rcpts: "x@example.net=dropped", sender: "bob@example.com", icid: 610, abortReason: "Dropped by antispam"},
}

const esaSubject = "RE: Problem Report# PR59725  107 -N940789 Item 1  ka1446"

var splitESA = []want{
	{mid: 24711507, status: tracking.Split, rcpts: "user25@mycompany.com=split user26@mycompany.com=split user37@mycompany.com=split",
		sender: "user15@fjvco.com", subject: esaSubject, remoteIP: "69.67.18.139", icid: 60240302},
	{mid: 24711528, status: tracking.Delivered, rcpts: "user37@mycompany.com=delivered",
		sender: "user15@fjvco.com", subject: esaSubject, remoteIP: "69.67.18.139", icid: 60240302, dcids: []uint64{6565600}},
	{mid: 24711529, status: tracking.Bounced, rcpts: "user25@mycompany.com=delivered user26@mycompany.com=bounced",
		sender: "user15@fjvco.com", subject: esaSubject, remoteIP: "69.67.18.139", icid: 60240302, dcids: []uint64{6565601}},
}

func openTemp(t testing.TB) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func importFiles(t testing.TB, s tracking.Store, chunk int, files ...string) *tracking.Tracker {
	t.Helper()
	tr := tracking.NewTracker(s, tracking.Options{ChunkSize: chunk})
	im := &tracking.Importer{Tracker: tr, Host: "gw1", Location: time.UTC}
	for _, f := range files {
		if err := im.ImportFile(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func rcptString(m *tracking.Message) string {
	var parts []string
	for _, r := range m.Recipients {
		parts = append(parts, r.Address+"="+string(r.Status))
	}
	return strings.Join(parts, " ")
}

// TestFold imports each log with chunks of 1, 3 and 1000 lines (a
// message's lines then fall in different rounds, records are let go and
// loaded again) and checks what the store says about each message.
func TestFold(t *testing.T) {
	for _, tc := range foldCases {
		for _, chunk := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tc.file, chunk), func(t *testing.T) {
				s := openTemp(t)
				importFiles(t, s, chunk, filepath.Join("testdata/fold", tc.file))
				for _, w := range tc.want {
					m, _, err := s.Find(context.Background(), "gw1", w.mid)
					if err != nil {
						t.Fatal(err)
					}
					got := want{mid: m.MID, status: m.Status, abort: m.Abort, abortState: m.AbortState, rcpts: rcptString(m),
						sender: m.Sender, subject: m.Subject, remoteIP: m.RemoteIP, icid: m.ICID, dcids: m.DCIDs,
						bounceOf: m.BounceOf, abortReason: m.AbortReason}
					if !reflect.DeepEqual(got, w) {
						t.Errorf("MID %d:\n got %+v\nwant %+v", w.mid, got, w)
					}
				}
			})
		}
	}
}

// TestTimelineOrder: the merged timeline of a message is the log's own
// order of the lines about it and its connections.
func TestTimelineOrder(t *testing.T) {
	for _, file := range []string{"delivered.log", "rst.log", "lost-esa.log", "authenticated.log"} {
		t.Run(file, func(t *testing.T) {
			s := openTemp(t)
			path := filepath.Join("testdata/fold", file)
			importFiles(t, s, 2, path)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var wantLines []string
			for l := range strings.Lines(string(raw)) {
				_, msg, _ := strings.Cut(strings.TrimSpace(l), "Info: ")
				wantLines = append(wantLines, msg)
			}
			ms, err := s.Search(context.Background(), tracking.Query{})
			if err != nil {
				t.Fatal(err)
			}
			m, conns, err := s.Find(context.Background(), "gw1", ms[0].MID)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range explain.Timeline(m, conns) {
				got = append(got, e.Text)
			}
			if !slices.Equal(got, wantLines) {
				t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
			}
		})
	}
}

// TestImportTwice: importing the same logs again, or a log in two halves,
// gives the same records.
func TestImportTwice(t *testing.T) {
	var files []string
	for _, tc := range foldCases {
		files = append(files, filepath.Join("testdata/fold", tc.file))
	}
	once := openTemp(t)
	importFiles(t, once, 1000, files...)
	twice := openTemp(t)
	importFiles(t, twice, 7, files...)
	tr := importFiles(t, twice, 1000, files...)
	if st := tr.Stats(); st.Applied != 0 || st.Messages != 0 || st.Conns != 0 {
		t.Errorf("second import changed the store: %+v", st)
	}
	a := dump(t, once)
	b := dump(t, twice)
	if a != b {
		t.Errorf("stores differ after a second import:\n%s\n---\n%s", a, b)
	}
}

// dump renders every stored message with its timeline.
func dump(t *testing.T, s tracking.Store) string {
	t.Helper()
	ctx := context.Background()
	ms, err := s.Search(ctx, tracking.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, q := range ms {
		m, conns, err := s.Find(ctx, q.Host, q.MID)
		if err != nil {
			t.Fatal(err)
		}
		c := *m
		c.DMARC = nil
		fmt.Fprintf(&b, "%+v\n", c)
		if m.DMARC != nil { // its pointer differs
			fmt.Fprintf(&b, "  DMARC %+v\n", *m.DMARC)
		}
		for _, e := range explain.Timeline(m, conns) {
			fmt.Fprintf(&b, "  %s %s %s\n", e.Time.Format(time.RFC3339Nano), e.Source, e.Text)
		}
	}
	return b.String()
}

// TestFoldAuth: the authentication lines become the record's results, in
// its JSON under spf, dkim, dmarc and dnslist; a connection a DNS list
// refused keeps the list's zone.
func TestFoldAuth(t *testing.T) {
	ctx := context.Background()
	s := importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC}, "testdata/fold/auth.log")
	for _, tt := range []struct {
		mid  uint64
		json string // the authentication keys of the message's JSON
	}{
		{401, `"spf":[{"identity":"helo","address":"postmaster@mx.client.example","result":"none"},{"identity":"mailfrom","address":"alice@example.org","result":"fail"}],"dkim":[],"dmarc":null,"dnslist":""`},
		{411, `"spf":[{"identity":"helo","address":"postmaster@mx.slow.example","result":"temperror"},{"identity":"mailfrom","address":"bob@slow.example","result":"temperror"}],"dkim":[],"dmarc":null,"dnslist":""`},
		{421, `"spf":[{"identity":"helo","address":"postmaster@mx.other.example","result":"pass"},{"identity":"mailfrom","address":"carol@other.example","result":"pass"}],` +
			`"dkim":[{"result":"permfail","domain":"bank.example","selector":"s1","identity":"@bank.example","reason":"body hash did not verify"}],` +
			`"dmarc":{"domain":"bank.example","result":"fail","spf_aligned":false,"dkim_aligned":false},"dnslist":""`},
		{431, `"spf":[{"identity":"mailfrom","address":"dave@other.example","result":"pass"}],"dkim":[],"dmarc":{"domain":"news.shop.example","result":"fail","spf_aligned":false,"dkim_aligned":false},"dnslist":""`},
		{451, `"spf":[{"identity":"mailfrom","address":"erin@example.net","result":"softfail"}],` +
			`"dkim":[{"result":"pass","domain":"example.net","selector":"s1","identity":"@example.net","reason":""}],` +
			`"dmarc":{"domain":"example.net","result":"pass","spf_aligned":false,"dkim_aligned":true},"dnslist":"zen.spamhaus.org"`},
	} {
		m := findMessage(t, s, "gw1", tt.mid)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.json) {
			t.Errorf("MID %d: JSON\n%s\nlacks\n%s", tt.mid, b, tt.json)
		}
	}
	b, err := s.Load(ctx, tracking.Keys{Conns: []tracking.ConnKey{{Host: "gw1", Kind: event.InboundConn, ID: 440}, {Host: "gw1", Kind: event.InboundConn, ID: 400}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.Conns {
		if want := map[uint64]string{440: "zen.spamhaus.org", 400: ""}[c.ID]; c.DNSList != want || c.SenderGroup != map[uint64]string{440: "BLOCKED", 400: "None"}[c.ID] {
			t.Errorf("ICID %d: dnslist %q, group %q; want %q", c.ID, c.DNSList, c.SenderGroup, want)
		}
	}
	if len(b.Conns) != 2 {
		t.Errorf("%d connections", len(b.Conns))
	}
	for q, want := range map[string][]uint64{
		"spf=fail": {401}, "spf=Fail": {401}, "spf=temperror": {411}, "spf=pass": {431, 421}, "dkim=permfail": {421},
		"dmarc=fail": {431, 421}, "dmarc=pass": {451}, "dnslist=zen.spamhaus.org": {451},
		"dnslist=dnslist[ZEN.spamhaus.org:127.0.0.10-127.0.0.11]": {451}, "spf=softfail&dmarc=pass": {451}, "dkim=tempfail": nil,
	} {
		v, _ := url.ParseQuery(q)
		pq, err := tracking.ParseQuery(v, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		ms, err := s.Search(ctx, pq)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, m := range ms {
			got = append(got, m.MID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}

// TestFoldAuthAgain: an identity checked again for the same message (a
// cached verdict logged again) keeps one entry, the last result.
func TestFoldAuthAgain(t *testing.T) {
	log := "Mon Nov 23 15:00:01 2026 Info: Start MID 2 ICID 1\n" +
		"Mon Nov 23 15:00:01 2026 Info: MID 2 SPF: helo identity postmaster@mx.example.org None\n" +
		"Mon Nov 23 15:00:01 2026 Info: MID 2 SPF: mailfrom identity a@example.org TempError (v=spf1)\n" +
		"Mon Nov 23 15:00:02 2026 Info: MID 2 SPF: mailfrom identity a@example.org Pass (v=spf1)\n"
	path := filepath.Join(t.TempDir(), "again.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	m := findMessage(t, importWith(t, &tracking.Importer{Host: "gw1", Location: time.UTC}, path), "gw1", 2)
	want := []tracking.SPFCheck{{Identity: "helo", Address: "postmaster@mx.example.org", Result: "none"},
		{Identity: "mailfrom", Address: "a@example.org", Result: "pass"}}
	if !slices.Equal(m.SPF, want) || m.MailFromSPF() != "pass" {
		t.Errorf("spf %+v, want %+v", m.SPF, want)
	}
}
