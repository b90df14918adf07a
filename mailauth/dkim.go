package mailauth

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM results (RFC 8601 2.7.1).
const (
	DKIMPass      = "pass"
	DKIMFail      = "fail"      // the signature or the body hash did not verify
	DKIMPermError = "permerror" // malformed signature, no key, bad key
	DKIMTempError = "temperror" // the key could not be fetched now
)

// DKIM is the verification of one signature.
type DKIM struct {
	Result     string `json:"result"` // one of the DKIM* results
	Domain     string `json:"domain,omitempty"`
	Selector   string `json:"selector,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	// Reason is why it did not pass, in the library's words ("body hash
	// did not verify", "no key for signature: ...").
	Reason string `json:"reason,omitempty"`
	// Malformed marks a signature whose tags could not be used at all;
	// the ESA logs those in a line of their own.
	Malformed bool `json:"malformed,omitempty"`
}

// ESAResult is the result word of the ESA's line: pass, permfail, tempfail.
func (d DKIM) ESAResult() string {
	switch d.Result {
	case DKIMPass:
		return "pass"
	case DKIMTempError:
		return "tempfail"
	}
	return "permfail"
}

// VerifyDKIM verifies each DKIM-Signature of the message read from r (the
// message as received, header and body). A message without signatures has
// none. The error is for a message that could not be read or parsed at all.
func (c *Checker) VerifyDKIM(ctx context.Context, r io.Reader) ([]DKIM, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	max := c.MaxSignatures
	if max <= 0 {
		max = 5
	}
	a := dnsAdapter{c.DNS}
	// The library verifies several signatures in goroutines fed through
	// pipes, and a read error midway would leave them blocked: the reader
	// it gets ends cleanly instead, and the error is reported here.
	sr := &safeReader{r: r, keep: 64 << 10}
	vs, err := dkim.VerifyWithOptions(sr, &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return a.LookupTXT(ctx, name) },
		MaxVerifications: max,
	})
	if sr.err != nil {
		return nil, sr.err
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, err
	}
	// The library does not say which selector a signature named; the
	// header does, signature by signature in the same order.
	sels := selectors(sr.head)
	out := make([]DKIM, 0, len(vs))
	for i, v := range vs {
		d := fromVerification(v)
		if i < len(sels) && strings.EqualFold(sels[i].d, d.Domain) {
			d.Selector = sels[i].s
		}
		out = append(out, d)
	}
	return out, nil
}

func fromVerification(v *dkim.Verification) DKIM {
	d := DKIM{Domain: v.Domain, Identifier: v.Identifier, Result: DKIMPass}
	if v.Err == nil {
		return d
	}
	reason := strings.TrimPrefix(v.Err.Error(), "dkim: ")
	d.Reason = reason
	switch {
	case dkim.IsTempFail(v.Err):
		d.Result = DKIMTempError
	case dkim.IsPermFail(v.Err):
		d.Result = DKIMPermError
		d.Malformed = strings.HasPrefix(reason, "malformed ") || reason == "signature missing required tag" ||
			reason == "incompatible signature version" || reason == "domain mismatch"
	default:
		d.Result = DKIMFail
	}
	return d
}

// safeReader turns a read error into the end of the input, keeping the
// error, and keeps the first bytes read (the header, mostly). It also
// ends the input, with ErrHeaderTooLarge, at a header that would cost the
// library more than maxFoldCost or maxHeaderLines allow.
type safeReader struct {
	r    io.Reader
	err  error
	keep int
	head []byte

	// The header's folding, counted as the bytes go by.
	body    bool  // past the blank line
	midLine bool  // not at the start of a line
	lineLen int   // of the line so far, CR aside
	lines   int   // of the header so far
	field   int64 // the current field's bytes so far
	cost    int64 // the bytes the library's reader copies for the header
}

// maxFoldCost bounds the bytes go-msgauth's header reader copies: it adds
// each continuation line to the field read so far by string concatenation,
// a copy of the whole field per line, so a field folded over n lines costs
// n²/2 line lengths. A 100 MB field folded in lines of 900 bytes (a
// listener with max_header_lines: 0) took minutes before its 250; even
// the default limit of 1,000 lines of 1,000 bytes cost half a gigabyte.
// 64 MiB is about 50 ms, and a field folded over 1,800 short lines (a To of
// as many addresses) is within it.
const maxFoldCost = 64 << 20

// maxHeaderLines bounds the header's lines: the library's time grows with
// their square however they are folded (40,000 fields of two lines took 25
// s; 4,000 lines take about a quarter of a second). A listener's
// max_header_lines, 1,000 by default, refuses such a message before.
const maxHeaderLines = 4000

// ErrHeaderTooLarge is VerifyDKIM's error for a header past maxFoldCost or
// maxHeaderLines: no signature of the message is verified.
var ErrHeaderTooLarge = errors.New("a header too large to verify DKIM (too many lines, or a field folded over too many)")

func (s *safeReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if k := min(n, s.keep-len(s.head)); k > 0 {
		s.head = append(s.head, p[:k]...)
	}
	if !s.body && s.fold(p[:n]) {
		s.err = ErrHeaderTooLarge
		return n, io.EOF
	}
	if err != nil && err != io.EOF {
		s.err = err
		err = io.EOF
	}
	return n, err
}

// fold follows the header through b and reports whether it passed
// maxFoldCost or maxHeaderLines.
func (s *safeReader) fold(b []byte) bool {
	for _, c := range b {
		if !s.midLine {
			s.midLine, s.lineLen = true, 0
			if s.lines++; s.lines > maxHeaderLines {
				return true
			}
			if c == ' ' || c == '\t' {
				s.cost += s.field
				if s.cost > maxFoldCost {
					return true
				}
			} else {
				s.field = 0
			}
		}
		s.field++
		switch c {
		case '\n':
			if s.lineLen == 0 {
				s.body = true
				return false
			}
			s.midLine = false
		case '\r':
		default:
			s.lineLen++
		}
	}
	return false
}

type sigTags struct{ d, s string }

// selectors returns the d= and s= tags of the DKIM-Signature fields of a
// header, in order. head may end anywhere; a field cut off is left out.
func selectors(head []byte) []sigTags {
	var out []sigTags
	for sc := (fieldScanner{msg: head}); sc.next(); {
		if !sc.is("DKIM-Signature") {
			continue
		}
		var t sigTags
		for _, tag := range strings.Split(unfold(sc.raw), ";") {
			k, v, _ := strings.Cut(tag, "=")
			switch strings.TrimSpace(k) {
			case "d":
				t.d = stripSpace(v)
			case "s":
				t.s = stripSpace(v)
			}
		}
		out = append(out, t)
	}
	return out
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
