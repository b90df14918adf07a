package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/quarantine"
)

// The quarantine commands, like the ESA's Policy, Virus and Outbreak
// quarantine pages: they talk to the running gateway over its control
// socket.

const quarantineUsage = `usage: mailgate quarantine <command> [--config FILE] [--json] [arguments]

commands:
  list [QUARANTINE]    the quarantines, and the messages in one (or all), oldest first
  show MID             one quarantined message: where it is held, its header and text (escaped)
  release MID [Q]      release it from quarantine Q, or from all it is in: it is scanned
                       again by the stages after the one that quarantined it, then delivered
  delete MID [Q]       delete it from quarantine Q, or from all: it is not delivered
`

func quarantineCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, quarantineUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "show", "release", "delete":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, quarantineUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "mailgate quarantine: unknown command %q\n%s", sub, quarantineUsage)
		return 2
	}
	f := newControlFlags("quarantine "+sub, stderr)
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	var mid uint64
	q := ""
	switch sub {
	case "list":
		if len(pos) > 1 {
			return usageErr(stderr, "usage: mailgate quarantine list [QUARANTINE]")
		}
		if len(pos) == 1 {
			q = pos[0]
		}
	case "show":
		if len(pos) != 1 {
			return usageErr(stderr, "usage: mailgate quarantine show MID")
		}
	default:
		if len(pos) < 1 || len(pos) > 2 {
			return usageErr(stderr, "usage: mailgate quarantine "+sub+" MID [QUARANTINE]")
		}
		if len(pos) == 2 {
			q = pos[1]
		}
	}
	if sub != "list" {
		if mid, err = strconv.ParseUint(pos[0], 10, 64); err != nil {
			fmt.Fprintf(stderr, "mailgate quarantine %s: %q is not a MID\n", sub, pos[0])
			return 2
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
		l, err := c.Quarantines(ctx, q)
		if err != nil {
			return fail(stderr, quarantineErr(err))
		}
		if f.json {
			return printJSON(stdout, l)
		}
		printQuarantines(stdout, l, q, time.Now())
	case "show":
		d, err := c.QuarantineShow(ctx, mid)
		if err != nil {
			return fail(stderr, quarantineErr(err))
		}
		if f.json {
			return printJSON(stdout, d)
		}
		printQuarantined(stdout, d, time.Now())
	default:
		if sub == "release" {
			err = c.QuarantineRelease(ctx, mid, q)
		} else {
			err = c.QuarantineDelete(ctx, mid, q)
		}
		if err != nil {
			return fail(stderr, quarantineErr(err))
		}
		from := "every quarantine it was in"
		if q != "" {
			from = fmt.Sprintf("quarantine %q", q)
		}
		if f.json {
			return printJSON(stdout, control.QuarantineAction{MID: mid, Quarantine: q})
		}
		fmt.Fprintf(stdout, "MID %d %sd from %s.\n", mid, sub, from)
	}
	return 0
}

// quarantineErr says what it means that the gateway does not serve the
// quarantine paths: it has no quarantines at all (no mail policies). A 404
// of a served path (a message not in quarantine) keeps its own text.
func quarantineErr(err error) error {
	if control.IsUnserved(err) {
		return fmt.Errorf("the gateway has no quarantines (no mail_policies in its configuration)")
	}
	return err
}

func printQuarantines(out io.Writer, l control.QuarantineList, only string, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Quarantine\tMessages\tSize\tLimit\tRetention\tOn expiry")
	for _, q := range l.Quarantines {
		if only != "" && q.Name != only {
			continue
		}
		limit, retention := "none", "none"
		if q.MaxSize > 0 {
			limit = humanBytes(q.MaxSize)
		}
		if q.Retention > 0 {
			retention = ago(q.Retention)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", q.Name, q.Messages, humanBytes(q.Bytes), limit, retention, q.OnExpiry)
	}
	tw.Flush()
	if len(l.Messages) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MID\tQuarantine\tSince\tExpires\tBytes\tSender\tRecipients\tSubject\tReason")
	for _, m := range l.Messages {
		for _, h := range m.In {
			if only != "" && h.Quarantine != only {
				continue
			}
			exp := "never"
			if !h.Expires.IsZero() {
				exp = fmt.Sprintf("in %s (%s)", ago(h.Expires.Sub(now)), h.OnExpiry)
			}
			// maillog.Escape writes a tab as \t: a Subject keeps to its
			// column.
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t<%s>\t%s\t%s\t%s\n", m.MID, h.Quarantine, h.Since.Format(time.Stamp), exp, m.Size,
				maillog.Escape(m.From), maillog.Escape(strings.Join(m.Recipients, ",")), maillog.Escape(m.Subject), maillog.Escape(h.Reason))
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "(%d message(s))\n", len(l.Messages))
}

func printQuarantined(out io.Writer, d quarantine.Detail, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MID:\t%d\n", d.MID)
	fmt.Fprintf(tw, "Received:\t%s\n", d.Received.Format(time.ANSIC))
	fmt.Fprintf(tw, "Sender:\t<%s>\n", maillog.Escape(d.From))
	fmt.Fprintf(tw, "Recipients:\t%s\n", maillog.Escape(strings.Join(d.Recipients, ", ")))
	fmt.Fprintf(tw, "Size:\t%d bytes\n", d.Size)
	for _, h := range d.In {
		exp := "never expires"
		if !h.Expires.IsZero() {
			exp = fmt.Sprintf("expires in %s (%s)", ago(h.Expires.Sub(now)), h.OnExpiry)
		}
		fmt.Fprintf(tw, "In quarantine:\t%q since %s, %s: %s\n", h.Quarantine, h.Since.Format(time.ANSIC), exp, maillog.Escape(h.Reason))
	}
	if d.Deleted {
		fmt.Fprintf(tw, "Deleted:\tfrom another quarantine: it will not be delivered\n")
	}
	tw.Flush()
	fmt.Fprintln(out)
	for _, h := range d.Header {
		fmt.Fprintf(out, "%s: %s\n", h.Name, h.Value)
	}
	fmt.Fprintln(out)
	if d.TextType == "" {
		fmt.Fprintln(out, "(no text part)")
	} else {
		fmt.Fprintf(out, "--- %s ---\n%s\n", d.TextType, d.Text)
	}
	if d.Truncated {
		fmt.Fprintln(out, "(cut: the message is longer)")
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
