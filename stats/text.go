package stats

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/outbound"
)

// The text layouts of the ESA's status, status detail, tophosts,
// hoststatus and rate (ESA-PIPELINE.md 5.1-5.4): its labels, in its order,
// with its sub-headings. Lines for what mailgate has not (RAM and CPU
// gauges, quarantines, filter hard bounces, unsubscribe hits) are left out
// rather than shown as 0.

// TimeLayout is the ESA's date in status: "Thu Oct 21 14:33:27 2004 PDT".
const TimeLayout = "Mon Jan _2 15:04:05 2006 MST"

// labelWidth is the column of the values: "Status as of:" and its padding.
const labelWidth = 31

// line is one row of a section: a sub-heading (no counter) or a counter
// at an indent.
type line struct {
	indent int
	label  string
	c      Counter
	head   bool
}

func heading(indent int, label string) line        { return line{indent: indent, label: label, head: true} }
func row(indent int, label string, c Counter) line { return line{indent: indent, label: label, c: c} }

var counterLines = []line{
	heading(2, "Receiving"),
	row(4, "Messages Received", InjMsgs),
	row(4, "Recipients Received", InjRecips),
	row(4, "Gen. Bounce Recipients", GenBounceRecips),
	heading(2, "Rejection"),
	row(4, "Rejected Recipients", RejectedRecips),
	row(4, "Dropped Messages", DroppedMsgs),
	heading(2, "Queue"),
	row(4, "Soft Bounced Events", SoftBouncedEvts),
	heading(2, "Completion"),
	row(4, "Completed Recipients", CompletedRecips),
	row(6, "Hard Bounced Recipients", HardBouncedRecips),
	row(8, "DNS Hard Bounces", DNSHardBounces),
	row(8, "5XX Hard Bounces", HardBounces5XX),
	row(8, "Expired Hard Bounces", ExpiredHardBounces),
	row(8, "Other Hard Bounces", OtherHardBounces),
	row(6, "Delivered Recipients", DeliveredRecips),
	row(6, "Deleted Recipients", DeletedRecips),
	heading(2, "Connections"),
	row(4, "Connections In", ConnIn),
	row(4, "Connections Out", ConnOut),
	heading(2, "Domain Keys"),
	row(4, "DomainKeys Signed Msgs", DKSignedMsgs),
}

var rateLines = []line{
	heading(2, "Receiving"),
	row(4, "Messages Received", InjMsgs),
	row(4, "Recipients Received", InjRecips),
	heading(2, "Queue"),
	row(4, "Soft Bounced Events", SoftBouncedEvts),
	heading(2, "Completion"),
	row(4, "Completed Recipients", CompletedRecips),
	row(6, "Hard Bounced Recipients", HardBouncedRecips),
	row(6, "Delivered Recipients", DeliveredRecips),
}

func label(indent int, s string) string { return strings.Repeat(" ", indent) + s }

// WriteStatus writes status (or status detail, when s has rates) in the
// ESA's layout, times in loc.
func WriteStatus(w io.Writer, s Status, loc *time.Location) {
	p := func(l, v string) { fmt.Fprintf(w, "%-*s%s\n", labelWidth, l, v) }
	p("Status as of:", s.AsOf.In(loc).Format(TimeLayout))
	p("Up since:", fmt.Sprintf("%s (%s)", s.UpSince.In(loc).Format(TimeLayout), Short(s.AsOf.Sub(s.UpSince))))
	if s.LastReset.IsZero() {
		p("Last counter reset:", "Never")
	} else {
		p("Last counter reset:", s.LastReset.In(loc).Format(TimeLayout))
	}
	p("System status:", s.System)
	if s.Oldest == nil {
		p("Oldest Message:", "No Messages")
	} else {
		p("Oldest Message:", Long(s.AsOf.Sub(s.Oldest.Received)))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-*s%14s%14s%14s\n", labelWidth, "Counters:", "Reset", "Uptime", "Lifetime")
	for _, l := range counterLines {
		if l.head {
			fmt.Fprintln(w, label(l.indent, l.label))
			continue
		}
		r := s.Counter(l.c)
		fmt.Fprintf(w, "%-*s%14s%14s%14s\n", labelWidth, label(l.indent, l.label), Comma(r.Reset), Comma(r.Uptime), Comma(r.Lifetime))
	}
	fmt.Fprintln(w, label(2, "Current IDs"))
	fmt.Fprintf(w, "%-*s%14d\n", labelWidth, label(4, "Message ID (MID)"), s.IDs.MID)
	fmt.Fprintf(w, "%-*s%14d\n", labelWidth, label(4, "Injection Conn. ID (ICID)"), s.IDs.ICID)
	fmt.Fprintf(w, "%-*s%14d\n", labelWidth, label(4, "Delivery Conn. ID (DCID)"), s.IDs.DCID)
	if len(s.Rates) > 0 {
		rates := map[string]RateRow{}
		for _, r := range s.Rates {
			rates[r.Name] = r
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%-*s%14s%14s%14s\n", labelWidth, "Rates (Events Per Hour):", "1-Minute", "5-Minutes", "15-Minutes")
		for _, l := range rateLines {
			if l.head {
				fmt.Fprintln(w, label(l.indent, l.label))
				continue
			}
			r := rates[l.c.String()]
			fmt.Fprintf(w, "%-*s%14s%14s%14s\n", labelWidth, label(l.indent, l.label), Comma(r.Last1), Comma(r.Last5), Comma(r.Last15))
		}
	}
	g := s.Gauges
	gauge := func(indent int, l string, v string) { fmt.Fprintf(w, "%-*s%14s\n", labelWidth, label(indent, l), v) }
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-*s%14s\n", labelWidth, "Gauges:", "Current")
	fmt.Fprintln(w, label(2, "Connections"))
	gauge(4, "Current Inbound Conn.", Comma(uint64(g.ConnIn)))
	gauge(4, "Current Outbound Conn.", Comma(uint64(g.ConnOut)))
	fmt.Fprintln(w, label(2, "Queue"))
	gauge(4, "Active Recipients", Comma(uint64(g.Active)))
	gauge(6, "Unattempted Recipients", Comma(uint64(g.Unattempted)))
	gauge(6, "Attempted Recipients", Comma(uint64(g.Attempted)))
	gauge(4, "Messages In Work Queue", Comma(uint64(g.WorkQueue)))
	gauge(4, "Destinations In Memory", Comma(uint64(g.Destinations)))
	gauge(4, "Kilobytes Used", Comma(uint64(g.KilobytesUsed)))
	if g.KilobytesFree != nil {
		gauge(4, "Kilobytes Free", Comma(uint64(*g.KilobytesFree)))
	}
	if s.SaveError != "" {
		fmt.Fprintf(w, "\nWarning: lifetime counters not saved: %s\n", s.SaveError)
	}
}

// WriteTopHosts writes tophosts: the ESA's columns, a row per destination
// numbered in the sort order, "*" after the number of one that is down.
func WriteTopHosts(w io.Writer, hosts []Host, key string) {
	fmt.Fprintf(w, "Status of active hosts, sorted by %s\n\n", sortTitle(key))
	width := len("Recipient Host")
	for _, h := range hosts {
		width = max(width, len(h.Name)+5)
	}
	fmt.Fprintf(w, "%-*s%15s%12s%16s%15s%15s\n", width, "Recipient Host", "Active Recip.", "Conn. Out", "Deliv. Recip.", "Soft Bounced", "Hard Bounced")
	for i, h := range hosts {
		mark := " "
		if h.Down {
			mark = "*"
		}
		name := fmt.Sprintf("%d%s  %s", i+1, mark, h.Name)
		fmt.Fprintf(w, "%-*s%15s%12s%16s%15s%15s\n", width, name, Comma(uint64(h.Gauges.Active)), Comma(uint64(h.Gauges.ConnectionsOut)),
			Comma(h.Get(DeliveredRecips)), Comma(h.Get(SoftBouncedEvts)), Comma(h.Get(HardBouncedRecips)))
	}
}

func sortTitle(key string) string {
	switch key {
	case SortConnOut:
		return "connections out"
	case SortDelivered:
		return "delivered recipients"
	case SortSoft:
		return "soft bounced events"
	case SortHard:
		return "hard bounced recipients"
	}
	return "active recipients"
}

// WriteHostStatus writes hoststatus in the ESA's layout.
func WriteHostStatus(w io.Writer, hs HostStatus, loc *time.Location) {
	h := hs.Host
	state := "up"
	if h.Down {
		state = "down"
	}
	fmt.Fprintf(w, "Host mail status for: %s\n", hs.Domain)
	fmt.Fprintf(w, "Status as of:         %s\n", hs.AsOf.In(loc).Format(TimeLayout))
	fmt.Fprintf(w, "Host up/down:         %s\n", state)
	if h.Name != hs.Domain {
		fmt.Fprintf(w, "Destination:          %s\n", h.Name)
	}
	fmt.Fprintln(w)
	c := func(indent int, l string, k Counter) {
		fmt.Fprintf(w, "%-*s%6s\n", 30, label(indent, l), Comma(h.Get(k)))
	}
	fmt.Fprintln(w, "Counters:")
	fmt.Fprintln(w, label(2, "Queue"))
	c(4, "Soft Bounced Events", SoftBouncedEvts)
	fmt.Fprintln(w, label(2, "Completion"))
	c(4, "Completed Recipients", CompletedRecips)
	c(6, "Hard Bounced Recipients", HardBouncedRecips)
	c(8, "DNS Hard Bounces", DNSHardBounces)
	c(8, "5XX Hard Bounces", HardBounces5XX)
	c(8, "Expired Hard Bounces", ExpiredHardBounces)
	c(8, "Other Hard Bounces", OtherHardBounces)
	c(6, "Delivered Recipients", DeliveredRecips)
	fmt.Fprintln(w)
	g := h.Gauges
	gv := func(indent int, l string, v int) {
		fmt.Fprintf(w, "%-*s%6s\n", 36, label(indent, l), Comma(uint64(v)))
	}
	fmt.Fprintln(w, "Gauges:")
	fmt.Fprintln(w, label(2, "Queue"))
	gv(4, "Active Recipients", g.Active)
	gv(6, "Unattempted Recipients", g.Unattempted)
	gv(6, "Attempted Recipients", g.Attempted)
	fmt.Fprintln(w, label(2, "Connections"))
	gv(4, "Current Outbound Connections", g.ConnectionsOut)
	gv(4, "Pending Outbound Connections", g.Pending)
	fmt.Fprintln(w)
	if g.OldestMID == 0 {
		fmt.Fprintln(w, "Oldest Message     No Messages")
	} else {
		fmt.Fprintf(w, "Oldest Message     %s (MID %d)\n", Long(hs.AsOf.Sub(g.Oldest)), g.OldestMID)
	}
	if h.LastActivity.IsZero() {
		fmt.Fprintln(w, "Last Activity      Never")
	} else {
		fmt.Fprintf(w, "Last Activity      %s\n", h.LastActivity.In(loc).Format(TimeLayout))
	}
	fmt.Fprintln(w)
	writeRoute(w, hs.Route)
}

func writeRoute(w io.Writer, r outbound.HostRoute) {
	fmt.Fprintln(w, "SMTP routes for this host:")
	if r.Route == "" {
		fmt.Fprintln(w, "    None (delivered by MX)")
	} else {
		fmt.Fprintf(w, "    %s: %s\n", r.Route, strings.Join(r.Hosts, ", "))
	}
	if r.Route == "" && len(r.Hosts) > 0 {
		fmt.Fprintf(w, "MX hosts: %s\n", strings.Join(r.Hosts, ", "))
	}
	if len(r.Addresses) == 0 {
		fmt.Fprintf(w, "Ordered IP addresses: none (%s)\n", r.Error)
		return
	}
	fmt.Fprintf(w, "Ordered IP addresses: %s\n", strings.Join(r.Addresses, ", "))
}

// RateHeader is the heading of rate's lines (the ESA's columns; its exact
// header is not confirmed).
const RateHeader = `    Time    Connections Recipients           Recipients         Queue
              In   Out   Received      Delta  Completed      Delta K-Used
`

// RateLine is one line of rate: the time, the connections in and out now,
// the recipients received and completed since start and since prev, the
// queue's kilobytes.
func RateLine(cur, prev Status, loc *time.Location) string {
	rcv, cmp := cur.Counter(InjRecips).Uptime, cur.Counter(CompletedRecips).Uptime
	prcv, pcmp := prev.Counter(InjRecips).Uptime, prev.Counter(CompletedRecips).Uptime
	return fmt.Sprintf("%s %7d %5d %10d %10d %10d %10d %6d\n", cur.AsOf.In(loc).Format("15:04:05"),
		cur.Gauges.ConnIn, cur.Gauges.ConnOut, rcv, rcv-min(prcv, rcv), cmp, cmp-min(pcmp, cmp), cur.Gauges.KilobytesUsed)
}

// Comma writes n with thousands separators, as the ESA: "8,388,608".
func Comma(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// Short is an uptime as the ESA's "Up since" gives it: "1d 22h 45m 40s".
func Short(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	if days > 0 {
		return fmt.Sprintf("%dd %dh %dm %ds", days, h, m, s)
	}
	return fmt.Sprintf("%dh %dm %ds", h, m, s)
}

// Long is an age as the ESA's "Oldest Message" gives it: "4 weeks 46 mins
// 53 secs", the parts that are 0 left out.
func Long(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	units := []struct {
		d    time.Duration
		name string
	}{{7 * 24 * time.Hour, "week"}, {24 * time.Hour, "day"}, {time.Hour, "hr"}, {time.Minute, "min"}, {time.Second, "sec"}}
	var parts []string
	for _, u := range units {
		n := d / u.d
		d -= n * u.d
		if n == 0 {
			continue
		}
		name := u.name
		if n != 1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	if len(parts) == 0 {
		return "0 secs"
	}
	return strings.Join(parts, " ")
}
