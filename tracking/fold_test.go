package tracking_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
	{"rst.log", []want{{mid: 11, status: tracking.Aborted, abort: tracking.AbortLost, abortState: "data", rcpts: "bob@example.com=aborted",
		sender: "news@partner.example", subject: "Newsletter", remoteIP: "192.0.2.7", icid: 10, abortReason: "Receiving aborted"}}},
	{"quit.log", []want{{mid: 21, status: tracking.Aborted, abort: tracking.AbortSenderQuit, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.8", icid: 20, abortReason: "Receiving aborted by sender"}}},
	// mailgate's own "ended" line, after the abort, says the state.
	{"quit-data.log", []want{{mid: 91, status: tracking.Aborted, abort: tracking.AbortSenderQuit, abortState: "data", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.9", icid: 90, abortReason: "Receiving aborted by sender"}}},
	// Without its "lost" line the ESA's lines read as a timeout; mailgate's
	// own line says the client reset the connection.
	{"ended-cause.log", []want{{mid: 101, status: tracking.Aborted, abort: tracking.AbortLost, abortState: "rcpt", rcpts: "bob@example.com=aborted",
		sender: "app@client.example", remoteIP: "192.0.2.10", icid: 100, abortReason: "Receiving aborted"}}},
	{"timeout-esa.log", []want{{mid: 31, status: tracking.Aborted, abort: tracking.AbortTimeout, abortState: "rcpt", rcpts: "user@example.com=aborted",
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
	{"dropped.log", []want{{mid: 81, status: tracking.Dropped, rcpts: "daniel@mycompany.example=dropped", sender: "207-TJZ@potomac.example",
		icid: 80, abortReason: "Dropped by CASE"}}},
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
		fmt.Fprintf(&b, "%+v\n", *m)
		for _, e := range explain.Timeline(m, conns) {
			fmt.Fprintf(&b, "  %s %s %s\n", e.Time.Format(time.RFC3339Nano), e.Source, e.Text)
		}
	}
	return b.String()
}
