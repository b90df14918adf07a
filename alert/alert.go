// Package alert watches the gateway's health and tells its administrators
// when something needs them, as the ESA's alerts do: conditions evaluated
// periodically (a queue too old or too large, a destination down, the disk
// filling, a scanner or the tracking store unreachable, the mail log not
// written, a listener's accept loop dead, a certificate about to expire),
// each sent as mail through the gateway's own queue in the ESA's subject
// form ("Warning-mx.example.com: (System) ..."), repeats of one condition
// suppressed for a configurable interval, a "cleared" mail when it ends;
// logged (the ESA's "A System/Warning alert was sent to ..." line and
// slog) and counted.
//
// The package knows nothing of where a condition's figures come from:
// each Check is a function the wiring builds over a gauge (checks.go has
// the gateway's), so that alert/ depends only on the spool it commits to
// and the event vocabulary.
package alert

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/queue"
)

// Severity is the ESA's alert severity.
type Severity uint8

const (
	Critical Severity = iota + 1
	Warning
	Information
)

var severityNames = [...]string{Critical: "Critical", Warning: "Warning", Information: "Information"}

func (s Severity) String() string {
	if s >= Critical && s <= Information {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// Severities lists the severities, most severe first.
var Severities = []Severity{Critical, Warning, Information}

// Class is the ESA's alert class: what part of the appliance the alert is
// about. mailgate uses the ESA's names where one fits (ESA-PIPELINE 5.11):
// System for the queue, delivery, logs, listeners, certificates and the
// tracking store; Hardware for the disk; Anti-Virus and Anti-Spam for the
// scanners of those kinds.
type Class string

const (
	System    Class = "System"
	Hardware  Class = "Hardware"
	AntiVirus Class = "Anti-Virus"
	AntiSpam  Class = "Anti-Spam"
)

// Classes lists the classes the gateway's checks raise.
var Classes = []Class{System, Hardware, AntiVirus, AntiSpam}

// Condition is a problem that holds now.
type Condition struct {
	Class    Class
	Severity Severity
	// Key names the condition within its class ("queue-age",
	// "destination example.net"): repeats are suppressed, and the end of
	// the condition found, by class and key.
	Key string
	// Message is the subject's short message, one line.
	Message string
	// Detail says what was measured, against which threshold; Next what
	// the administrator should do. Both go in the body.
	Detail string
	Next   string
}

// id is the condition's identity for suppression.
func (c Condition) id() string { return string(c.Class) + "\x00" + c.Key }

// A Check looks at one part of the gateway and returns the conditions that
// hold now; none when all is well. It must return within ctx.
type Check func(ctx context.Context, now time.Time) []Condition

// A Prober is a service the gateway depends on that can be asked whether
// it answers: a scanner (clamd, rspamd, spamd), the tracking store.
// Probe returns nil when it does, within ctx.
type Prober interface {
	Name() string
	Probe(ctx context.Context) error
}

// Defaults of Options.
const (
	DefaultInterval       = 30 * time.Second
	DefaultRepeatInterval = time.Hour
	// checkTimeout bounds one round of checks: a probe that hangs must
	// not stop the others from being evaluated next time.
	checkTimeout = 20 * time.Second
	// commitTimeout bounds an alert's commit to the spool.
	commitTimeout = 10 * time.Second
)

// Options configure an Alerter.
type Options struct {
	Hostname string   // the subject's host name, and the default From's domain
	From     string   // the From of the alert mail; "" for mailer-daemon@Hostname
	To       []string // recipients; none: alerts are logged and counted only
	Version  string   // "mailgate 1.2.3", in the body

	Interval       time.Duration // between two rounds of checks; 0: DefaultInterval
	RepeatInterval time.Duration // the least time between two alerts of one condition; 0: DefaultRepeatInterval
	Checks         []Check

	// The gateway's queue: the alert is committed to Spool under a MID
	// from IDs, its lines go to Events, and Enqueue hands it to delivery,
	// as a bounce is.
	Spool   *queue.Spool
	IDs     *queue.Counters
	Enqueue func(*queue.Envelope)
	Events  event.Sink

	Logger *slog.Logger
}

// Alerter evaluates the checks every Interval and sends the alerts.
type Alerter struct {
	o   Options
	log *slog.Logger

	round sync.Mutex // held by a round of checks: one at a time

	mu     sync.Mutex
	active map[string]*state    // conditions that held at the last round, by id
	held   map[string]Condition // conditions raised by Hold, by id
	last   map[string]time.Time // when each condition was last sent, by id
	counts map[countKey]uint64  // alerts raised, by class and severity
	failed uint64               // alerts that could not be committed
	supp   uint64               // repeats suppressed

	stop chan struct{}
	done chan struct{}
}

type state struct {
	c     Condition
	since time.Time
	sent  bool // an alert of it went out (so its end is told)
}

type countKey struct {
	Class    Class
	Severity Severity
}

// New makes an Alerter; Start runs it.
func New(o Options) *Alerter {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.RepeatInterval <= 0 {
		o.RepeatInterval = DefaultRepeatInterval
	}
	if o.From == "" {
		o.From = "mailer-daemon@" + o.Hostname
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Events == nil {
		o.Events = event.Discard
	}
	return &Alerter{o: o, log: o.Logger, active: map[string]*state{}, held: map[string]Condition{},
		last: map[string]time.Time{}, counts: map[countKey]uint64{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs the checks every Interval until Stop, the first round at once.
func (a *Alerter) Start() {
	go a.run()
}

func (a *Alerter) run() {
	defer close(a.done)
	t := time.NewTicker(a.o.Interval)
	defer t.Stop()
	for {
		a.Evaluate(time.Now())
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// Stop ends the rounds; a round under way finishes first.
func (a *Alerter) Stop() {
	close(a.stop)
	<-a.done
}

// Hold raises a condition that an event announced (a listener's accept
// loop died): it holds until Release. Hold runs a round itself, so that
// the alert is in the spool when it returns, even if the gateway stops
// next.
func (a *Alerter) Hold(c Condition) {
	a.mu.Lock()
	a.held[c.id()] = c
	a.mu.Unlock()
	a.Evaluate(time.Now())
}

// Release ends a condition raised by Hold, and runs a round: its end is
// told at once.
func (a *Alerter) Release(class Class, key string) {
	a.mu.Lock()
	delete(a.held, Condition{Class: class, Key: key}.id())
	a.mu.Unlock()
	a.Evaluate(time.Now())
}

// Evaluate runs the checks once, as of now, and sends what is due: a
// condition that begins is sent at once, unless one of the same class
// and key was sent less than RepeatInterval ago (a flapping condition);
// one that holds is sent again every RepeatInterval, or at once when its
// severity rises; one that ends is told by an Information alert "cleared",
// when it had been sent. Rounds run one at a time.
func (a *Alerter) Evaluate(now time.Time) {
	a.round.Lock()
	defer a.round.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var found []Condition
	for _, check := range a.o.Checks {
		found = append(found, check(ctx, now)...)
	}
	a.mu.Lock()
	for _, c := range a.held {
		found = append(found, c)
	}
	var send []Condition
	seen := map[string]bool{}
	for _, c := range found {
		id := c.id()
		if seen[id] {
			continue // two checks (or a check and a Hold) of one condition: the first
		}
		seen[id] = true
		st := a.active[id]
		last, sentBefore := a.last[id]
		due := !sentBefore || now.Sub(last) >= a.o.RepeatInterval
		switch {
		case st == nil:
			st = &state{c: c, since: now}
			a.active[id] = st
		case c.Severity < st.c.Severity:
			due = true // worse than what was sent: tell at once
		}
		st.c = c
		if due {
			st.sent = true
			a.last[id] = now
			send = append(send, c)
		} else {
			a.supp++
		}
	}
	for id, st := range a.active {
		if seen[id] {
			continue
		}
		delete(a.active, id)
		if st.sent {
			send = append(send, cleared(st.c, st.since, now))
		}
	}
	a.mu.Unlock()
	slices.SortStableFunc(send, func(x, y Condition) int { return int(x.Severity) - int(y.Severity) })
	for _, c := range send {
		a.send(c, now)
	}
}

// cleared is the alert that tells that c ended: Information, in c's class.
func cleared(c Condition, since, now time.Time) Condition {
	return Condition{Class: c.Class, Severity: Information, Key: c.Key, Message: "Cleared: " + c.Message,
		Detail: fmt.Sprintf("The condition held from %s to %s (%s); it no longer does.\nIt was: %s",
			since.UTC().Format(time.RFC1123Z), now.UTC().Format(time.RFC1123Z), now.Sub(since).Round(time.Second), c.Detail),
		Next: "Nothing: this tells that the alert above ended."}
}

// Subject is the alert's subject in the ESA's form:
// "[severity]-[hostname]: ([class]) message".
func Subject(c Condition, hostname string) string {
	return fmt.Sprintf("%s-%s: (%s) %s", c.Severity, hostname, c.Class, c.Message)
}

// send counts, logs and mails one alert.
func (a *Alerter) send(c Condition, now time.Time) {
	subject := Subject(c, a.o.Hostname)
	a.mu.Lock()
	a.counts[countKey{c.Class, c.Severity}]++
	a.mu.Unlock()
	level := slog.LevelWarn
	switch c.Severity {
	case Critical:
		level = slog.LevelError
	case Information:
		level = slog.LevelInfo
	}
	a.log.Log(context.Background(), level, "mailgate: alert", "class", string(c.Class), "severity", c.Severity.String(),
		"key", c.Key, "subject", subject, "detail", c.Detail)
	if len(a.o.To) == 0 || a.o.Spool == nil {
		return
	}
	if err := a.commit(c, subject, now); err != nil {
		a.mu.Lock()
		a.failed++
		a.mu.Unlock()
		a.log.Error("mailgate: alert not sent", "subject", subject, "err", err)
	}
}

// commit writes the alert to the spool as a generated message (null
// sender, ICID 0, as a bounce), logs its lines and hands it to delivery.
func (a *Alerter) commit(c Condition, subject string, now time.Time) error {
	mid, err := a.o.IDs.Next(queue.MID)
	if err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	msg := buildMessage(a.o, c, subject, mid, now)
	env := &queue.Envelope{MID: mid, From: "", Received: now}
	if !isASCII(string(msg)) {
		env.BodyType = "8BITMIME"
	}
	for i, to := range a.o.To {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: to})
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if err := a.o.Spool.Commit(ctx, env, msg); err != nil {
		return fmt.Errorf("alert: commit MID %d: %w", mid, err)
	}
	emit := func(ev event.Event) { a.o.Events.Emit(event.Entry{Time: now, Level: event.Info, Event: ev}) }
	emit(event.StartMID{MID: mid, ICID: 0})
	emit(event.MailFrom{MID: mid, ICID: 0, From: ""})
	for _, r := range env.Rcpts {
		emit(event.RcptTo{MID: mid, ICID: 0, RID: r.RID, To: r.Addr})
	}
	emit(event.Subject{MID: mid, Subject: subject, Quote: '\''})
	emit(event.Ready{MID: mid, Bytes: int64(len(msg)), From: ""})
	for _, to := range a.o.To {
		emit(event.AlertSent{Class: string(c.Class), Severity: c.Severity.String(), To: to, Subject: subject})
	}
	emit(event.Queued{MID: mid})
	if a.o.Enqueue != nil {
		a.o.Enqueue(env)
	}
	return nil
}

// Count is the number of alerts raised of one class and severity.
type Count struct {
	Class    Class
	Severity Severity
	N        uint64
}

// Counts returns the alerts raised since New, by class and severity (each
// of Classes and Severities, zero included, so that a metric of them is
// declared before it moves), with those that could not be committed and
// the repeats suppressed. An alert counts once, however many recipients
// it has, and whether or not it could be mailed.
func (a *Alerter) Counts() (counts []Count, failed, suppressed uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cl := range Classes {
		for _, s := range Severities {
			counts = append(counts, Count{Class: cl, Severity: s, N: a.counts[countKey{cl, s}]})
		}
	}
	for k, n := range a.counts {
		if !slices.Contains(Classes, k.Class) {
			counts = append(counts, Count{Class: k.Class, Severity: k.Severity, N: n})
		}
	}
	return counts, a.failed, a.supp
}

// Active returns the conditions that held at the last round.
func (a *Alerter) Active() []Condition {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Condition, 0, len(a.active))
	for _, st := range a.active {
		out = append(out, st.c)
	}
	slices.SortFunc(out, func(x, y Condition) int {
		return cmp.Or(cmp.Compare(x.Class, y.Class), cmp.Compare(x.Key, y.Key))
	})
	return out
}
