// Package filter holds the content filters: named, ordered per mail
// policy, each a set of conditions on a message (its header fields, body
// text, attachments' names and types, size, recipients, the sender's
// authentication results, the DNS list that placed its client) and the
// actions taken when they hold, in the ESA's words.
//
// Each filter is one workqueue.Stage. The work queue already runs a
// policy's stages in order, stops at a final verdict (drop, bounce),
// honours "skip remaining" (SkipRest), retries a failed stage and names
// each stage in its errors; a filter as a stage reuses all of that, and
// the MIME tree that all of them read is parsed once per message by the
// work queue (workqueue.Message.MIME), not once per filter.
package filter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/rfc822"
	"github.com/mailgate/mailgate/workqueue"
)

// MaxBodyScan bounds the decoded body text a body condition reads, over
// all the text parts of a message: a 100 MB text part costs 1 MiB of
// matching, not 100 MB. Text past it is not seen.
const MaxBodyScan = 1 << 20

// sniffLen is how much of a part's decoded content detected_type reads:
// what http.DetectContentType reads.
const sniffLen = 512

// Filter is a compiled content filter.
type Filter struct {
	c config.ContentFilter
}

// New makes the filter of a configuration entry (its regexps are compiled
// already).
func New(c config.ContentFilter) *Filter { return &Filter{c: c} }

// Name is the filter's name.
func (f *Filter) Name() string { return f.c.Name }

// Stages returns the filters by name, for workqueue.Options.Stages.
func Stages(cs []config.ContentFilter) map[string]workqueue.Stage {
	m := make(map[string]workqueue.Stage, len(cs))
	for _, c := range cs {
		m[c.Name] = New(c)
	}
	return m
}

// Run evaluates the filter on m and returns what its actions make of it;
// a filter that does not match delivers. An error is the message's
// (unreadable from the spool), never the content's: a broken MIME
// structure is read as well as it can be.
func (f *Filter) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	ok, err := f.Match(ctx, m)
	if err != nil || !ok {
		return workqueue.Verdict{}, err
	}
	return f.verdict(m.Table), nil
}

// Match reports whether m meets the filter's conditions: all of them, or
// any with combine: any. A filter without conditions matches every
// message.
func (f *Filter) Match(ctx context.Context, m *workqueue.Message) (bool, error) {
	e := &eval{m: m}
	for _, c := range f.c.Conditions {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		ok, err := e.test(c)
		if err != nil {
			return false, fmt.Errorf("content filter %s: %w", f.c.Name, err)
		}
		if ok != c.Not {
			if f.c.Any {
				return true, nil
			}
		} else if !f.c.Any {
			return false, nil
		}
	}
	return !f.c.Any || len(f.c.Conditions) == 0, nil
}

// verdict is what the actions make of a matching message.
func (f *Filter) verdict(table string) workqueue.Verdict {
	v := workqueue.Verdict{By: fmt.Sprintf("content filter '%s' in the %s table", f.c.Name, table)}
	for _, a := range f.c.Actions {
		switch a.Kind {
		case config.ActDrop:
			v.Action = workqueue.Drop
		case config.ActBounce:
			v.Action = workqueue.Bounce
		case config.ActQuarantine:
			v.Action, v.Quarantine = workqueue.Quarantine, a.Arg
		case config.ActDeliver:
			// The message goes on: the later filters and delivery.
		case config.ActAddHeader:
			v.AddHeaders = append(v.AddHeaders, a.Arg)
		case config.ActStripHeader:
			v.StripHeaders = append(v.StripHeaders, a.Arg)
		case config.ActTagSubject:
			v.TagSubject = a.Arg
		case config.ActAltRecipient:
			v.AltRcpt = a.Arg
		case config.ActAltHost:
			v.Reroute = a.Arg
		case config.ActNotify:
			v.Notify = append(v.Notify, workqueue.Notify{To: a.Arg, By: fmt.Sprintf("notify filter '%s'", f.c.Name)})
		case config.ActLogEntry:
			v.Log = append(v.Log, a.Arg)
		case config.ActSkipRemaining:
			v.SkipRest = true
		}
	}
	return v
}

// eval is one evaluation: what it read of the message, read once.
type eval struct {
	m         *workqueue.Message
	auth      *mailauth.Results
	authErr   error
	authRead  bool
	body      []byte // the decoded text, up to MaxBodyScan
	bodyRead  bool
	types     []string // detected types of the leaf parts
	typesRead bool
}

func (e *eval) test(c config.FilterCondition) (bool, error) {
	m := e.m
	switch c.Kind {
	case config.CondSizeOver:
		return m.Size > c.Number, nil
	case config.CondSizeUnder:
		return m.Size < c.Number, nil
	case config.CondRecipientsOver:
		return int64(len(m.Env.Rcpts)) > c.Number, nil
	case config.CondSender:
		return anyAddr(c, m.Env.From), nil
	case config.CondRecipient:
		for _, r := range m.Env.Rcpts {
			if anyAddr(c, r.Addr) {
				return true, nil
			}
		}
		return false, nil
	case config.CondSPF, config.CondDKIM, config.CondDMARC, config.CondDNSList:
		return e.authTest(c)
	}
	root, err := m.MIME()
	if err != nil {
		return false, err
	}
	switch c.Kind {
	case config.CondHeader:
		return headerTest(c, root.Header, m.Added), nil
	case config.CondBody:
		return c.Regexp.Match(e.text(root)), nil
	case config.CondAttachmentName:
		for p := range root.All() {
			if p.Filename != "" && c.Regexp.MatchString(p.Filename) {
				return true, nil
			}
		}
		return false, nil
	case config.CondDeclaredType:
		for p := range root.All() {
			if c.Regexp.MatchString(p.Type) {
				return true, nil
			}
		}
		return false, nil
	case config.CondDetectedType:
		return slices.ContainsFunc(e.detected(root), c.Regexp.MatchString), nil
	}
	return false, fmt.Errorf("unknown condition %q", c.Kind)
}

func anyAddr(c config.FilterCondition, addr string) bool {
	for _, p := range c.Addrs {
		if p.Match(addr) {
			return true
		}
	}
	return false
}

// headerTest tests the message's own header fields and those the stages
// before added (an engine's X-Spam field, say).
func headerTest(c config.FilterCondition, h rfc822.Header, added []string) bool {
	test := func(name, value string) bool {
		if c.Header != "" && !strings.EqualFold(name, c.Header) {
			return false
		}
		if c.Regexp == nil {
			return true
		}
		if c.Header == "" {
			return c.Regexp.MatchString(name + ": " + rfc822.DecodeWords(value))
		}
		return c.Regexp.MatchString(rfc822.DecodeWords(value))
	}
	for _, f := range added {
		name, value, _ := strings.Cut(f, ":")
		if test(strings.TrimSpace(name), strings.TrimSpace(value)) {
			return true
		}
	}
	for f := range h.Fields() {
		if test(f.Name, f.Value) {
			return true
		}
	}
	return false
}

// authTest tests the results the listener stored. A message with none
// (no check ran on its listener) meets no such condition.
func (e *eval) authTest(c config.FilterCondition) (bool, error) {
	if !e.authRead {
		e.auth, e.authErr = e.m.Auth()
		e.authRead = true
	}
	if e.authErr != nil {
		return false, e.authErr
	}
	r := e.auth
	if r == nil {
		return false, nil
	}
	switch c.Kind {
	case config.CondSPF:
		s, ok := r.MailFromSPF()
		return ok && slices.Contains(c.Words, s.Result), nil
	case config.CondDKIM:
		if len(r.DKIM) == 0 {
			// Checked (the listener stored results) and no signature.
			return slices.Contains(c.Words, "none"), nil
		}
		for _, d := range r.DKIM {
			if slices.Contains(c.Words, d.Result) {
				return true, nil
			}
		}
		return false, nil
	case config.CondDMARC:
		return r.DMARC != nil && slices.Contains(c.Words, r.DMARC.Result), nil
	case config.CondDNSList:
		if r.DNSList == nil {
			return false, nil
		}
		return slices.Contains(c.Words, "*") || slices.Contains(c.Words, strings.ToLower(r.DNSList.Zone)), nil
	}
	return false, nil
}
