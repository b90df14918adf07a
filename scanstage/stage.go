// Package scanstage puts the scanning engines (package scan's clients) in
// the work queue and at the end of DATA: an anti-spam stage and an
// anti-virus stage that ask their engine, log the ESA's verdict lines,
// and turn the verdict into what the message's mail policy says
// (policy.SpamSettings, policy.VirusSettings); and a check that rejects a
// positive message at SMTP time when every recipient's policy says
// reject. The engines know nothing of policy; the work queue knows nothing
// of engines.
package scanstage

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/scan"
	"github.com/mailgate/mailgate/workqueue"
)

// LogName is an engine's name in the mail log. The ESA writes its
// anti-spam engines in capitals (CASE, GRAYMAIL, BRIGHTMAIL in "too big"
// lines) and its anti-virus engines as their vendors do (Sophos, McAfee):
// RSPAMD and SPAMASSASSIN, and ClamAV.
func LogName(engine string) string {
	switch engine {
	case "rspamd":
		return "RSPAMD"
	case "SpamAssassin", "spamassassin":
		return "SPAMASSASSIN"
	case "ClamAV", "clamav", "clamd":
		return "ClamAV"
	}
	return engine
}

// Spam is the anti-spam stage of one engine.
type Spam struct {
	Engine scan.SpamEngine
	Events event.Sink
}

// Virus is the anti-virus stage of one engine.
type Virus struct {
	Engine scan.VirusEngine
	Events event.Sink
}

func emit(s event.Sink, evs ...event.Event) {
	if s == nil {
		return
	}
	now := time.Now()
	for _, ev := range evs {
		s.Emit(event.Entry{Time: now, Level: event.Info, Event: ev})
	}
}

// Run scans the message and returns what its policy's anti-spam
// settings make of the verdict. An engine that gives no verdict is an
// error: the policy's scan_failure decides.
func (s *Spam) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	name := LogName(s.Engine.Name())
	set := m.Policy.Spam
	if set.MaxSize > 0 && m.Size > set.MaxSize {
		emit(s.Events, event.TooBig{MID: m.Env.MID, Size: m.Size, Limit: set.MaxSize, Engine: name})
		return scanned(verdict(set.TooBig, name, "antispam:"+name), "antispam", name, "too-big", ""), nil
	}
	msg, done := message(m)
	defer done()
	v, err := s.Engine.ScanSpam(ctx, msg)
	if tb := (*scan.TooBigError)(nil); errors.As(err, &tb) {
		emit(s.Events, event.TooBig{MID: m.Env.MID, Size: tb.Size, Limit: tb.Limit, Engine: name})
		return scanned(verdict(set.TooBig, name, "antispam:"+name), "antispam", name, "too-big", ""), nil
	}
	if err != nil {
		return workqueue.Verdict{}, err
	}
	emit(s.Events, scan.SpamEvent(m.Env.MID, true, name, v), scan.SpamEvent(m.Env.MID, false, name, v))
	return scanned(verdict(SpamAction(set, v.Class), name, "antispam:"+name), "antispam", name, v.Class.String(), ""), nil
}

// SpamAction is the policy's action for a spam class.
func SpamAction(set policy.SpamSettings, c scan.SpamClass) policy.ScanAction {
	switch c {
	case scan.Positive:
		return set.Positive
	case scan.Suspect:
		return set.Suspect
	}
	return policy.ScanAction{Action: policy.ActDeliver}
}

// Run scans the message for viruses and returns what its policy's
// anti-virus settings make of the verdict.
func (s *Virus) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	name := LogName(s.Engine.Name())
	msg, done := message(m)
	defer done()
	v, err := s.Engine.ScanVirus(ctx, msg)
	if tb := (*scan.TooBigError)(nil); errors.As(err, &tb) {
		// Over clamd's StreamMaxLength: the ESA's word for a message its
		// engine could not scan is unscannable.
		emit(s.Events, event.TooBig{MID: m.Env.MID, Size: tb.Size, Limit: tb.Limit, Engine: name})
		v = scan.VirusVerdict{Class: scan.Unscannable}
		emit(s.Events, scan.VirusEvent(m.Env.MID, v))
		return scanned(verdict(VirusAction(m.Policy.Virus, v.Class), "antivirus", "antivirus:"+name), "antivirus", name, "unscannable", ""), nil
	}
	if err != nil {
		return workqueue.Verdict{}, err
	}
	emit(s.Events, scan.VirusInterimEvent(m.Env.MID, name, v), scan.VirusEvent(m.Env.MID, v))
	// The ESA's drop line names no engine: "Dropped by antivirus".
	word, _ := v.Final()
	detail := ""
	if v.Class == scan.Viral {
		detail = v.Name
	}
	return scanned(verdict(VirusAction(m.Policy.Virus, v.Class), "antivirus", "antivirus:"+name), "antivirus", name, word, detail), nil
}

// VirusAction is the policy's action for a virus class.
func VirusAction(set policy.VirusSettings, c scan.VirusClass) policy.ScanAction {
	switch c {
	case scan.Viral:
		return set.Infected
	case scan.Unscannable:
		return set.Unscannable
	case scan.Encrypted:
		return set.Encrypted
	}
	return policy.ScanAction{Action: policy.ActDeliver}
}

// verdict turns a policy action into the work queue's verdict. A reject
// that reaches the work queue (the listener could not reject: the
// recipients' policies differed, or the engine failed during DATA) is a
// drop: the message was accepted, and a bounce would go to the forged
// sender reject is there to spare.
// A quarantine's reason, in the parentheses of its line, names the stage
// as a content filter's does ("content filter:name"): "antispam:RSPAMD",
// "antivirus:ClamAV".
func verdict(a policy.ScanAction, by, reason string) workqueue.Verdict {
	v := workqueue.Verdict{By: by, TagSubject: a.TagSubject, AddHeaders: a.AddHeaders}
	switch a.Action {
	case policy.ActDrop, policy.ActReject:
		v = workqueue.Verdict{Action: workqueue.Drop, By: by}
	case policy.ActBounce:
		v.Action = workqueue.Bounce
	case policy.ActQuarantine:
		v.Action, v.Quarantine, v.By = workqueue.Quarantine, a.Quarantine, reason
	}
	return v
}

// scanned adds the verdict for the message's summary line.
func scanned(v workqueue.Verdict, kind, engine, word, detail string) workqueue.Verdict {
	v.Scan = &event.ScanResult{Kind: kind, Engine: engine, Verdict: word, Detail: detail}
	return v
}

// message is the scan.Message of a work-queue message: its envelope, and
// its body read from the spool as the engine asks for it.
func message(m *workqueue.Message) (*scan.Message, func()) {
	body := &spoolReaderAt{open: m.Open, size: m.Size}
	return envMessage(m.Env, body, m.Size), body.close
}

func envMessage(env *queue.Envelope, body interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) *scan.Message {
	ip, _ := netip.ParseAddr(env.ClientIP)
	rcpts := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i] = r.Addr
	}
	return &scan.Message{MID: env.MID, ClientIP: ip, ClientHost: env.ClientHost, Helo: env.Helo,
		Sender: env.From, Recipients: rcpts, Body: body, Size: size}
}
