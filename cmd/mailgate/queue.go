package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/workqueue"
)

// The queue commands talk to the running gateway over its control socket,
// found through the configuration's data directory, like the ESA CLI's
// workqueue, showrecipients, delivernow, bouncerecipients and
// deleterecipients.

const queueUsage = `usage: mailgate queue <command> [--config FILE] [--json] [arguments]

commands:
  list [--domain D] [--limit N]  the queued messages, oldest first, one line per recipient
  show MID                       one message: envelope, header, each recipient's state
  deliver-now [DOMAIN]           retry now what waits for a retry (one destination, or all)
  bounce MID...                  bounce the recipients not final yet (a DSN to the sender)
  delete MID...                  remove the recipients not final yet (no DSN)
`

// cliTimeout bounds one command: listing a large queue reads it from disk.
const cliTimeout = 5 * time.Minute

// controlFlags are the flags every queue command takes.
type controlFlags struct{ *configFlags }

func newControlFlags(name string, stderr io.Writer) *controlFlags {
	f := &controlFlags{newConfigFlags(name, stderr)}
	f.fs.BoolVar(&f.json, "json", false, "print JSON")
	return f
}

// client finds the gateway's control socket through the configuration.
func (f *controlFlags) client() (*control.Client, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	return control.NewClient(control.SocketPath(cfg.DataDir)), nil
}

// parseInterspersed parses flags given before and after the positional
// arguments ("show 12 --json" as well as "show --json 12").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func workqueueCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("workqueue", stderr)
	if pos, err := parseInterspersed(f.fs, args); err != nil || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: mailgate workqueue [--config FILE] [--json]")
		return 2
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	w, err := c.WorkQueue(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	// The work queue (mail policies), when the gateway has one.
	var work *workqueue.Status
	switch st, err := c.Work(ctx); {
	case err == nil:
		work = &st
	case !control.IsUnserved(err):
		return fail(stderr, err)
	}
	if f.json {
		return printJSON(stdout, struct {
			outbound.WorkQueue
			Work *workqueue.Status `json:"work,omitempty"`
		}{w, work})
	}
	now := time.Now()
	printWorkQueue(stdout, w, now)
	if work != nil {
		fmt.Fprintln(stdout)
		printWork(stdout, *work, now)
	}
	return 0
}

// printWork prints the work queue's part of workqueue: what waits for the
// mail policies' stages, and how fast messages go through.
func printWork(out io.Writer, w workqueue.Status, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Work queue (mail policies):\t%d messages, %d being worked on, %d waiting to retry a stage (%d workers)\n", w.Messages, w.Working, w.Retrying, w.Workers)
	if !w.Oldest.IsZero() {
		fmt.Fprintf(tw, "Oldest in the work queue:\treceived %s (%s ago)\n", w.Oldest.Format(time.ANSIC), ago(now.Sub(w.Oldest)))
	}
	fmt.Fprintf(tw, "Work queue rate:\t%.2f in, %.2f out per second over the last minute; %d in, %d out since start\n", w.Rate.In, w.Rate.Out, w.In, w.Out)
	tw.Flush()
}

func printWorkQueue(out io.Writer, w outbound.WorkQueue, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	state := "running"
	if w.Suspended {
		state = "suspended"
	}
	fmt.Fprintf(tw, "Status as of:\t%s\n", now.Format(time.ANSIC))
	fmt.Fprintf(tw, "Deliveries:\t%s\n", state)
	fmt.Fprintf(tw, "Messages in queue:\t%d\n", w.Messages)
	fmt.Fprintf(tw, "Recipients not final:\t%d\n", w.Recipients)
	if w.OldestMID != 0 {
		fmt.Fprintf(tw, "Oldest message:\tMID %d, received %s (%s ago)\n", w.OldestMID, w.Oldest.Format(time.ANSIC), ago(now.Sub(w.Oldest)))
	}
	fmt.Fprintf(tw, "Messages in memory:\t%d (peak %d), %d waiting in the spool for room\n", w.Active, w.PeakActive, w.Waiting)
	fmt.Fprintf(tw, "Connections out:\t%d\n", w.Connections)
	fmt.Fprintf(tw, "Since start:\t%d delivered, %d soft bounced, %d hard bounced (recipients)\n", w.Delivered, w.Delayed, w.Bounced)
	tw.Flush()
	if len(w.Destinations) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Destination\tActive Recip.\tReady\tConn. Out\tDeliv. Recip.\tSoft Bounced\tHard Bounced\t")
	for _, d := range w.Destinations {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", maillog.Escape(d.Name), d.Recipients, d.Ready, d.Connections, d.Delivered, d.Delayed, d.Bounced)
	}
	tw.Flush()
}

// ago is a duration as an administrator reads it: "3h12m", "45s".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

func queueCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	f := newControlFlags("queue "+sub, stderr)
	domain := ""
	limit := 0
	switch sub {
	case "list":
		f.fs.StringVar(&domain, "domain", "", "only the messages with recipients for this `domain` (or route)")
		f.fs.IntVar(&limit, "limit", 1000, "show at most `N` messages (0: all)")
	case "show", "deliver-now", "bounce", "delete":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, queueUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "mailgate queue: unknown command %q\n%s", sub, queueUsage)
		return 2
	}
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	var mids []uint64
	switch sub {
	case "list":
		if len(pos) > 0 {
			return usageErr(stderr, "usage: mailgate queue list [--domain D] [--limit N]")
		}
	case "deliver-now":
		if len(pos) > 1 {
			return usageErr(stderr, "usage: mailgate queue deliver-now [DOMAIN]")
		}
		if len(pos) == 1 {
			domain = pos[0]
		}
	default:
		if len(pos) == 0 || sub == "show" && len(pos) > 1 {
			if sub == "show" {
				return usageErr(stderr, "usage: mailgate queue show MID")
			}
			return usageErr(stderr, "usage: mailgate queue "+sub+" MID...")
		}
		for _, p := range pos {
			mid, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "mailgate queue %s: %q is not a MID\n", sub, p)
				return 2
			}
			mids = append(mids, mid)
		}
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()

	switch sub {
	case "list":
		l, err := c.Messages(ctx, domain, limit)
		if err != nil {
			return fail(stderr, err)
		}
		if f.json {
			return printJSON(stdout, l)
		}
		printList(stdout, l, time.Now())
	case "show":
		m, err := c.Message(ctx, mids[0])
		if err != nil {
			return fail(stderr, err)
		}
		if f.json {
			return printJSON(stdout, m)
		}
		printMessage(stdout, m, time.Now())
	case "deliver-now":
		r, err := c.DeliverNow(ctx, domain)
		if err != nil {
			return fail(stderr, err)
		}
		if f.json {
			return printJSON(stdout, r)
		}
		what := "all destinations"
		if domain != "" {
			what = domain
		}
		fmt.Fprintf(stdout, "Delivering now (%s): %d transaction(s) of messages in memory, %d message(s) taken back from the spool.\n", what, r.Ready, r.Woken)
	case "bounce", "delete":
		failed := 0
		var done []control.Removed
		for _, mid := range mids {
			var r control.Removed
			var err error
			if sub == "bounce" {
				r, err = c.Bounce(ctx, mid)
			} else {
				r, err = c.Delete(ctx, mid)
			}
			if err != nil {
				fmt.Fprintf(stderr, "mailgate: MID %d: %v\n", mid, err)
				failed++
				if !isAnswer(err) {
					break // no gateway to ask about the others either
				}
				continue
			}
			done = append(done, r)
			if !f.json {
				fmt.Fprintf(stdout, "MID %d: %d recipient(s) %sd.\n", r.MID, r.Recipients, sub)
			}
		}
		if f.json {
			printJSON(stdout, done)
		}
		if failed > 0 {
			return 1
		}
	}
	return 0
}

// isAnswer reports whether err is the gateway's answer, as opposed to no
// answer at all.
func isAnswer(err error) bool {
	var e *control.Error
	return errors.As(err, &e)
}

func printList(out io.Writer, l control.MessageList, now time.Time) {
	if l.Total == 0 {
		fmt.Fprintln(out, "The queue is empty.")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MID\tRID\tReceived\tBytes\tSender\tRecipient\tStatus\tTries\tNext try\tLast reply")
	for _, m := range l.Messages {
		first := true
		for _, r := range m.Recipients {
			if r.Status == "delivered" || r.Status == "bounced" {
				continue
			}
			mid, received, size, from := "", "", "", ""
			if first {
				mid, received, size, from = strconv.FormatUint(m.MID, 10), m.Received.Format("Jan _2 15:04:05"), strconv.Itoa(m.Size), "<"+maillog.Escape(m.From)+">"
				first = false
			}
			fmt.Fprintf(tw, "%s\t[%d]\t%s\t%s\t%s\t<%s>\t%s\t%d\t%s\t%s\n", mid, r.RID, received, size, from, maillog.Escape(r.Addr),
				r.Status, r.Attempts, nextTry(r, now), maillog.Escape(oneLine(r.Reason, 60)))
		}
	}
	tw.Flush()
	if l.Total > len(l.Messages) {
		fmt.Fprintf(out, "(%d of %d messages shown; --limit 0 shows all)\n", len(l.Messages), l.Total)
	} else {
		fmt.Fprintf(out, "(%d message%s)\n", l.Total, map[bool]string{true: "s"}[l.Total != 1])
	}
}

func nextTry(r outbound.QueuedRecipient, now time.Time) string {
	switch {
	case r.Status == "delivering":
		return "under way"
	case r.Next.IsZero() || !r.Next.After(now):
		return "now"
	}
	return "in " + ago(r.Next.Sub(now))
}

// oneLine shortens a reply for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func printMessage(out io.Writer, m outbound.QueuedMessage, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MID:\t%d\n", m.MID)
	fmt.Fprintf(tw, "ICID:\t%d\n", m.ICID)
	fmt.Fprintf(tw, "Received:\t%s (%s ago)\n", m.Received.Format(time.ANSIC), ago(now.Sub(m.Received)))
	if m.ClientIP != "" {
		host := m.ClientHost
		if host == "" {
			host = "unknown"
		}
		fmt.Fprintf(tw, "From host:\t%s (%s) on listener %s\n", m.ClientIP, maillog.Escape(host), m.Listener)
	}
	fmt.Fprintf(tw, "Sender:\t<%s>\n", maillog.Escape(m.From))
	fmt.Fprintf(tw, "Subject:\t\"%s\"\n", maillog.Escape(m.Subject))
	fmt.Fprintf(tw, "Message-ID:\t%s\n", maillog.Escape(m.MessageID))
	fmt.Fprintf(tw, "Size:\t%d bytes (as queued: the message with the Received header added; the log's \"ready\" counts it as received)\n", m.Size)
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RID\tRecipient\tDestination\tStatus\tTries\tLast try\tNext try\tLast reply")
	for _, r := range m.Recipients {
		last, next := "-", "-"
		if !r.Last.IsZero() {
			last = r.Last.Format("Jan _2 15:04:05")
		}
		if r.Status == "pending" || r.Status == "delivering" {
			next = nextTry(r, now)
		}
		fmt.Fprintf(tw, "[%d]\t<%s>\t%s\t%s\t%d\t%s\t%s\t%s\n", r.RID, maillog.Escape(r.Addr), maillog.Escape(r.Destination), r.Status, r.Attempts, last, next, maillog.Escape(oneLine(r.Reason, 200)))
	}
	tw.Flush()
}

func printJSON(out io.Writer, v any) int {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "mailgate:", err)
	return 1
}

// usageErr prints a command's usage text, which begins with "usage:", and
// returns the exit status of a misused command.
func usageErr(stderr io.Writer, usage string) int {
	fmt.Fprint(stderr, strings.TrimSuffix(usage, "\n")+"\n")
	return 2
}
