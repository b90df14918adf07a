package alert

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// The gateway's checks. Each reads its figures through a function the
// wiring passes, so that this package needs none of the packages that
// hold them.

// QueueState is what the queue check reads.
type QueueState struct {
	Messages  int       // messages in the spool not finished
	OldestMID uint64    // 0: none
	Oldest    time.Time // when OldestMID was received
}

// QueueCheck raises "queue-age" (System, Warning) while the oldest message
// has waited longer than maxAge, and "queue-size" while the queue holds
// more than maxMessages; 0 leaves either out.
func QueueCheck(read func() QueueState, maxAge time.Duration, maxMessages int) Check {
	return func(_ context.Context, now time.Time) []Condition {
		q := read()
		var cs []Condition
		if age := now.Sub(q.Oldest); maxAge > 0 && q.OldestMID != 0 && age > maxAge {
			cs = append(cs, Condition{Class: System, Severity: Warning, Key: "queue-age",
				Message: fmt.Sprintf("The oldest message in the queue, MID %d, has waited %s", q.OldestMID, roundDuration(age)),
				Detail: fmt.Sprintf("MID %d was received %s, %s ago; alerts.queue_max_age is %s. %d messages are in the queue.",
					q.OldestMID, q.Oldest.UTC().Format(time.RFC1123Z), age.Round(time.Second), maxAge, q.Messages),
				Next: fmt.Sprintf("See why it waits: mailgate explain %d; mailgate tophosts --sort active and mailgate hoststatus DOMAIN show the destinations that hold mail.", q.OldestMID)})
		}
		if maxMessages > 0 && q.Messages > maxMessages {
			cs = append(cs, Condition{Class: System, Severity: Warning, Key: "queue-size",
				Message: fmt.Sprintf("The queue holds %d messages, more than %d", q.Messages, maxMessages),
				Detail:  fmt.Sprintf("%d messages are in the queue; alerts.queue_max_messages is %d.", q.Messages, maxMessages),
				Next:    "Find the destinations that hold them: mailgate tophosts --sort active; mailgate workqueue shows the work queue."})
		}
		return cs
	}
}

// Destination is one destination as the destination check reads it.
type Destination struct {
	Name   string
	Down   bool // the last connection to it failed
	Active int  // recipients waiting for it
}

// DestinationCheck raises "destination NAME" (System, Warning) for each
// destination seen down, round after round, for longer than downFor. The
// time it went down is when a round first saw it so: the alert comes
// between downFor and downFor plus one interval after the first failure.
func DestinationCheck(read func() []Destination, downFor time.Duration) Check {
	var mu sync.Mutex
	since := map[string]time.Time{}
	return func(_ context.Context, now time.Time) []Condition {
		ds := read()
		mu.Lock()
		defer mu.Unlock()
		down := map[string]bool{}
		var cs []Condition
		for _, d := range ds {
			if !d.Down {
				continue
			}
			down[d.Name] = true
			t, ok := since[d.Name]
			if !ok {
				since[d.Name], t = now, now
			}
			if now.Sub(t) < downFor {
				continue
			}
			cs = append(cs, Condition{Class: System, Severity: Warning, Key: "destination " + d.Name,
				Message: fmt.Sprintf("Destination %s has been down for %s", d.Name, roundDuration(now.Sub(t))),
				Detail: fmt.Sprintf("Every connection to %s has failed since %s; %d recipients wait for it. alerts.destination_down is %s.",
					d.Name, t.UTC().Format(time.RFC1123Z), d.Active, downFor),
				Next: fmt.Sprintf("mailgate hoststatus %s shows its addresses and counters; the mail log's \"Connection Error\" lines say why connections fail. When it is back, mailgate queue deliver-now %s retries at once.", d.Name, d.Name)})
		}
		for name := range since {
			if !down[name] {
				delete(since, name)
			}
		}
		slices.SortFunc(cs, func(a, b Condition) int { return cmp.Compare(a.Key, b.Key) })
		return cs
	}
}

// DiskCheck raises "disk-space" (Hardware) while the free space of the
// data directory's file system is below warnBelow (Warning), or below the
// spool's floor (Critical: MAIL FROM gets 452 4.3.1). A floor or a
// threshold of 0 leaves that level out.
func DiskCheck(read func() (free int64, ok bool), dir string, warnBelow, floor int64) Check {
	return func(_ context.Context, _ time.Time) []Condition {
		free, ok := read()
		if !ok {
			return nil
		}
		c := Condition{Class: Hardware, Key: "disk-space",
			Next: "Free space in " + dir + " (old rolled logs, the tracking store's retention) or grow the file system; mailgate status shows the queue's size."}
		switch {
		case floor > 0 && free < floor:
			c.Severity = Critical
			c.Message = fmt.Sprintf("Free disk space %s is below the floor of %s: new mail is refused", size(free), size(floor))
			c.Detail = fmt.Sprintf("%d bytes are free in %s; below min_free_space (%d bytes) MAIL FROM gets 452 4.3.1 Insufficient system storage.", free, dir, floor)
		case warnBelow > 0 && free < warnBelow:
			c.Severity = Warning
			c.Message = fmt.Sprintf("Free disk space %s is below %s", size(free), size(warnBelow))
			c.Detail = fmt.Sprintf("%d bytes are free in %s; alerts.disk_free_below is %d bytes, the floor where new mail is refused %d bytes.", free, dir, warnBelow, floor)
		default:
			return nil
		}
		return []Condition{c}
	}
}

// size is n bytes in binary units, for a subject.
func size(n int64) string {
	const unit = 1024
	switch {
	case n >= unit*unit*unit:
		return fmt.Sprintf("%.1f GiB", float64(n)/(unit*unit*unit))
	case n >= unit*unit:
		return fmt.Sprintf("%.1f MiB", float64(n)/(unit*unit))
	case n >= unit:
		return fmt.Sprintf("%.1f KiB", float64(n)/unit)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ProbeCheck raises "probe NAME" (Critical, in class) while p does not
// answer within timeout.
func ProbeCheck(p Prober, class Class, timeout time.Duration, next string) Check {
	return func(ctx context.Context, _ time.Time) []Condition {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := p.Probe(ctx)
		if err == nil {
			return nil
		}
		return []Condition{{Class: class, Severity: Critical, Key: "probe " + p.Name(),
			Message: fmt.Sprintf("%s is unreachable", p.Name()),
			Detail:  fmt.Sprintf("%s did not answer within %s: %v", p.Name(), timeout, err),
			Next:    next}}
	}
}

// LogFailures are a log writer's failure counters.
type LogFailures struct {
	WriteErrors uint64 // writes that failed
	LostLines   uint64 // lines those writes lost
	Dropped     uint64 // lines dropped, the buffer being full
	LastError   error
}

// LogCheck raises "mail-log PATH" (System, Critical) when the log's
// failure counters grow, and holds it until a write is seen to succeed:
// a round with no new failure in which the file at path changed size. (A
// quiet log proves nothing either way, so the condition stays; the
// alert's own lines are written to the log, which soon tells.)
func LogCheck(path string, read func() LogFailures) Check {
	var mu sync.Mutex
	var prev LogFailures
	var prevSize int64
	var failing bool
	var first LogFailures // the counters before the failures began
	return func(_ context.Context, _ time.Time) []Condition {
		f := read()
		var size int64
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		mu.Lock()
		grew := f.WriteErrors != prev.WriteErrors || f.LostLines != prev.LostLines || f.Dropped != prev.Dropped
		switch {
		case grew && !failing:
			failing, first = true, prev
		case !grew && failing && size != prevSize:
			failing = false // a write went through
		}
		prev, prevSize = f, size
		since := first
		mu.Unlock()
		if !failing {
			return nil
		}
		detail := fmt.Sprintf("Since the failures began: %d failed writes, %d lines lost, %d lines dropped (buffer full); since the start: %d, %d, %d.",
			f.WriteErrors-since.WriteErrors, f.LostLines-since.LostLines, f.Dropped-since.Dropped, f.WriteErrors, f.LostLines, f.Dropped)
		if f.LastError != nil {
			detail += "\nThe latest error: " + f.LastError.Error()
		}
		return []Condition{{Class: System, Severity: Critical, Key: "mail-log " + path,
			Message: "The mail log cannot be written: " + path,
			Detail:  detail,
			Next:    "Free space on the log's file system (or fix its permissions); the lines of the failing writes are lost, mail goes on. The tracking store catches up from the file, so it misses them too."}}
	}
}

// Certificate is a served certificate: its file and its parsed leaf.
type Certificate struct {
	File string
	Leaf *x509.Certificate
}

// CertificateCheck raises "certificate FILE" (System) for each certificate
// that expires within within (Warning) or has expired (Critical).
func CertificateCheck(certs []Certificate, within time.Duration) Check {
	return func(_ context.Context, now time.Time) []Condition {
		var cs []Condition
		for _, c := range certs {
			left := c.Leaf.NotAfter.Sub(now)
			cond := Condition{Class: System, Key: "certificate " + c.File,
				Next: "Renew the certificate, put it in place of " + c.File + " and restart the gateway (it reads its certificates at start)."}
			switch {
			case left <= 0:
				cond.Severity = Critical
				cond.Message = fmt.Sprintf("The TLS certificate %s has expired", c.File)
			case left < within:
				cond.Severity = Warning
				cond.Message = fmt.Sprintf("The TLS certificate %s expires in %d day(s)", c.File, int((left+24*time.Hour-1)/(24*time.Hour)))
			default:
				continue
			}
			cond.Detail = fmt.Sprintf("Subject %s, issuer %s, valid until %s; alerts.certificate_expiry is %s. Clients that check certificates refuse TLS with an expired one.",
				c.Leaf.Subject, c.Leaf.Issuer, c.Leaf.NotAfter.UTC().Format(time.RFC1123Z), within)
			cs = append(cs, cond)
		}
		return cs
	}
}

// ListenerDown is the condition of a listener whose accept loop ended
// with err: the gateway no longer takes connections on it. It is held
// (Alerter.Hold) until the gateway restarts.
func ListenerDown(name, addr string, err error) Condition {
	return Condition{Class: System, Severity: Critical, Key: "listener " + name,
		Message: fmt.Sprintf("Listener %s stopped accepting connections", name),
		Detail:  fmt.Sprintf("The accept loop of %s on %s ended: %v", name, addr, err),
		Next:    "Restart the gateway; mail to this listener's address is refused or waits at the senders until then."}
}

// roundDuration is d for a subject: to the minute from a minute on, to
// the second below.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
