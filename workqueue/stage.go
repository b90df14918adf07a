package workqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mailgate/mailgate/event"
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
// return when ctx is done, and must not use m, or anything its MIME tree
// holds, once it has returned: the tree refers to the spool's file mapped
// into memory, which is unmapped when the message's stages are done, and
// a read of it then crashes the process. A Stage is used by many workers
// at once.
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
	// StripHeaders names header fields (any case) removed from the
	// message as delivered: its own and those earlier stages added.
	StripHeaders []string
	// AltRcpt replaces every recipient's address (an alternate
	// recipient).
	AltRcpt string
	// Notify are messages about this one, sent to an address each.
	Notify []Notify
	// Log are texts for "MID n Custom Log Entry: <text>" lines.
	Log []string
	// Scan is a scanning engine's verdict, for the message's summary line
	// (event.ScanSummary); nil for a stage that is no engine.
	Scan *event.ScanResult
}

// Notify is a notification about a message: a new message to To, logged
// "MID <new> was generated based on MID <mid> by <By>" (By: "notify
// filter 'x'"). Text is its body's first line.
type Notify struct {
	To, By, Text string
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
	case v.Action == Quarantine:
		return fmt.Errorf("%w: %v", ErrUnsupported, v.Action)
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
	raw    []byte // the message, when not in a spool (NewMessage)

	mimeMu   sync.Mutex
	mimeRead bool // parsed, or failed to: root and mimeErr hold
	ended    bool // the stages are done: MIME answers no more
	root     *rfc822.Part
	mimeErr  error
	mapped   *queue.Mapping // what root refers to, for a message in a spool

	authOnce sync.Once
	auth     *mailauth.Results
	authErr  error
}

// NewMessage makes a Message of msg that is not in a spool, for a stage's
// own tests and tools: Open reads msg, MIME parses it once.
func NewMessage(env *queue.Envelope, pol *policy.MailPolicy, table string, msg []byte) *Message {
	return &Message{Env: env, Policy: pol, Table: table, Size: int64(len(msg)), raw: msg}
}

// Auth returns what the listener found of the sender's authentication
// (SPF, DKIM, DMARC, the DNS list), as it stored it in the envelope; nil
// when no check ran. It is decoded once and shared by the stages, which
// must not change it.
func (m *Message) Auth() (*mailauth.Results, error) {
	m.authOnce.Do(func() {
		if len(m.Env.Auth) == 0 {
			return
		}
		m.auth, m.authErr = mailauth.Unmarshal(m.Env.Auth)
		if m.authErr != nil {
			m.auth, m.authErr = nil, fmt.Errorf("workqueue: MID %d: %w", m.Env.MID, m.authErr)
		}
	})
	return m.auth, m.authErr
}

// Open returns a new reader of the message as stored, from its first
// byte: a stage that streams it (to a scanner) never holds it whole. Its
// checksum is verified at its end: a damaged spool is an error there.
func (m *Message) Open() (io.ReadCloser, error) {
	if m.spool == nil {
		return io.NopCloser(bytes.NewReader(m.raw)), nil
	}
	_, r, err := m.spool.Reader(m.Env.MID)
	if err != nil {
		return nil, fmt.Errorf("workqueue: read MID %d: %w", m.Env.MID, err)
	}
	return r, nil
}

// MIME returns the message's MIME tree, parsed on the first call and
// shared by every stage after. The parse reads the message where the spool
// keeps it, mapped into memory (queue.Spool.Map), not a copy on the heap:
// the Parts' bytes are the spool file's pages, which the page cache holds,
// valid until the message's stages are done. It is an error after that.
func (m *Message) MIME() (*rfc822.Part, error) {
	m.mimeMu.Lock()
	defer m.mimeMu.Unlock()
	if m.ended {
		return nil, fmt.Errorf("workqueue: MID %d: MIME tree asked for after the message's stages", m.Env.MID)
	}
	if !m.mimeRead {
		m.mimeRead = true
		m.root, m.mimeErr = m.parse()
	}
	return m.root, m.mimeErr
}

func (m *Message) parse() (*rfc822.Part, error) {
	if m.spool == nil {
		return rfc822.Parse(m.raw, rfc822.DefaultLimits), nil
	}
	mp, err := m.spool.Map(m.Env.MID)
	if err != nil {
		return nil, fmt.Errorf("workqueue: read MID %d: %w", m.Env.MID, err)
	}
	m.mapped = mp
	return rfc822.Parse(mp.Bytes(), rfc822.DefaultLimits), nil
}

// end is called when nothing reads the message any more (its stages, their
// notifications, its outcome are done): the tree is dropped and the
// mapping it refers to unmapped.
func (m *Message) end() error {
	m.mimeMu.Lock()
	defer m.mimeMu.Unlock()
	m.ended, m.root = true, nil
	if m.mapped == nil {
		return nil
	}
	err := m.mapped.Close()
	m.mapped = nil
	if err != nil {
		return fmt.Errorf("workqueue: MID %d: %w", m.Env.MID, err)
	}
	return nil
}

// recoverFault, deferred by the worker, turns a fault reading the
// message's mapping (its spool file cut short, or a page the disk could
// not return) into the error of this pass over the message, which is
// retried, instead of a crash of the whole gateway; the worker has
// runtime/debug.SetPanicOnFault set while it works on a message. Any
// other panic goes on.
func (m *Message) recoverFault(err *error) {
	r := recover()
	if r == nil {
		return
	}
	m.mimeMu.Lock()
	mp := m.mapped
	m.mimeMu.Unlock()
	if mp == nil || !mp.IsFault(r) {
		panic(r)
	}
	*err = fmt.Errorf("workqueue: MID %d: the message could not be read from the spool's file: %v", m.Env.MID, r)
}
