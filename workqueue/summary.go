package workqueue

import (
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
)

// summarize writes the message's one line of verdicts (event.ScanSummary)
// before the line of what came of it, when a scanning engine ran.
func (q *Queue) summarize(m *Message, scans []event.ScanResult, action string) {
	if len(scans) == 0 {
		return
	}
	q.emit(event.ScanSummary{MID: m.Env.MID, Policy: m.Policy.Name, Table: m.Table, Verdicts: scans, Action: action})
}

// unscanned adds the verdict of an engine stage that failed while its
// policy delivers unscanned; a content filter that failed adds none.
func unscanned(scans []event.ScanResult, p *policy.MailPolicy, stage string) []event.ScanResult {
	kind := ""
	switch stage {
	case p.AntiSpam:
		kind = "antispam"
	case p.AntiVirus:
		kind = "antivirus"
	default:
		return scans
	}
	return append(scans, event.ScanResult{Kind: kind, Engine: stage, Verdict: "unscanned"})
}
