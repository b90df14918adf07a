package dkimsign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailgate/mailgate/rfc822"
)

// MaxHeader is the most of a header a Message holds while it looks for the
// header's end; a longer header is not signed. The listener's
// max_header_lines (1000 lines of at most 1000 octets by default) keeps
// real mail far below it.
const MaxHeader = 1 << 20

// Outcome is what became of a message's signing.
type Outcome uint8

const (
	// Signed: Result.Field is the DKIM-Signature to put before the message.
	Signed Outcome = iota
	// NoAddress: neither the From field nor the envelope has an address.
	NoAddress
	// NoProfile: no profile matches the sending address.
	NoProfile
	// AlreadySigned: the message carries a signature of the profile's
	// domain already (a client that signs for itself, or a message that
	// comes round again); a second one would add nothing.
	AlreadySigned
	// HeaderTooLong: the header is longer than MaxHeader.
	HeaderTooLong
	// Failed: the signer failed (Close's error says why).
	Failed
)

// Result is what a Message did.
type Result struct {
	Outcome Outcome
	Profile *Profile // the profile that matched; nil for NoAddress, NoProfile, HeaderTooLong
	Addr    string   // the sending address the profile was looked up by
	Field   string   // the DKIM-Signature field with its CRLF, when Signed
}

// Text is the mail log's line after "DKIM: ", in the ESA's words (its
// DK_SIGN_MSG_* format strings); HeaderTooLong, which the ESA does not
// have, reads in the same form.
func (r Result) Text() string {
	switch r.Outcome {
	case Signed:
		return "signing with " + r.Profile.Name + " - matches " + r.Addr
	case NoAddress:
		return "cannot sign - no identifiable sending address"
	case NoProfile:
		return "cannot sign - no profile matches " + r.Addr
	case AlreadySigned:
		return "cannot sign - already signed"
	case HeaderTooLong:
		return "cannot sign - header too long"
	case Failed:
		if r.Profile != nil {
			return "cannot sign - profile " + r.Profile.Name + " signing failed"
		}
		return "cannot sign - signing failed"
	}
	return fmt.Sprintf("cannot sign - outcome %d", r.Outcome)
}

// Message signs one message as it is written to it (an io.Writer): it
// holds the header until the blank line that ends it, picks the profile,
// then hashes the body as it goes by. Close gives the Result. A Message that
// is given up must be closed too (Abort), which ends the signer's
// goroutine.
type Message struct {
	x       *Profiles
	envFrom string

	hdr    []byte // the header so far, while it has not ended
	done   bool   // the profile is chosen; what follows goes to signer
	signer *dkim.Signer
	res    Result
	err    error
}

// Sign starts signing a message whose envelope sender is envFrom ("" for
// the null sender).
func (x *Profiles) Sign(envFrom string) *Message {
	return &Message{x: x, envFrom: envFrom}
}

// Write takes the next part of the message.
func (m *Message) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.done {
		if m.signer != nil {
			if _, err := m.signer.Write(p); err != nil {
				m.err = fmt.Errorf("dkimsign: %w", err)
				return 0, m.err
			}
		}
		return len(p), nil
	}
	start := max(len(m.hdr)-3, 0) // the blank line may begin in what came before
	m.hdr = append(m.hdr, p...)
	if end := headerEnd(m.hdr, start); end >= 0 {
		if err := m.decide(m.hdr[:end], m.hdr[end:]); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(m.hdr) > MaxHeader {
		m.res, m.done, m.hdr = Result{Outcome: HeaderTooLong}, true, nil
	}
	return len(p), nil
}

// headerEnd returns the length of the header in b with its blank line, or
// -1 while it has not ended. As in the DKIM libraries (go-msgauth,
// dkimpy), the header ends at the first empty line only.
func headerEnd(b []byte, from int) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if bytes.HasPrefix(b, []byte("\n")) {
		return 1
	}
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case bytes.HasPrefix(b[i:], []byte("\r\n")):
			return i + 2
		case bytes.HasPrefix(b[i:], []byte("\n")):
			return i + 1
		}
	}
}

// decide picks the profile by the header and starts the signer, which is
// given the header and what of the body came with it.
func (m *Message) decide(header, body []byte) error {
	m.done = true
	defer func() { m.hdr = nil }()
	h := rfc822.ReadHeader(header)
	m.res = m.x.lookup(h, m.envFrom)
	if m.res.Outcome != Signed {
		return nil
	}
	p := m.res.Profile
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 p.Domain,
		Selector:               p.Selector,
		Signer:                 p.Key,
		HeaderCanonicalization: dkim.Canonicalization(p.HeaderCanon),
		BodyCanonicalization:   dkim.Canonicalization(p.BodyCanon),
		HeaderKeys:             headerKeys(p, h),
	})
	if err != nil {
		m.err = fmt.Errorf("dkimsign: profile %s: %w", p.Name, err)
		return m.err
	}
	m.signer = s
	for _, b := range [][]byte{header, body} {
		if _, err := s.Write(b); err != nil {
			m.err = fmt.Errorf("dkimsign: %w", err)
			return m.err
		}
	}
	return nil
}

// Close ends the message and returns what was done. An error is a failure
// to sign: the Result is then Failed, and the message is not signed.
func (m *Message) Close() (Result, error) {
	failed := func(err error) (Result, error) {
		m.Abort()
		return Result{Outcome: Failed, Profile: m.res.Profile, Addr: m.res.Addr}, err
	}
	if m.err != nil {
		return failed(m.err)
	}
	if !m.done {
		// The message ended in its header: it has no body, which the
		// signer must still see begin.
		hdr := m.hdr
		if len(hdr) > 0 && hdr[len(hdr)-1] != '\n' {
			hdr = append(hdr, "\r\n"...)
		}
		if err := m.decide(hdr, []byte("\r\n")); err != nil {
			return failed(err)
		}
	}
	if m.signer == nil {
		return m.res, nil
	}
	s := m.signer
	m.signer = nil
	if err := s.Close(); err != nil {
		return failed(fmt.Errorf("dkimsign: profile %s: %w", m.res.Profile.Name, err))
	}
	m.res.Field = s.Signature()
	return m.res, nil
}

// Abort gives the message up. It may be called after Close.
func (m *Message) Abort() {
	if m.signer != nil {
		m.signer.Close() // ends the goroutine; its error is of no interest now
		m.signer = nil
	}
	if m.err == nil {
		m.err = errAborted
	}
}

var errAborted = errors.New("dkimsign: message given up")

// lookup finds the sending address and its profile: the From field's
// address when it has one, else the envelope sender. When the From
// address matches no profile the envelope sender may (a list or a service
// sending for others signs with its own domain).
func (x *Profiles) lookup(h rfc822.Header, envFrom string) Result {
	from := fromAddress(h)
	addr := from
	if addr == "" {
		addr = envFrom
	}
	if addr == "" {
		return Result{Outcome: NoAddress}
	}
	p, ok := x.Match(addr)
	if !ok && from != "" && envFrom != "" {
		if p, ok = x.Match(envFrom); ok {
			addr = envFrom
		}
	}
	if !ok {
		return Result{Outcome: NoProfile, Addr: addr}
	}
	for _, v := range h.Values("DKIM-Signature") {
		if strings.EqualFold(tag(v, "d"), p.Domain) {
			return Result{Outcome: AlreadySigned, Profile: p, Addr: addr}
		}
	}
	return Result{Outcome: Signed, Profile: p, Addr: addr}
}

// headerKeys is the h= of a message: each field of the profile as often as
// the message has it, an oversigned one once more, and From at least once
// (a message without one signs its absence).
func headerKeys(p *Profile, h rfc822.Header) []string {
	count := map[string]int{}
	for f := range h.Fields() {
		count[strings.ToLower(f.Name)]++
	}
	var keys []string
	seen := map[string]bool{}
	add := func(name string) {
		k := strings.ToLower(name)
		if seen[k] {
			return
		}
		seen[k] = true
		n := count[k]
		if k == "from" {
			n = max(n, 1)
		}
		for _, o := range p.Oversign {
			if strings.EqualFold(o, name) {
				n++
				break
			}
		}
		for range n {
			keys = append(keys, k)
		}
	}
	for _, name := range p.Headers {
		add(name)
	}
	for _, name := range p.Oversign {
		add(name)
	}
	return keys
}

// tag returns the value of a tag of a DKIM-Signature ("d" of "v=1;
// d=example.com; ..."), without its spaces.
func tag(v, name string) string {
	for part := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Join(strings.Fields(val), "")
		}
	}
	return ""
}

var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	// A display name in a charset the standard library does not know
	// must not hide the address: it is read as it is.
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// angle finds "<local@domain>" in a From field the parser refused.
var angle = regexp.MustCompile(`<([^<>\s@]+@[^<>\s@]+)>`)

// fromAddress is the address of the first From field's first mailbox, ""
// when it has none.
func fromAddress(h rfc822.Header) string {
	v, ok := h.Get("From")
	if !ok {
		return ""
	}
	if list, err := addrParser.ParseList(v); err == nil && len(list) > 0 {
		return list[0].Address
	}
	if m := angle.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	if f := strings.Fields(v); len(f) == 1 && strings.Count(f[0], "@") == 1 {
		return f[0]
	}
	return ""
}
