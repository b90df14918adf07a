package quarantine

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// Info is a quarantine and what it holds, for list.
type Info struct {
	Name      string        `json:"name"`
	Retention time.Duration `json:"retention"`
	OnExpiry  Expiry        `json:"on_expiry"`
	MaxSize   int64         `json:"max_size"`
	Messages  int           `json:"messages"`
	Bytes     int64         `json:"bytes"`
}

// Summary is a quarantined message, as a listing shows it. Text from the
// message (Subject) is escaped (maillog.Escape).
type Summary struct {
	MID        uint64    `json:"mid"`
	From       string    `json:"from"`
	Recipients []string  `json:"recipients"`
	Subject    string    `json:"subject"`
	Received   time.Time `json:"received"`
	Size       int64     `json:"size"`
	// In is where it is held, with why, since when and until when.
	In []Holding `json:"in"`
	// Deleted: it was deleted from another quarantine, and will not be
	// delivered.
	Deleted bool `json:"deleted,omitempty"`
}

// Holding is one quarantine a message is in.
type Holding struct {
	Quarantine string    `json:"quarantine"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
	Expires    time.Time `json:"expires,omitzero"`
	OnExpiry   Expiry    `json:"on_expiry,omitempty"`
}

// Detail is one quarantined message to read: its header fields and its
// text, escaped so that nothing in it acts on a terminal or a page.
type Detail struct {
	Summary
	Header []rfc822.Field `json:"header"`
	// Text is the first text part (plain before HTML, which is shown as
	// its source, never rendered), decoded, cut at MaxText.
	Text      string `json:"text"`
	TextType  string `json:"text_type"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Bounds of what Show reads and returns.
const (
	maxRead = 1 << 20
	MaxText = 64 << 10
)

// Admin is what an administrator does with the quarantines: list them and
// what they hold, read a message, release or delete it. *Store is it; the
// control socket (control.Quarantines, which adds Holds) and the web page
// take this interface, so that both ask the same of the store and neither
// needs the rest of it (Hold, Start, Stop).
type Admin interface {
	Quarantines() []Info
	List(q string) ([]Summary, error)
	Show(mid uint64) (Detail, error)
	Release(mid uint64, q, why string) error
	Delete(mid uint64, q, why string) error
}

var _ Admin = (*Store)(nil)

// Holds reports whether the message is in a quarantine.
func (s *Store) Holds(mid uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs[mid] != nil
}

// Quarantines lists the quarantines in their configured order.
func (s *Store) Quarantines() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.order))
	for _, name := range s.order {
		sp := s.specs[name]
		out = append(out, Info{Name: name, Retention: sp.Retention, OnExpiry: sp.OnExpiry, MaxSize: sp.MaxSize,
			Messages: s.held[name], Bytes: s.used[name]})
	}
	return out
}

// List returns the messages in quarantine q (every quarantine when ""),
// oldest first.
func (s *Store) List(q string) ([]Summary, error) {
	if q != "" && !s.Has(q) {
		return nil, fmt.Errorf("%w: %q", ErrNoQuarantine, q)
	}
	s.mu.Lock()
	out := []Summary{}
	for _, e := range s.msgs {
		if q == "" || e.work.In(q) {
			out = append(out, s.summary(e))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Summary) int {
		return cmp.Or(a.In[0].Since.Compare(b.In[0].Since), cmp.Compare(a.MID, b.MID))
	})
	return out, nil
}

// summary; s.mu held.
func (s *Store) summary(e *entry) Summary {
	sum := e.info
	sum.Recipients = slices.Clone(sum.Recipients)
	for _, h := range e.work.Held {
		switch h.Out {
		case queue.In:
			sp := s.specs[h.Quarantine]
			hd := Holding{Quarantine: h.Quarantine, Reason: h.Reason, Since: h.Since}
			if sp.Retention > 0 {
				hd.Expires, hd.OnExpiry = h.Since.Add(sp.Retention), sp.OnExpiry
			}
			sum.In = append(sum.In, hd)
		case queue.Deleted:
			sum.Deleted = true
		}
	}
	return sum
}

// Show returns a quarantined message to read.
func (s *Store) Show(mid uint64) (Detail, error) {
	s.mu.Lock()
	e := s.msgs[mid]
	var sum Summary
	if e != nil {
		sum = s.summary(e)
	}
	s.mu.Unlock()
	if e == nil {
		return Detail{}, fmt.Errorf("%w: MID %d", ErrNotFound, mid)
	}
	_, head, size, err := s.o.Spool.Head(mid, maxRead)
	if err != nil {
		return Detail{}, fmt.Errorf("quarantine: read MID %d: %w", mid, err)
	}
	d := Detail{Summary: sum, Header: []rfc822.Field{}}
	msg := rfc822.Parse(head, rfc822.DefaultLimits)
	for f := range msg.Header.Fields() {
		// A folded field keeps the tab of its fold: a space, to read.
		v := strings.ReplaceAll(rfc822.DecodeWords(f.Value), "\t", " ")
		d.Header = append(d.Header, rfc822.Field{Name: maillog.Escape(f.Name), Value: maillog.Escape(v)})
	}
	var text *rfc822.Part
	for _, want := range []string{"text/plain", "text/html"} {
		for p := range msg.All() {
			if len(p.Parts) == 0 && p.Type == want && p.Disposition != "attachment" {
				text = p
				break
			}
		}
		if text != nil {
			break
		}
	}
	if text != nil {
		b, _ := io.ReadAll(io.LimitReader(text.Decoded(), MaxText+1))
		d.TextType = text.Type
		if len(b) > MaxText {
			b, d.Truncated = b[:MaxText], true
		}
		d.Text = EscapeText(string(b))
	}
	if size > int64(len(head)) {
		d.Truncated = true
	}
	return d, nil
}

// EscapeText makes a message's text safe to show: its lines and tabs are
// kept (CRLF written LF), everything else is escaped as maillog.Escape
// escapes text for the mail log and the terminal (\x1b, \r, \u202e, \xff),
// so that nothing in it acts on a terminal or a page. Text on one line (a
// Subject, a header field) is escaped by maillog.Escape itself: one set of
// rules for everything the gateway shows of a message.
func EscapeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for {
		// LF and TAB are ASCII: a cut there never splits a character.
		i := strings.IndexAny(s, "\n\t")
		if i < 0 {
			b.WriteString(maillog.Escape(s))
			return b.String()
		}
		b.WriteString(maillog.Escape(s[:i]))
		b.WriteByte(s[i])
		s = s[i+1:]
	}
}
