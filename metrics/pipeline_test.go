package metrics

import (
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/workqueue"
)

// The pipeline's families from the lines as the gateway's parts make them
// (mailauth's, dkimsign's, the quarantines' words), every label bounded:
// a word, zone, stage or quarantine not known is "other".
func TestPipelineCounts(t *testing.T) {
	m := New(Options{DNSLists: []string{"bl.test", "wl.test"}, Stages: []string{"c_hit", "spam", "rspamd", "clamav"},
		ContentFilters: []string{"c_hit"}, Quarantines: []string{"Policy", "Virus"}})
	in := m.Listener("In")
	after := m.Delivery()
	emit := func(s event.Sink, evs ...event.Event) {
		for _, ev := range evs {
			s.Emit(event.Entry{Level: event.Info, Event: ev})
		}
	}
	profile := &dkimsign.Profile{Name: "example_com"}
	res := mailauth.Results{DKIM: []mailauth.DKIM{
		{Result: mailauth.DKIMPass, Domain: "example.com", Selector: "s1"},
		{Result: "fail", Reason: "body hash did not verify", Domain: "example.com", Selector: "s1"},
		{Malformed: true, Reason: "signature missing required tag"},
	}}
	emit(in,
		mailauth.SPF{Identity: mailauth.IdentityHELO, Result: mailauth.SPFNone}.Event(1),
		mailauth.SPF{Identity: mailauth.IdentityMailFrom, Result: mailauth.SPFPass}.Event(1),
		mailauth.SPF{Identity: mailauth.IdentityMailFrom, Result: mailauth.SPFSoftFail}.Event(2),
		event.SPFVerdict{Identity: "pra", Result: "Maybe"}, // read from another appliance's log: bounded
		mailauth.DMARC{Domain: "example.com", Result: mailauth.DMARCPass}.Event(1),
		mailauth.DMARC{Domain: "example.org", Result: mailauth.DMARCFail}.Event(2),
		event.DMARCVerdict{Text: "Verification failed"},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.Signed, Profile: profile, Addr: "a@example.com"}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.NoProfile, Addr: "a@elsewhere.test"}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.NoProfile, Addr: "b@elsewhere.test"}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.NoAddress}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.AlreadySigned, Profile: profile}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.HeaderTooLong}.Text()},
		event.Signing{Method: "DKIM", Text: dkimsign.Result{Outcome: dkimsign.Failed, Profile: profile}.Text()},
		event.HATMatch{ICID: 1, Action: event.ActionReject, Group: "BL", Rule: "dnslist[BL.test:127.0.0.2-127.0.0.11]"},
		event.HATMatch{ICID: 2, Action: event.ActionAccept, Group: "WL", Rule: "dnslist[wl.test]"},
		event.HATMatch{ICID: 3, Action: event.ActionAccept, Group: "X", Rule: "dnslist[unknown.test]"},
		event.HATMatch{ICID: 4, Action: event.ActionRelay, Group: "RELAY", Rule: "127.0.0.0/8"},
	)
	emit(in, res.DKIMEvents(1)...)
	m.DNSListFailed("bl.test")
	m.DNSListFailed("bl.test")
	emit(after,
		event.Quarantined{MID: 5, Quarantine: "Policy", Reason: "content filter:c_hit"},
		event.Quarantined{MID: 5, Quarantine: "Virus", Reason: "Anti-Virus"},
		event.Quarantined{MID: 6, Quarantine: "Gone", Reason: "x"},
		event.QuarantineReleased{MID: 5, Quarantine: "Policy", Reason: quarantine.WhyManual},
		event.QuarantineReleased{MID: 5, Quarantine: "Virus", Reason: quarantine.WhyQueueFull},
		event.QuarantineReleased{MID: 5}, // from all quarantines: counted in each already
		event.QuarantineDeleted{MID: 7, Quarantine: "Policy", Reason: quarantine.WhyExpired},
		event.QuarantineDeleted{MID: 7},
		event.MessageAborted{MID: 8, Reason: "Dropped by content filter 'c_hit' in the inbound table"},
		// The scanners' verdicts, as the work queue's summary lines name
		// the engines (a failed one by its stage).
		event.ScanSummary{MID: 9, Verdicts: []event.ScanResult{{Kind: "antispam", Engine: "RSPAMD", Verdict: "positive"},
			{Kind: "antivirus", Engine: "ClamAV", Verdict: "positive", Detail: "Eicar-Test-Signature"}}},
		event.ScanSummary{MID: 10, Verdicts: []event.ScanResult{{Kind: "antispam", Engine: "RSPAMD", Verdict: "too-big"},
			{Kind: "antivirus", Engine: "ClamAV", Verdict: "unscannable"}}},
		event.ScanSummary{MID: 11, Verdicts: []event.ScanResult{{Kind: "antispam", Engine: "rspamd", Verdict: "unscanned"},
			{Kind: "antivirus", Engine: "ClamAV", Verdict: "encrypted"}}},
		event.ScanSummary{MID: 12, Verdicts: []event.ScanResult{{Kind: "antispam", Engine: "SPAMASSASSIN", Verdict: "maybe"}}},
	)
	// A rejection at SMTP time: its summary comes with the listener's lines.
	emit(in, event.ScanSummary{MID: 13, Action: "reject", Verdicts: []event.ScanResult{{Kind: "antispam", Engine: "RSPAMD", Verdict: "positive"}}})
	hit := workqueue.Verdict{Action: workqueue.Quarantine, Quarantine: "Policy", By: "content filter:c_hit"}
	for _, r := range []workqueue.StageRun{
		{Stage: "c_hit", Verdict: hit, Took: 2 * time.Millisecond},
		{Stage: "c_hit", Took: time.Millisecond}, // did not match
		{Stage: "c_hit", Verdict: hit, Err: errors.New("no such quarantine"), Took: time.Millisecond},
		{Stage: "spam", Verdict: workqueue.Verdict{Action: workqueue.Drop, By: "antispam"}, Took: time.Second},
		{Stage: "spam", Verdict: workqueue.Verdict{Action: workqueue.Bounce, By: "antispam"}, Took: time.Second},
		{Stage: "spam", Verdict: workqueue.Verdict{AddHeaders: []string{"X-Spam: no"}, By: "antispam"}, Took: time.Second},
		{Stage: "stray", Took: time.Millisecond},
	} {
		m.StageRan(r)
	}

	fams := gather(t, m)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mailgate_spf_results_total", []string{"identity", "helo", "result", "none"}, 1},
		{"mailgate_spf_results_total", []string{"identity", "mailfrom", "result", "pass"}, 1},
		{"mailgate_spf_results_total", []string{"identity", "mailfrom", "result", "softfail"}, 1},
		{"mailgate_spf_results_total", []string{"identity", "other", "result", "other"}, 1},
		{"mailgate_dkim_results_total", []string{"result", "pass"}, 1},
		{"mailgate_dkim_results_total", []string{"result", "permfail"}, 1},
		{"mailgate_dkim_results_total", []string{"result", "malformed"}, 1},
		{"mailgate_dmarc_results_total", []string{"result", "pass"}, 1},
		{"mailgate_dmarc_results_total", []string{"result", "fail"}, 2},
		{"mailgate_dkim_signing_total", []string{"outcome", "signed"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "no profile matches"}, 2},
		{"mailgate_dkim_signing_total", []string{"outcome", "no identifiable sending address"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "already signed"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "header too long"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "signing failed"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "other"}, -1},
		{"mailgate_dnslist_matches_total", []string{"zone", "bl.test"}, 1},
		{"mailgate_dnslist_matches_total", []string{"zone", "wl.test"}, 1},
		{"mailgate_dnslist_matches_total", []string{"zone", "other"}, 1},
		{"mailgate_dnslist_lookup_failures_total", []string{"zone", "bl.test"}, 2},
		{"mailgate_dnslist_lookup_failures_total", []string{"zone", "wl.test"}, 0}, // configured: there at zero
		{"mailgate_hat_decisions_total", []string{"action", "reject"}, 1},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "Policy"}, 1},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "Virus"}, 1},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "other"}, 1},
		{"mailgate_quarantine_released_messages_total", []string{"quarantine", "Policy", "reason", "manual"}, 1},
		{"mailgate_quarantine_released_messages_total", []string{"quarantine", "Virus", "reason", "queue full"}, 1},
		{"mailgate_quarantine_deleted_messages_total", []string{"quarantine", "Policy", "reason", "expired"}, 1},
		// "from all quarantines" follows the lines of each: not counted again.
		{"mailgate_quarantine_released_messages_total", []string{"quarantine", "other"}, -1},
		{"mailgate_quarantine_deleted_messages_total", []string{"quarantine", "other"}, -1},
		{"mailgate_dropped_messages_total", []string{"reason", "content filter 'c_hit'"}, 1}, // the work queue's drops come through Delivery
		{"mailgate_stage_runs_total", []string{"stage", "c_hit", "outcome", "quarantine"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "c_hit", "outcome", "deliver"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "c_hit", "outcome", "error"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "spam", "outcome", "drop"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "spam", "outcome", "bounce"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "spam", "outcome", "deliver"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "other", "outcome", "deliver"}, 1},
		// The match, not the miss nor the failed run; an engine is no filter.
		{"mailgate_content_filter_matches_total", []string{"filter", "c_hit"}, 1},
		{"mailgate_content_filter_matches_total", []string{"filter", "spam"}, -1},
		{"mailgate_scan_verdicts_total", []string{"engine", "rspamd", "verdict", "positive"}, 2},
		{"mailgate_scan_verdicts_total", []string{"engine", "rspamd", "verdict", "too-big"}, 1},
		{"mailgate_scan_verdicts_total", []string{"engine", "rspamd", "verdict", "unscanned"}, 1},
		{"mailgate_scan_verdicts_total", []string{"engine", "clamav", "verdict", "positive"}, 1},
		{"mailgate_scan_verdicts_total", []string{"engine", "clamav", "verdict", "unscannable"}, 1},
		{"mailgate_scan_verdicts_total", []string{"engine", "clamav", "verdict", "encrypted"}, 1},
		// Not configured, and a word not known: bounded.
		{"mailgate_scan_verdicts_total", []string{"engine", "other", "verdict", "other"}, 1},
	} {
		if got := sample(fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, tt := range []struct {
		stage string
		count uint64
		sum   float64
	}{{"c_hit", 3, 0.004}, {"spam", 3, 3}, {"other", 1, 0.001}} {
		h := histogram(fams, "mailgate_stage_duration_seconds", "stage", tt.stage)
		if h.GetSampleCount() != tt.count || h.GetSampleSum() < tt.sum-1e-9 || h.GetSampleSum() > tt.sum+1e-9 {
			t.Errorf("stage %s: %d runs in %vs, want %d in %vs", tt.stage, h.GetSampleCount(), h.GetSampleSum(), tt.count, tt.sum)
		}
	}
}

// histogram is the histogram of the series of name with the labels.
func histogram(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && have[labels[i]] == labels[i+1]
		}
		if ok {
			return m.GetHistogram()
		}
	}
	return nil
}

// The cost the metrics add to each run of a stage (StageRan), and to a
// listener's sink for the lines of the checks and signing of one message.
func BenchmarkStageRan(b *testing.B) {
	m := New(Options{Stages: []string{"c_hit"}, ContentFilters: []string{"c_hit"}})
	r := workqueue.StageRun{Stage: "c_hit", Verdict: workqueue.Verdict{By: "content filter 'c_hit'"}, Took: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.StageRan(r)
	}
}

func BenchmarkAuthLines(b *testing.B) {
	s := New(Options{}).Listener("In")
	evs := []event.Event{
		mailauth.SPF{Identity: mailauth.IdentityHELO, Result: mailauth.SPFNone}.Event(1),
		mailauth.SPF{Identity: mailauth.IdentityMailFrom, Result: mailauth.SPFPass}.Event(1),
		event.DKIMVerdict{MID: 1, Result: "pass"},
		mailauth.DMARC{Domain: "example.com", Result: mailauth.DMARCPass}.Event(1),
		event.Signing{MID: 1, Method: "DKIM", Text: "cannot sign - no profile matches a@example.org"},
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, ev := range evs {
			s.Emit(event.Entry{Level: event.Info, Event: ev})
		}
	}
}
