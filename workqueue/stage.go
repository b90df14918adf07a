package workqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// Stage is one step of a mail policy: an anti-spam or anti-virus engine, or
// a content filter. The work queue runs a policy's stages in the ESA's
// order (anti-spam, anti-virus, content filters in their order) on each
// message the policy took, after the split.
//
// Run returns the stage's verdict, or an error when the stage could not
// decide (the engine is down, timed out, answered garbage): the policy's
// scan_failure then says whether the message waits and is scanned again
// later (tempfail) or goes on unscanned by this stage (deliver). Run must
// return when ctx is done. A Stage is used by many workers at once.
type Stage interface {
	Run(ctx context.Context, m *Message) (Verdict, error)
}

// Action is what a verdict does with the message.
type Action uint8

const (
	// Deliver lets the message go on: to the next stage, then delivery.
	Deliver Action = iota
	// Drop ends the message: "Message aborted MID n Dropped by <By>".
	// Final: no later stage runs.
	Drop
	// Bounce ends the message with a DSN to its sender. Final.
	Bounce
	// Quarantine holds the message in the named quarantine at the end of
	// the stages (quarantines add up, as on the ESA).
	Quarantine
)

func (a Action) String() string {
	switch a {
	case Deliver:
		return "deliver"
	case Drop:
		return "drop"
	case Bounce:
		return "bounce"
	case Quarantine:
		return "quarantine"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Verdict is a stage's outcome.
type Verdict struct {
	Action Action
	// By names who decided, as the ESA's line does after "Dropped by ":
	// "antivirus", "CASE", "content filter 'x' in the inbound table".
	By string
	// Quarantine is the quarantine's name, for Action Quarantine; By is
	// then the reason the line gives in parentheses, in the ESA's form
	// ("content filter:name", "Anti-Virus").
	Quarantine string
	// AddHeaders are header fields ("Name: value", no line end) added to
	// the message as delivered, before its own header.
	AddHeaders []string
	// TagSubject is put before the Subject ("[SPAM] ").
	TagSubject string
	// Reroute sends the message to this host instead of its recipients'
	// (an alternate mail host).
	Reroute string
	// SkipRest skips the stages after this one (the ESA's "skip remaining
	// content filters").
	SkipRest bool
}

// ErrUnsupported is a verdict this work queue cannot carry out yet: the
// message is held (tempfail) rather than handled wrongly.
var ErrUnsupported = errors.New("workqueue: action not supported yet")

// supported reports whether the work queue can apply v.
func (q *Queue) supported(v Verdict) error {
	switch {
	case v.Action == Quarantine && q.o.Quarantines != nil:
		if !q.o.Quarantines.Has(v.Quarantine) {
			return fmt.Errorf("%w: %q", ErrNoQuarantine, v.Quarantine)
		}
		return nil
	case v.Action == Bounce, v.Action == Quarantine:
		return fmt.Errorf("%w: %v", ErrUnsupported, v.Action)
	case v.TagSubject != "":
		return fmt.Errorf("%w: subject tag", ErrUnsupported)
	case v.Reroute != "":
		return fmt.Errorf("%w: reroute", ErrUnsupported)
	}
	return nil
}

// Message is what a stage sees of the message it works on: after a split,
// one part of the recipients, under its own MID.
type Message struct {
	Env    *queue.Envelope    // its MID, sender and (this policy's) recipients
	Policy *policy.MailPolicy // the policy that took the recipients
	Table  string             // "inbound" or "outbound", as lines name it
	Size   int64              // of the message as stored
	Added  []string           // header fields the stages before this one added
	spool  *queue.Spool
	mime   func() (*rfc822.Part, error)
}

// Auth returns what the listener found of the sender's authentication
// (SPF, DKIM, DMARC), as it stored it in the envelope; nil when no check
// ran.
func (m *Message) Auth() (*mailauth.Results, error) {
	if len(m.Env.Auth) == 0 {
		return nil, nil
	}
	r, err := mailauth.Unmarshal(m.Env.Auth)
	if err != nil {
		return nil, fmt.Errorf("workqueue: MID %d: %w", m.Env.MID, err)
	}
	return r, nil
}

// Open returns a new reader of the message as stored, from its first
// byte: a stage that streams it (to a scanner) never holds it whole. Its
// checksum is verified at its end: a damaged spool is an error there.
func (m *Message) Open() (io.ReadCloser, error) {
	_, r, err := m.spool.Reader(m.Env.MID)
	if err != nil {
		return nil, fmt.Errorf("workqueue: read MID %d: %w", m.Env.MID, err)
	}
	return r, nil
}

// MIME returns the message's MIME tree, parsed on the first call and
// shared by every stage after: the one stage that needs it pays for
// reading the message into memory, the others nothing.
func (m *Message) MIME() (*rfc822.Part, error) { return m.mime() }

// mimeOnce parses the message of mid once.
func mimeOnce(s *queue.Spool, mid uint64) func() (*rfc822.Part, error) {
	return sync.OnceValues(func() (*rfc822.Part, error) {
		_, body, err := s.Read(mid)
		if err != nil {
			return nil, fmt.Errorf("workqueue: read MID %d: %w", mid, err)
		}
		return rfc822.Parse(body, rfc822.DefaultLimits), nil
	})
}
