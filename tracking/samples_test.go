package tracking_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// TestSamples imports the real ESA log lines (maillog/testdata, with their
// provenance) and checks the messages against what a reader of those lines
// concludes.
func TestSamples(t *testing.T) {
	s := openTemp(t)
	files, err := filepath.Glob("../maillog/testdata/*.log")
	if err != nil || len(files) < 7 {
		t.Fatalf("samples: %v %v", files, err)
	}
	tr := importFiles(t, s, 50, files...)
	if st := tr.Stats(); st.Entries < 1200 || st.Applied == 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, w := range []struct {
		mid      uint64
		status   tracking.Status
		rcpt     string // the first recipient's address, status and (part of) reply
		rcptStat tracking.Status
		reply    string
		other    string // more to find in the record
	}{
		// splunk-docs-bounce-delayed.log: both Bounced grammars' new form.
		{19338947, tracking.Bounced, "zecora@buttercupgames.com", tracking.Bounced, "Delivery expired (message too old)", ""},
		{19410908, tracking.Delayed, "mcintosh@buttercupgames.com", tracking.Delayed, "421 4.3.2 try again later", ""},
		{19408690, tracking.Bounced, "lyra@buttercupgames.com", tracking.Bounced, "NXDomain", ""},
		// cribl: delivered with its response; dropped by CASE.
		{24611465, tracking.Delivered, "", tracking.Delivered, "2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ", ""},
		{24611530, tracking.Dropped, "zuser27@mycompany.com", tracking.Dropped, "Dropped by CASE", ""},
		// community notes: an AMP drop.
		{1653, tracking.Dropped, "any.one@mylocal_domain.com", tracking.Dropped, "Dropped by amp", ""},
		// msqa: SDR lines (unknown to the parser) kept in the timeline;
		// a message on a connection that lost TLS and the connection.
		{14, tracking.Delivered, "******@domainsample2.com", tracking.Delivered, "", "SDR: Tracker Header"},
	} {
		ms, err := s.Search(context.Background(), tracking.Query{MID: w.mid})
		if err != nil || len(ms) != 1 {
			t.Errorf("MID %d: %d found, %v", w.mid, len(ms), err)
			continue
		}
		m, _, err := s.Find(context.Background(), ms[0].Host, w.mid)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != w.status {
			t.Errorf("MID %d: status %s, want %s", w.mid, m.Status, w.status)
		}
		if len(m.Recipients) == 0 {
			t.Errorf("MID %d: no recipients", w.mid)
			continue
		}
		r := m.Recipients[0]
		if w.rcpt != "" && r.Address != w.rcpt || r.Status != w.rcptStat || !strings.Contains(r.Response, w.reply) {
			t.Errorf("MID %d: recipient %+v, want %s %s %q", w.mid, r, w.rcpt, w.rcptStat, w.reply)
		}
		if w.other != "" && !strings.Contains(sqlrow.EncodeLines(m.Lines), w.other) {
			t.Errorf("MID %d lacks %q in its lines", w.mid, w.other)
		}
	}
}
