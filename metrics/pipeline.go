package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/workqueue"
)

// The metrics of what happens to a message between its receipt and its
// delivery: the sender's authentication, the DNS lists, DKIM signing (from
// the listeners' lines), the work queue's stages (from its StageRan hook)
// and the quarantines (from their lines). Every label value is bounded:
// results and reasons are mapped onto fixed sets ("other" for a word not
// known here), zones, stages, filters and quarantines are the configured
// ones.

// Bounded label values.
var (
	spfIdentities = set("helo", "mailfrom")
	// spfResults maps the SPF lines' words (the ESA's capitalized ones,
	// and RFC 7208's) to the label's, without an allocation.
	spfResults = map[string]string{"Pass": "pass", "Fail": "fail", "SoftFail": "softfail", "Neutral": "neutral",
		"None": "none", "TempError": "temperror", "PermError": "permerror", "pass": "pass", "fail": "fail",
		"softfail": "softfail", "neutral": "neutral", "none": "none", "temperror": "temperror", "permerror": "permerror"}
	dkimResults  = set("pass", "permfail", "tempfail", "neutral", "none", "malformed")
	dmarcResults = set("pass", "fail", "temperror", "permerror", "none")
	exitReasons  = set("expired", "manual", "queue full")
	// scanVerdicts are the verdict words of the summary line
	// (event.ScanResult): anti-spam positive, suspect, negative;
	// anti-virus positive, negative, unscannable, encrypted; too-big (the
	// policy's max_size); unscanned (the engine failed, the policy
	// delivers).
	scanVerdicts = set("positive", "suspect", "negative", "unscannable", "encrypted", "too-big", "unscanned")
)

// other is the label value of a word not in a bounded set.
const other = "other"

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// bounded is v when it is in s, else "other".
func bounded(s map[string]bool, v string) string {
	if s[v] {
		return v
	}
	return other
}

// pipeline holds the families of this file.
type pipeline struct {
	zones, stages, filters, quarantines map[string]bool

	spf, dkim, dmarc *prometheus.CounterVec
	listMatches      *prometheus.CounterVec // zone
	listFailures     *prometheus.CounterVec // zone
	signing          *prometheus.CounterVec // outcome
	stageRuns        *prometheus.CounterVec // stage, outcome
	stageSeconds     *prometheus.HistogramVec
	filterMatches    *prometheus.CounterVec // filter
	quarantined      *prometheus.CounterVec // quarantine
	released         *prometheus.CounterVec // quarantine, reason
	deleted          *prometheus.CounterVec // quarantine, reason
	scanVerdicts     *prometheus.CounterVec // engine, verdict
}

// newPipeline declares the families; the series of the configured zones,
// filters and quarantines start at zero, so that a dashboard shows "none
// yet" rather than nothing.
func (m *Metrics) newPipeline(o Options, counter func(name, help string, labels ...string) *prometheus.CounterVec) {
	p := &m.pipe
	p.zones, p.stages, p.filters, p.quarantines = set(o.DNSLists...), set(o.Stages...), set(o.ContentFilters...), set(o.Quarantines...)
	p.spf = counter("mailgate_spf_results_total",
		"SPF checks, by identity (helo, mailfrom) and result (the 'SPF:' lines).", "identity", "result")
	p.dkim = counter("mailgate_dkim_results_total",
		"DKIM signatures verified, by result (the 'DKIM:' verification lines): pass, permfail, tempfail, malformed.", "result")
	p.dmarc = counter("mailgate_dmarc_results_total",
		"DMARC evaluations, by result (the 'DMARC:' lines).", "result")
	p.listMatches = counter("mailgate_dnslist_matches_total",
		"Connections that a HAT dnslist rule placed in its sender group, by DNS list zone.", "zone")
	p.listFailures = counter("mailgate_dnslist_lookup_failures_total",
		"DNS list lookups that failed (no answer in time, SERVFAIL), by zone: the list's rules did not match.", "zone")
	p.signing = counter("mailgate_dkim_signing_total",
		"DKIM signing outcomes of the messages whose policy signs: signed, or why not.", "outcome")
	p.stageRuns = counter("mailgate_stage_runs_total",
		"Runs of the mail policies' stages (engines, content filters), by stage and outcome: deliver, drop, bounce, quarantine, error.", "stage", "outcome")
	p.stageSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailgate_stage_duration_seconds",
		Help:    "Time of each run of a stage (a scanner's round trip, a content filter's evaluation), by stage.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}, []string{"stage"})
	m.register(p.stageSeconds)
	p.filterMatches = counter("mailgate_content_filter_matches_total",
		"Messages a content filter matched (its actions ran), by filter.", "filter")
	p.quarantined = counter("mailgate_quarantined_messages_total",
		"Messages put in a quarantine, by quarantine (a message in two counts in each).", "quarantine")
	p.released = counter("mailgate_quarantine_released_messages_total",
		"Messages released from a quarantine, by quarantine and reason: manual, expired, queue full.", "quarantine", "reason")
	p.deleted = counter("mailgate_quarantine_deleted_messages_total",
		"Messages deleted from a quarantine, by quarantine and reason: manual, expired.", "quarantine", "reason")
	p.scanVerdicts = counter("mailgate_scan_verdicts_total",
		"Final verdicts of the scanning engines, one per engine a message went through (the 'mailgate: MID n verdicts' line), by engine and verdict.", "engine", "verdict")
	for z := range p.zones {
		p.listMatches.WithLabelValues(z)
		p.listFailures.WithLabelValues(z)
	}
	for f := range p.filters {
		p.filterMatches.WithLabelValues(f)
	}
	for q := range p.quarantines {
		p.quarantined.WithLabelValues(q)
	}
}

// authEvent counts the lines of the listeners' checks and signing.
func (p *pipeline) authEvent(ev event.Event) {
	switch ev := ev.(type) {
	case event.SPFVerdict:
		result, ok := spfResults[ev.Result]
		if !ok {
			result = other
		}
		p.spf.WithLabelValues(bounded(spfIdentities, ev.Identity), result).Inc()
	case event.DKIMVerdict:
		p.dkim.WithLabelValues(bounded(dkimResults, ev.Result)).Inc()
	case event.DMARCVerdict:
		p.dmarc.WithLabelValues(bounded(dmarcResults, ev.Verdict().Result)).Inc()
	case event.Signing:
		p.signing.WithLabelValues(signingOutcome(ev)).Inc()
	}
}

// hatMatch counts a HAT decision made by a dnslist rule.
func (p *pipeline) hatMatch(ev event.HATMatch) {
	if z, ok := dnsListZone(ev.Rule); ok {
		p.listMatches.WithLabelValues(p.zone(z)).Inc()
	}
}

// zone is a DNS list zone's label value: a configured one, else "other".
func (p *pipeline) zone(z string) string { return bounded(p.zones, strings.ToLower(z)) }

// dnsListZone is the zone of a HAT rule "dnslist[zone]" or
// "dnslist[zone:codes]".
func dnsListZone(rule string) (string, bool) {
	rest, ok := strings.CutPrefix(rule, "dnslist[")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return "", false
	}
	zone, _, _ := strings.Cut(rest, ":")
	return zone, true
}

// signingOutcome is a signing line's label value: "signed", or the reason
// of "cannot sign - <reason>" without what it names (an address, a
// profile), so that the values stay few.
func signingOutcome(s event.Signing) string {
	if s.Signed() {
		return "signed"
	}
	why, ok := strings.CutPrefix(s.Text, "cannot sign - ")
	switch {
	case !ok:
		return other
	case why == "no identifiable sending address", why == "already signed", why == "header too long":
		return why
	case strings.HasPrefix(why, "no profile matches"):
		return "no profile matches"
	case strings.HasSuffix(why, "signing failed"):
		return "signing failed"
	}
	return other
}

// quarantineEvent counts the quarantines' lines. The lines of "all
// quarantines" (Quarantine "") follow one line per quarantine, already
// counted.
func (p *pipeline) quarantineEvent(ev event.Event) {
	switch ev := ev.(type) {
	case event.Quarantined:
		p.quarantined.WithLabelValues(bounded(p.quarantines, ev.Quarantine)).Inc()
	case event.QuarantineReleased:
		if ev.Quarantine != "" {
			p.released.WithLabelValues(bounded(p.quarantines, ev.Quarantine), bounded(exitReasons, ev.Reason)).Inc()
		}
	case event.QuarantineDeleted:
		if ev.Quarantine != "" {
			p.deleted.WithLabelValues(bounded(p.quarantines, ev.Quarantine), bounded(exitReasons, ev.Reason)).Inc()
		}
	}
}

// scanSummary counts the verdicts of a message's summary line, from the
// work queue or from a rejection at SMTP time (the only line that names
// the engine of an anti-virus verdict: "MID n antivirus positive" does
// not). The line names an engine as the verdict lines do (RSPAMD,
// ClamAV), or by its stage when it failed; the label is the stage's name
// (rspamd, clamav), as in mailgate_stage_runs_total: bounded by the
// configured stages (a summary names no content filter).
func (p *pipeline) scanSummary(ev event.ScanSummary) {
	for _, r := range ev.Verdicts {
		p.scanVerdicts.WithLabelValues(bounded(p.stages, strings.ToLower(r.Engine)), bounded(scanVerdicts, r.Verdict)).Inc()
	}
}

// DNSListFailed counts a DNS list lookup that failed
// (resolver.Lists.OnFailure).
func (m *Metrics) DNSListFailed(zone string) {
	m.pipe.listFailures.WithLabelValues(m.pipe.zone(zone)).Inc()
}

// StageRan counts a run of a stage (workqueue.Options.StageRan): its
// outcome, its time, and for a content filter whether it matched (a
// filter that does not match says nothing: the zero Verdict; one that
// does names itself in By).
func (m *Metrics) StageRan(r workqueue.StageRun) {
	p := &m.pipe
	stage := bounded(p.stages, r.Stage)
	outcome := "error"
	if r.Err == nil {
		outcome = r.Verdict.Action.String()
	}
	p.stageRuns.WithLabelValues(stage, outcome).Inc()
	p.stageSeconds.WithLabelValues(stage).Observe(r.Took.Seconds())
	if r.Err == nil && p.filters[r.Stage] && r.Verdict.By != "" {
		p.filterMatches.WithLabelValues(r.Stage).Inc()
	}
}
