// Package logsub holds the log subscriptions: the extra outputs of each of
// the gateway's logs (the mail log, the injection and domain debug logs,
// the status log and the gateway's own diagnostics), each a file written
// like the mail log or a syslog server pushed to, each at its own level.
//
// A Log is an event.Sink. It writes to its files first and pushes after,
// and neither waits: a file Writer buffers, a push Sender queues up to its
// bound and then drops, counted (push.Sender.Stats). The gateway puts a
// Log after the mail log's own Writer in its event stream, so a syslog
// server that is down costs no line of the local file.
package logsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/syslog/push"
)

// Options are what every output shares.
type Options struct {
	Version  string         // for the files' "Version:" line
	Serial   string         // for "SN:"
	Location *time.Location // of the timestamps; nil: time.Local
	Logger   *slog.Logger   // the senders' reports (to the gateway log's outputs besides); nil: slog.Default()
}

// A Set is the outputs of every subscribed log.
type Set struct {
	logs    map[string]*Log
	files   []*maillog.Writer
	senders []*push.Sender
}

// Log is one log's outputs. The zero Log (and a nil *Log) has none.
type Log struct {
	name  string
	loc   *time.Location
	min   event.Level // the most verbose level of its outputs
	files []*maillog.Writer
	push  []pushOut
}

type pushOut struct {
	s     *push.Sender
	level event.Level
}

// Open opens the files and starts the senders of subs. On an error what
// was opened is closed.
func Open(subs []config.LogSubscription, o Options) (_ *Set, err error) {
	s := &Set{logs: make(map[string]*Log)}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// The senders report to the gateway log's outputs too, which are ready
	// only at the end: until then their handler writes to o.Logger alone.
	gw := &handler{primary: o.Logger.Handler(), logp: new(atomic.Pointer[Log])}
	o.Logger = slog.New(gw)
	defer func() {
		if err != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // nothing was sent yet: do not wait
			s.Close(ctx)
		}
	}()
	for i, sub := range subs {
		l := s.logs[sub.Log]
		if l == nil {
			l = &Log{name: sub.Log, loc: o.Location}
			s.logs[sub.Log] = l
		}
		l.min = max(l.min, sub.Level)
		switch {
		case sub.File != nil:
			f := sub.File
			w, err := maillog.Open(f.Path, maillog.Options{Level: sub.Level, MaxSize: f.MaxSize, MaxFiles: f.MaxFiles,
				Location: o.Location, Version: o.Version, Serial: o.Serial, RollEvery: f.Schedule.RollEvery,
				RollDaily: f.Schedule.RollDaily, RollAt: f.Schedule.RollAt, MaxAge: f.Schedule.MaxAge})
			if err != nil {
				return nil, fmt.Errorf("log subscription %d (%s): %w", i+1, sub.Log, err)
			}
			s.files = append(s.files, w)
			l.files = append(l.files, w)
		case sub.Syslog != nil:
			ps, err := openSender(sub.Syslog, o)
			if err != nil {
				return nil, fmt.Errorf("log subscription %d (%s): %w", i+1, sub.Log, err)
			}
			s.senders = append(s.senders, ps)
			l.push = append(l.push, pushOut{s: ps, level: sub.Level})
		}
	}
	gw.logp.Store(s.logs[config.LogGateway])
	return s, nil
}

func openSender(c *config.SyslogPush, o Options) (*push.Sender, error) {
	po := push.Options{Network: c.Transport, Address: c.Address, Format: push.RFC3164, Facility: push.Facilities[c.Facility],
		Tag: c.Tag, Hostname: c.Hostname, Location: o.Location, MaxMessage: c.MaxMessage, QueueLines: c.QueueLines,
		QueueBytes: c.QueueBytes, Logger: o.Logger}
	if c.Format == "rfc5424" {
		po.Format = push.RFC5424
	}
	if c.Framing == "newline" {
		po.Framing = push.Newline
	}
	if c.Transport == "tls" {
		po.TLS = &tls.Config{ServerName: c.ServerName, MinVersion: tls.VersionTLS12}
		if c.CA != "" {
			pool, err := config.LoadCAs(c.CA)
			if err != nil {
				return nil, err
			}
			po.TLS.RootCAs = pool
		}
	}
	return push.New(po)
}

// Log returns the outputs of the log name (config.LogMail, ...); nil when
// it has none, which is a valid Sink that discards.
func (s *Set) Log(name string) *Log {
	if s == nil {
		return nil
	}
	return s.logs[name]
}

// Senders returns the syslog senders, for their counters (Stats, Dropped).
func (s *Set) Senders() []*push.Sender {
	if s == nil {
		return nil
	}
	return s.senders
}

// Reopen is SIGHUP for the files (see maillog.Writer.Reopen).
func (s *Set) Reopen() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, w := range s.files {
		errs = append(errs, w.Reopen())
	}
	return errors.Join(errs...)
}

// Close gives the senders until ctx ends to send what they hold, then
// closes the files (last: the senders' final reports go to them).
func (s *Set) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, p := range s.senders {
		errs = append(errs, p.Close(ctx))
	}
	for _, w := range s.files {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}

// Enabled reports whether some output takes lines of level l.
func (l *Log) Enabled(lv event.Level) bool {
	return l != nil && lv <= l.min
}

// Emit writes e to the files, then pushes it.
func (l *Log) Emit(e event.Entry) {
	if l == nil {
		return
	}
	if e.Level == 0 {
		e.Level = event.Info
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, w := range l.files {
		w.Emit(e)
	}
	if len(l.push) == 0 {
		return
	}
	var msg []byte
	for _, p := range l.push {
		if e.Level > p.level {
			continue
		}
		if msg == nil {
			// "Info: MID 5 ...": the level word and the message, as the
			// ESA pushes them; the syslog header has the time.
			msg = maillog.AppendLine(nil, event.Entry{Level: e.Level, Event: e.Event}, l.loc)
		}
		p.s.Send(e.Time, Severity(e.Level), msg)
	}
}

// Severity is the syslog severity of a level: Critical 2, Warning 4,
// Info 6, Debug and Trace 7.
func Severity(l event.Level) int {
	switch l {
	case event.Critical:
		return push.Critical
	case event.Warning:
		return push.Warning
	case event.Info:
		return push.Informational
	}
	return push.Debug
}
