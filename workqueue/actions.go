package workqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mimepkg "mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/dsn"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// The verdict actions beyond deliver and drop: what changes the message
// as delivered (added and stripped header fields, a subject tag, an
// alternate recipient or mail host) is gathered in an outcome and
// recorded once in the work record (queue.Work), which delivery applies;
// log entries and notifications happen as the verdict comes; a bounce
// ends the message with a DSN to its sender.

// outcome is what the stages so far asked of the message as delivered.
type outcome struct {
	strip []string // lower case
	tag   string
	route string
	rcpt  string
}

// clone is a copy that later verdicts do not change.
func (o outcome) clone() outcome {
	o.strip = slices.Clone(o.strip)
	return o
}

// carryOut takes a verdict's log entries, notifications and rewrites. A
// later stage's alternate recipient or host replaces an earlier one's; a
// later tag goes before an earlier one, as each tags the subject it sees.
func (q *Queue) carryOut(m *Message, o *outcome, v Verdict) error {
	for _, text := range v.Log {
		q.emit(event.CustomLog{MID: m.Env.MID, Text: text})
	}
	for _, n := range v.Notify {
		if err := q.notify(m, n); err != nil {
			return err
		}
	}
	for _, h := range v.StripHeaders {
		name := strings.ToLower(h)
		if !slices.Contains(o.strip, name) {
			o.strip = append(o.strip, name)
		}
		// A field an earlier stage added goes too.
		m.Added = slices.DeleteFunc(m.Added, func(f string) bool {
			n, _, _ := strings.Cut(f, ":")
			return strings.EqualFold(strings.TrimSpace(n), name)
		})
	}
	m.Added = append(m.Added, v.AddHeaders...)
	if v.TagSubject != "" {
		o.tag = strings.TrimRight(v.TagSubject, " ") + " " + o.tag
	}
	if v.Reroute != "" {
		o.route = v.Reroute
	}
	if v.AltRcpt != "" {
		o.rcpt = v.AltRcpt
	}
	return nil
}

// work is the record of the outcome for the spool.
func (o *outcome) work(m *Message) queue.Work {
	var b strings.Builder
	for _, h := range m.Added {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	return queue.Work{Headers: b.String(), Strip: o.strip, TagSubject: o.tag, Route: o.route, Rcpt: o.rcpt}
}

// bounce ends a message a stage bounced: a DSN to its sender (none to the
// null sender), committed before the message is finished, then the
// lines: "Message aborted MID n Bounced by <by>", "Message finished MID n
// done", and the DSN's own as the ESA logs a bounce it injects ("MID m
// generated for bounce of MID n"). The DSN names the message and the
// recipients it reports (queue.Envelope.BounceOf): after a crash between
// the DSN's commit and the finish, recovery takes those recipients as
// bounced, so the work queue does not run the message again (which would
// send a second DSN), and delivery sends the DSN, logs its lines and
// finishes the message.
func (q *Queue) bounce(m *Message, by string) error {
	var benv *queue.Envelope
	var size int
	if m.Env.From != "" {
		_, head, _, err := m.spool.Head(m.Env.MID, dsn.MaxOriginalHeader+1<<10)
		if err != nil {
			return fmt.Errorf("workqueue: DSN for MID %d: %w", m.Env.MID, err)
		}
		now := time.Now()
		r := dsn.Report{ReportingMTA: q.o.Hostname, From: q.o.BounceFrom, To: m.Env.From, MID: m.Env.MID,
			ArrivalDate: m.Env.Received, Original: head, Date: now, SMTPUTF8: m.Env.SMTPUTF8}
		for _, rc := range m.Env.Rcpts {
			r.Recipients = append(r.Recipients, dsn.Recipient{Original: rc.Addr, Action: dsn.Failed, Status: "5.7.1",
				Diagnostic: "550 5.7.1 Delivery not authorized, message refused by " + by, LastAttempt: now})
		}
		b, err := dsn.Build(r)
		if err != nil {
			// Nothing a retry would change (a sender the report cannot
			// name): the message ends as bounced, without its DSN.
			q.log.Error("workqueue: no DSN for a bounced message", "mid", m.Env.MID, "err", err)
		}
		if err == nil {
			benv = &queue.Envelope{MID: 0, Rcpts: []queue.Recipient{{RID: 0, Addr: m.Env.From}}, Received: now, SMTPUTF8: m.Env.SMTPUTF8,
				BounceOf: m.Env.MID, BounceRIDs: make([]int, len(m.Env.Rcpts))}
			for i, rc := range m.Env.Rcpts {
				benv.BounceRIDs[i] = rc.RID
			}
			if m.Env.SMTPUTF8 {
				benv.BodyType = "8BITMIME"
			}
			if err := q.commitGenerated(benv, b); err != nil {
				return fmt.Errorf("workqueue: DSN for MID %d: %w", m.Env.MID, err)
			}
			size = len(b)
			q.crashPoint("dsn")
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := m.spool.Finish(sctx, m.Env.MID); err != nil {
		return err
	}
	q.emit(event.MessageAborted{MID: m.Env.MID, Reason: "Bounced by " + by})
	q.emit(event.MessageFinished{MID: m.Env.MID, Status: event.FinishedDone})
	q.out.Add(1)
	q.rate.add(time.Now(), 0, 1)
	q.unclaim(m.Env.MID)
	if benv != nil {
		q.injected(benv, size, event.BounceGenerated{MID: benv.MID, OrigMID: m.Env.MID})
	}
	return nil
}

// notify sends a notification about m to n.To: a new message from the
// null sender (no bounce of a notification comes back), logged "MID
// <new> was generated based on MID <mid> by notify filter 'x'".
func (q *Queue) notify(m *Message, n Notify) error {
	now := time.Now()
	host := q.o.Hostname
	from := q.o.BounceFrom
	if from == "" {
		from = "MAILER-DAEMON@" + host
	}
	subject := ""
	if p, err := m.MIME(); err == nil {
		subject, _ = p.Header.Subject()
	}
	rcpts := make([]string, len(m.Env.Rcpts))
	for i, r := range m.Env.Rcpts {
		rcpts[i] = "<" + r.Addr + ">"
	}
	text := n.Text
	if text == "" {
		text = fmt.Sprintf("MID %d matched %s.", m.Env.MID, n.By)
	}
	body := fmt.Sprintf("%s\r\n\r\nMID:      %d\r\nFrom:     <%s>\r\nTo:       %s\r\nSubject:  %s\r\nReceived: %s\r\n",
		text, m.Env.MID, m.Env.From, strings.Join(rcpts, ", "), clean(subject), m.Env.Received.Format(time.RFC1123Z))
	sum := sha256.Sum256([]byte(fmt.Sprint(m.Env.MID, n.To, n.By, now.UnixNano())))
	var b strings.Builder
	b.WriteString("From: " + (&mail.Address{Name: "Mail Notification", Address: addrOf(from)}).String() + "\r\n")
	b.WriteString("To: <" + n.To + ">\r\n")
	b.WriteString("Subject: " + mime(fmt.Sprintf("Notification: MID %d matched %s", m.Env.MID, n.By)) + "\r\n")
	b.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <" + hex.EncodeToString(sum[:12]) + "." + fmt.Sprint(m.Env.MID) + "@" + host + ">\r\n")
	b.WriteString("Auto-Submitted: auto-generated\r\n")
	b.WriteString(fmt.Sprintf("X-Mailgate-Original-MID: %d\r\n", m.Env.MID))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(body)
	env := &queue.Envelope{Rcpts: []queue.Recipient{{RID: 0, Addr: n.To}}, Received: now, BodyType: "8BITMIME"}
	if err := q.commitGenerated(env, []byte(b.String())); err != nil {
		return fmt.Errorf("workqueue: notification about MID %d: %w", m.Env.MID, err)
	}
	q.injected(env, b.Len(), event.Generated{MID: env.MID, OrigMID: m.Env.MID, By: n.By})
	return nil
}

// commitGenerated commits a message the gateway made (a DSN, a
// notification) under a new MID with its work outcome: delivery takes it
// as it is, and the work queue never runs the policies on its own
// reports after a restart.
func (q *Queue) commitGenerated(env *queue.Envelope, msg []byte) error {
	mid, err := q.o.IDs.Next(queue.MID)
	if err != nil {
		return err
	}
	env.MID = mid
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := q.o.Spool.Commit(sctx, env, msg); err != nil {
		return err
	}
	return q.o.Spool.SetWork(sctx, mid, queue.Work{})
}

// injected logs a message the gateway made as the ESA logs one it injects
// (ICID 0), with the line that links it to its origin, and hands it to
// delivery.
func (q *Queue) injected(env *queue.Envelope, size int, link event.Event) {
	q.emit(event.StartMID{MID: env.MID, ICID: 0})
	q.emit(link)
	q.emit(event.MailFrom{MID: env.MID, ICID: 0, From: env.From})
	q.emit(event.RcptTo{MID: env.MID, ICID: 0, RID: 0, To: env.Rcpts[0].Addr})
	q.emit(event.Ready{MID: env.MID, Bytes: int64(size), From: env.From})
	q.emit(event.Queued{MID: env.MID})
	if q.o.Next != nil {
		q.o.Next(env)
	}
}

// addrOf is the address of "Name <addr>" or of a bare address.
func addrOf(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

// clean keeps a header value, decoded for a person, on one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, rfc822.DecodeWords(s))
}

// mime encodes a header value as RFC 2047 words when it is not ASCII.
func mime(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mimepkg.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}
