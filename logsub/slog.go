package logsub

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/mailgate/mailgate/event"
)

// Handler returns a slog.Handler that hands each record to primary (the
// gateway's standard error, at its own level) and writes it to the
// outputs of log, each at its level, as a line of the ESA's form:
//
//	Mon Dec  7 11:16:47 2026 Warning: syslog push: write failed destination="tcp 192.0.2.1:514" err="..."
//
// The message comes first, escaped as mail-log text is, then the
// attributes as log/slog's text handler writes them. slog's levels map to
// the log's: Error is Critical, Warn is Warning, Info is Info, Debug (and
// below) is Debug. With no outputs, Handler returns primary.
func Handler(primary slog.Handler, log *Log) slog.Handler {
	if log == nil {
		return primary
	}
	h := &handler{primary: primary, logp: new(atomic.Pointer[Log])}
	h.logp.Store(log)
	return h
}

type handler struct {
	primary slog.Handler
	logp    *atomic.Pointer[Log] // nil *Log: standard error only (while Open starts the senders)
	ops     []op                 // WithAttrs and WithGroup, replayed for each record
}

type op struct {
	group string
	attrs []slog.Attr
}

// LevelOf maps a slog level to a log level.
func LevelOf(l slog.Level) event.Level {
	switch {
	case l >= slog.LevelError:
		return event.Critical
	case l >= slog.LevelWarn:
		return event.Warning
	case l >= slog.LevelInfo:
		return event.Info
	}
	return event.Debug
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.primary.Enabled(ctx, l) || h.logp.Load().Enabled(LevelOf(l))
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.primary.Enabled(ctx, r.Level) {
		err = h.primary.Handle(ctx, r)
	}
	lv := LevelOf(r.Level)
	log := h.logp.Load()
	if !log.Enabled(lv) {
		return err
	}
	var buf bytes.Buffer
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 8, // the outputs filter
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	for _, o := range h.ops {
		if o.group != "" {
			th = th.WithGroup(o.group)
		} else {
			th = th.WithAttrs(o.attrs)
		}
	}
	if herr := th.Handle(ctx, r); herr != nil && err == nil {
		err = herr
	}
	text := r.Message
	if attrs := bytes.TrimRight(buf.Bytes(), "\n"); len(attrs) > 0 {
		text += " " + string(attrs)
	}
	// Unknown renders its text escaped: no record can break the line.
	log.Emit(event.Entry{Time: r.Time, Level: lv, Event: event.Unknown{Text: text}})
	return err
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &handler{primary: h.primary.WithAttrs(attrs), logp: h.logp, ops: append(h.ops[:len(h.ops):len(h.ops)], op{attrs: attrs})}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{primary: h.primary.WithGroup(name), logp: h.logp, ops: append(h.ops[:len(h.ops):len(h.ops)], op{group: name})}
}
