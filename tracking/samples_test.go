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
		// cisco-docs-bounce-logs.log: the bounce log's own grammar
		// (MID:RID, no DCID) makes and settles the record of that MID.
		{45346670, tracking.Bounced, "user2@sampledomain.com", tracking.Bounced, "550 There is no such active account.", ""},
		{44451135, tracking.Delayed, "user@sampledomain.com", tracking.Delayed, "451 <user@sampledomain.com> Automated block", ""},
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

// TestSamplesPipelineLines: the work-queue lines of the samples (spam
// quarantine, policy quarantine, splits, generated copies, verdicts) are
// typed and kept in the timeline of each MID they name: a line that links
// two MIDs is in both.
func TestSamplesPipelineLines(t *testing.T) {
	s := openTemp(t)
	files, err := filepath.Glob("../maillog/testdata/*.log")
	if err != nil || len(files) < 7 {
		t.Fatalf("samples: %v %v", files, err)
	}
	importFiles(t, s, 50, files...)
	for _, w := range []struct {
		mid  uint64
		line string
	}{
		{24611424, "ISQ: Tagging MID 24611424 for quarantine"},
		{24611424, "Message done DCID 6565554 MID 24611424 to RID [0] (external quarantine)"},
		{6509657, `MID 6509657 quarantined to "Policy" (DLP violation)`},
		{24611507, "MID 24611507 was split creating MID 24611528 due to"},
		{24611528, "MID 24611507 was split creating MID 24611528 due to"},
		{24611421, "MID 24611495 was generated based on MID 24611421 by bcc filter 'FireEye_BCC'"},
		{24611495, "MID 24611495 was generated based on MID 24611421 by bcc filter 'FireEye_BCC'"},
		{4433, "EUQ: Quarantined MID 4433"},
		{4433, "EUQ: Reinjected MID 4433 as MID 4449"},
		{4449, "EUQ: Reinjected MID 4433 as MID 4449"},
		{24611421, "MID 24611421 interim AV verdict using Sophos CLEAN"},
		{24611421, "MID 24611421 Outbreak Filters: verdict negative"},
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
		if !strings.Contains(sqlrow.EncodeLines(m.Lines), w.line) {
			t.Errorf("MID %d lacks %q in its lines:\n%s", w.mid, w.line, sqlrow.EncodeLines(m.Lines))
		}
	}
}
