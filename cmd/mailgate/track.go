package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/stores"
)

// The tracking commands read the tracking store the configuration names
// (the embedded default's: ./mailgate-data/tracking.db), directly: they
// work with the gateway stopped, and against a PostgreSQL store that many
// gateways share.

// storeFlags are the flags every tracking command takes.
type storeFlags struct{ *configFlags }

func newStoreFlags(name string, stderr io.Writer) *storeFlags {
	return &storeFlags{newConfigFlags(name, stderr)}
}

func (f *storeFlags) jsonFlag() {
	f.fs.BoolVar(&f.json, "json", false, "print JSON, one object per line")
}

// search parses the filters (empty values do not filter), opens the store
// and runs the query. The store is nil, and code the command's exit code,
// when the command must end; otherwise the caller closes the store.
func (f *storeFlags) search(ctx context.Context, cmd string, v url.Values, stderr io.Writer) (tracking.Store, []tracking.Message, int) {
	q, err := tracking.ParseQuery(v, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "mailgate %s: %v\n", cmd, err)
		return nil, nil, 2
	}
	s, _, err := f.open(ctx)
	if err != nil {
		return nil, nil, fail(stderr, err)
	}
	ms, err := s.Search(ctx, q)
	if err != nil {
		s.Close()
		return nil, nil, fail(stderr, err)
	}
	warnGaps(ctx, s, q, cmd, stderr)
	return s, ms, 0
}

func (f *storeFlags) open(ctx context.Context) (tracking.Store, *config.Config, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	s, err := stores.Open(ctx, cfg.Tracking.Driver, cfg.Tracking.DSN)
	if err != nil {
		return nil, nil, err
	}
	return s, cfg, nil
}

// interrupted is a context cancelled by Ctrl-C, so that a long import
// stops between two chunks, with what it read so far stored.
func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
}

const importUsage = `usage: mailgate import [--config FILE] [--host NAME] [--tz ZONE] [--year YYYY] FILE... ("-" for standard input)

Reads ESA text mail logs (mailgate's own or a Cisco appliance's, local files
or syslog-pushed, plain or gzipped) into the tracking store. Rotated files are
read oldest first whatever order they are given in; importing the same lines
twice changes nothing. A line whose syslog header names a host is filed under
that host; --host names the gateway of the others. Syslog timestamps have no
year: it is --year's (for the first line; a year on at each December-January
rollover), or else the one that puts each line before the file's modification
time.
`

func importCmd(args []string, stdout, stderr io.Writer) int {
	f := newStoreFlags("import", stderr)
	host := f.fs.String("host", "", "the gateway the logs are of (default: this gateway's hostname; a syslog line's own host name wins)")
	tz := f.fs.String("tz", "Local", "time `zone` of local-file times until a \"Time offset from UTC\" header (e.g. UTC, Europe/Paris)")
	year := f.fs.Int("year", 0, "the `year` of the first line whose timestamp has none (syslog files; default: from each file's modification time)")
	f.fs.Usage = func() { fmt.Fprint(stderr, importUsage); f.fs.PrintDefaults() }
	files, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if len(files) == 0 {
		return usageErr(stderr, importUsage)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fail(stderr, fmt.Errorf("import: --tz: %w", err))
	}
	ctx, stop := interrupted()
	defer stop()
	s, cfg, err := f.open(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	defer s.Close()
	if *host == "" {
		*host = cfg.Hostname
	}
	files = tracking.OrderLogFiles(files)
	start := time.Now()
	endBulk, err := tracking.BeginBulk(ctx, s, tracking.LogSize(files))
	if err != nil {
		return fail(stderr, err)
	}
	tr := tracking.NewTracker(s, tracking.Options{})
	im := &tracking.Importer{Tracker: tr, Host: *host, Location: loc, Year: *year,
		Warn: func(msg string) { fmt.Fprintln(stderr, "mailgate import:", msg) }}
	err = importFiles(ctx, im, files, stderr)
	// The bulk load ends whether the import succeeded, failed or was
	// interrupted: it makes the indexes it dropped.
	if e := endBulk(context.WithoutCancel(ctx)); err == nil {
		err = e
	}
	if err != nil {
		return fail(stderr, err)
	}
	st := tr.Stats()
	el := time.Since(start)
	fmt.Fprintf(stdout, "imported %d lines from %d file(s) in %s (%.0f lines/s): %d new, %d already stored, %d about no message or connection; %d messages and %d connections written\n",
		st.Entries, len(files), el.Round(time.Millisecond), float64(st.Entries)/el.Seconds(),
		st.Applied, st.Duplicate, st.Untracked, st.Messages, st.Conns)
	return 0
}

// importFiles imports the files in order, with a progress bar for each
// on a terminal.
func importFiles(ctx context.Context, im *tracking.Importer, files []string, stderr io.Writer) error {
	defer func() { im.Progress = nil }()
	for _, name := range files {
		var bar *progressBar
		im.Progress = nil
		if isTerminal(stderr) && name != "-" {
			if st, err := os.Stat(name); err == nil {
				bar = &progressBar{w: stderr, name: name, total: st.Size()}
				im.Progress = bar.update
			}
		}
		err := im.ImportFile(ctx, name)
		if bar != nil {
			bar.done()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// progressBar draws "name [=====>    ] 42% 12.3 MB/s" on a terminal.
type progressBar struct {
	w     io.Writer
	name  string
	total int64
	last  time.Time
	start time.Time
}

func (b *progressBar) update(n int64) {
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	if now.Sub(b.last) < 200*time.Millisecond {
		return
	}
	b.last = now
	b.draw(n, now)
}

func (b *progressBar) draw(n int64, now time.Time) {
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(n)/float64(b.total), 1)
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate := float64(n) / max(now.Sub(b.start).Seconds(), 1e-3) / 1e6
	fmt.Fprintf(b.w, "\r%s [%s] %3.0f%% %.1f MB/s ", shorten(b.name, 40), bar, frac*100, rate)
}

func (b *progressBar) done() {
	b.draw(b.total, time.Now())
	fmt.Fprintln(b.w)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err == nil
}

const trackUsage = `usage: mailgate track [--config FILE] [filters] [--json | --events]

Finds messages in the tracking store, newest first. Filters (all optional,
combined with AND): --mid --icid --dcid --sender --recipient (a whole address,
any case, or a pattern with '*': '*@example.com') --subject (a substring)
--message-id --remote-ip --host --status --abort --spf (the MAIL FROM
identity's result) --dkim (any signature's) --dmarc --dnslist (the zone of the
DNS list that placed the client) --since --until (RFC 3339, 2006-01-02, or a
duration: 24h, 7d) --limit.
--events prints each message's whole timeline (with its connections' lines
and any injection debug transcript).
`

// The values of --status and --abort, for their help.
var statusHelp, abortHelp = joinWords(tracking.Statuses), joinWords(tracking.Aborts)

func joinWords[S ~string](ws []S) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(w))
	}
	return b.String()
}

// trackFilters are the query flags, by the names of tracking.ParseQuery.
var trackFilters = []struct{ flag, key, help string }{
	{"mid", "mid", "MID"},
	{"icid", "icid", "ICID of the inbound connection"},
	{"dcid", "dcid", "DCID of a delivery connection"},
	{"sender", "sender", "envelope sender"},
	{"recipient", "recipient", "envelope recipient"},
	{"subject", "subject", "substring of the subject"},
	{"message-id", "message_id", "Message-ID header, with its angle brackets"},
	{"remote-ip", "remote_ip", "address of the sending host"},
	{"host", "host", "the gateway (its hostname)"},
	{"status", "status", statusHelp},
	{"abort", "abort", abortHelp},
	{"spf", "spf", "SPF result of the MAIL FROM identity: " + strings.Join(tracking.SPFResults, ", ")},
	{"dkim", "dkim", "result of a DKIM signature: " + strings.Join(tracking.DKIMResults, ", ")},
	{"dmarc", "dmarc", "DMARC result: " + strings.Join(tracking.DMARCResults, ", ")},
	{"dnslist", "dnslist", "the DNS list `zone` whose HAT rule placed the client"},
	{"since", "since", "started at or after"},
	{"until", "until", "started before"},
	{"limit", "limit", "at most this many messages (default 100)"},
}

func trackCmd(args []string, stdout, stderr io.Writer) int {
	f := newStoreFlags("track", stderr)
	f.jsonFlag()
	events := f.fs.Bool("events", false, "print every message's whole timeline")
	vals := make(map[string]*string)
	for _, tf := range trackFilters {
		vals[tf.key] = f.fs.String(tf.flag, "", tf.help)
	}
	f.fs.Usage = func() { fmt.Fprint(stderr, trackUsage); f.fs.PrintDefaults() }
	if rest, err := parseInterspersed(f.fs, args); err != nil {
		return 2
	} else if len(rest) > 0 {
		return usageErr(stderr, trackUsage)
	}
	v := url.Values{}
	for k, p := range vals {
		v.Set(k, *p)
	}
	ctx, stop := interrupted()
	defer stop()
	s, ms, code := f.search(ctx, "track", v, stderr)
	if s == nil {
		return code
	}
	defer s.Close()
	switch {
	case *events:
		for i := range ms {
			m, conns, err := s.Find(ctx, ms[i].Host, ms[i].MID)
			if err != nil {
				return fail(stderr, err)
			}
			if f.json {
				if code := printJSONLine(stdout, struct {
					Message  *tracking.Message `json:"message"`
					Timeline []explain.Entry   `json:"timeline"`
				}{m, explain.Timeline(m, conns)}); code != 0 {
					return code
				}
				continue
			}
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printSummary(stdout, m)
			printTimeline(stdout, explain.Timeline(m, conns), true)
		}
	case f.json:
		for _, m := range ms {
			if code := printJSONLine(stdout, m); code != 0 {
				return code
			}
		}
	default:
		printMessages(stdout, ms)
	}
	if len(ms) == 0 && !f.json {
		fmt.Fprintln(stderr, "no matching messages")
		return 1
	}
	return 0
}

func printJSONLine(out io.Writer, v any) int {
	if err := json.NewEncoder(out).Encode(v); err != nil {
		return 1
	}
	return 0
}

func printMessages(out io.Writer, ms []tracking.Message) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tHOST\tMID\tICID\tSTATUS\tSENDER\tRECIPIENTS\tSUBJECT")
	for _, m := range ms {
		st := string(m.Status)
		if m.Abort != "" {
			st += " (" + string(m.Abort) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", localStamp(m.Started), maillog.Escape(m.Host), m.MID, m.ICID, st,
			maillog.Escape(orDash(m.Sender)), maillog.Escape(oneLine(recipientColumn(m.Recipients), 60)), maillog.Escape(oneLine(orDash(m.Subject), 50)))
	}
	tw.Flush()
}

// recipientColumn lists the recipients the message has, accepted or not
// final, and only counts those refused during injection, so that a status
// such as "queued" is never shown beside an address that was refused. When
// every recipient was refused, they are listed as such.
func recipientColumn(rs []tracking.Recipient) string {
	var kept, refused []string
	for _, r := range rs {
		if r.Status == tracking.Rejected {
			refused = append(refused, r.Address)
		} else {
			kept = append(kept, r.Address)
		}
	}
	switch {
	case len(kept) == 0 && len(refused) == 0:
		return "-"
	case len(kept) == 0:
		return strings.Join(refused, ", ") + " (rejected)"
	case len(refused) > 0:
		return fmt.Sprintf("%s (+%d rejected)", strings.Join(kept, ", "), len(refused))
	}
	return strings.Join(kept, ", ")
}

func printSummary(out io.Writer, m *tracking.Message) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	st := string(m.Status)
	if m.Abort != "" {
		st += " (" + string(m.Abort) + ")"
	}
	fmt.Fprintf(tw, "MID\t%d on %s\n", m.MID, maillog.Escape(m.Host))
	fmt.Fprintf(tw, "Status\t%s\n", st)
	fmt.Fprintf(tw, "Received\t%s\n", localStamp(m.Started))
	fmt.Fprintf(tw, "From host\t%s %s (ICID %d, sender group %s)\n", orDash(m.RemoteIP), maillog.Escape(m.RemoteHost), m.ICID, orDash(m.SenderGroup))
	fmt.Fprintf(tw, "Sender\t<%s>\n", maillog.Escape(m.Sender))
	for _, l := range explain.Links(m) {
		fmt.Fprintf(tw, "Related\tMID %d (%s)\n", l.MID, l.Relation)
	}
	for _, r := range m.Recipients {
		line := fmt.Sprintf("<%s> %s", r.Address, r.Status)
		if r.Code != "" {
			line += " " + r.Code
		}
		if r.Response != "" {
			line += ": " + r.Response
		}
		fmt.Fprintf(tw, "Recipient\t%s\n", maillog.Escape(line))
	}
	for _, f := range explain.AuthSummary(m) {
		fmt.Fprintf(tw, "%s\t%s\n", f.Label, maillog.Escape(f.Text))
	}
	fmt.Fprintf(tw, "Subject\t%s\n", maillog.Escape(orDash(m.Subject)))
	fmt.Fprintf(tw, "Message-ID\t%s\n", maillog.Escape(orDash(m.MessageID)))
	if m.Size > 0 {
		fmt.Fprintf(tw, "Size\t%d bytes\n", m.Size)
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// printTimeline prints the lines as they were logged, with the record each
// came from when source. A line read from a log (an import, the syslog
// receiver) is printed as it was written: its own timestamp and offset, a
// syslog server's host and tag. The gateway's own events are rendered as
// its mail log has them (asctime in the local zone, level, text).
func printTimeline(out io.Writer, tl []explain.Entry, source bool) {
	for _, e := range tl {
		if source {
			fmt.Fprintf(out, "%-10s ", e.Source)
		}
		if l := e.Logged(); l != "" {
			fmt.Fprintln(out, maillog.Escape(l))
			continue
		}
		lv := e.Level.String()
		if e.Level == 0 {
			lv = "Info"
		}
		fmt.Fprintf(out, "%s %s: %s\n", e.Time.Local().Format("Mon Jan _2 15:04:05 2006"), lv, maillog.Escape(e.Text))
	}
}

func localStamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const findeventUsage = `usage: mailgate findevent [--config FILE] [--host NAME] (-m MID | -f FROM | -t TO | -s SUBJECT) [--since D]

Prints every log line of the matching messages, with the lines of their
connections (ICID, DCID), as the ESA's findevent does. FROM and TO are whole
addresses or patterns with '*'; SUBJECT is a substring.
`

func findeventCmd(args []string, stdout, stderr io.Writer) int {
	f := newStoreFlags("findevent", stderr)
	mid := f.fs.Uint64("m", 0, "MID")
	from := f.fs.String("f", "", "envelope sender")
	to := f.fs.String("t", "", "envelope recipient")
	subject := f.fs.String("s", "", "subject substring")
	host := f.fs.String("host", "", "the gateway")
	since := f.fs.String("since", "", "only messages started since (24h, 2026-11-01, ...)")
	limit := f.fs.Int("limit", 20, "at most this many messages")
	f.fs.Usage = func() { fmt.Fprint(stderr, findeventUsage); f.fs.PrintDefaults() }
	if rest, err := parseInterspersed(f.fs, args); err != nil {
		return 2
	} else if len(rest) > 0 || (*mid == 0 && *from == "" && *to == "" && *subject == "") {
		return usageErr(stderr, findeventUsage)
	}
	v := url.Values{"host": {*host}, "sender": {*from}, "recipient": {*to}, "subject": {*subject}, "since": {*since}, "limit": {strconv.Itoa(*limit)}}
	if *mid != 0 {
		v.Set("mid", strconv.FormatUint(*mid, 10))
	}
	ctx, stop := interrupted()
	defer stop()
	s, ms, code := f.search(ctx, "findevent", v, stderr)
	if s == nil {
		return code
	}
	defer s.Close()
	if len(ms) == 0 {
		fmt.Fprintln(stderr, "No matching message IDs")
		return 1
	}
	for i := len(ms) - 1; i >= 0; i-- { // oldest first, as in the log
		m, conns, err := s.Find(ctx, ms[i].Host, ms[i].MID)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "The following lines are of MID %d on %s:\n", m.MID, maillog.Escape(m.Host))
		printTimeline(stdout, explain.Timeline(m, conns), false)
		if i > 0 {
			fmt.Fprintln(stdout)
		}
	}
	return 0
}

const explainUsage = `usage: mailgate explain [--config FILE] [--host NAME] [--json] MID
       mailgate explain [--config FILE] [--host NAME] [--json] --icid ICID
       mailgate explain [--config FILE] [--host NAME] [--json] --aborts [--since 24h]

Says in plain words what happened to a message and why, and what to do; with
--icid, what the HAT made of an inbound connection (one a DNS list refused
carries no message); with --aborts, sums up the aborted receptions by kind,
sending host and SMTP state, and points at the patterns in them.
`

func explainCmd(args []string, stdout, stderr io.Writer) int {
	f := newStoreFlags("explain", stderr)
	f.fs.BoolVar(&f.json, "json", false, "print JSON")
	host := f.fs.String("host", "", "the gateway, when several have this MID")
	aborts := f.fs.Bool("aborts", false, "summarise the aborted receptions")
	since := f.fs.String("since", "24h", "with --aborts: since when")
	icid := f.fs.Uint64("icid", 0, "explain this inbound connection instead of a message")
	f.fs.Usage = func() { fmt.Fprint(stderr, explainUsage); f.fs.PrintDefaults() }
	rest, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if *icid != 0 {
		if *aborts || len(rest) > 0 {
			return usageErr(stderr, explainUsage)
		}
		ctx, stop := interrupted()
		defer stop()
		return f.explainConn(ctx, *host, *icid, stdout, stderr)
	}
	if *aborts != (len(rest) == 0) || len(rest) > 1 {
		return usageErr(stderr, explainUsage)
	}
	ctx, stop := interrupted()
	defer stop()
	if *aborts {
		v := url.Values{"status": {string(tracking.Aborted)}, "since": {*since}, "host": {*host}, "limit": {strconv.Itoa(tracking.MaxLimit)}}
		s, ms, code := f.search(ctx, "explain", v, stderr)
		if s == nil {
			return code
		}
		defer s.Close()
		r := explain.Aborts(ms)
		if f.json {
			return printJSON(stdout, r)
		}
		printAborts(stdout, r, *since)
		return 0
	}
	mid, err := strconv.ParseUint(rest[0], 10, 64)
	if err != nil || mid == 0 {
		fmt.Fprintf(stderr, "mailgate explain: %q is not a MID\n", rest[0])
		return 2
	}
	s, cfg, err := f.open(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	defer s.Close()
	if *host == "" {
		ms, err := s.Search(ctx, tracking.Query{MID: mid, Limit: 10})
		if err != nil {
			return fail(stderr, err)
		}
		switch len(ms) {
		case 0:
			return fail(stderr, fmt.Errorf("%w: MID %d", tracking.ErrNotFound, mid))
		case 1:
			*host = ms[0].Host
		default:
			var hs []string
			for _, m := range ms {
				hs = append(hs, m.Host)
			}
			fmt.Fprintf(stderr, "mailgate explain: MID %d is on several gateways (%s): give --host\n", mid, strings.Join(hs, ", "))
			return 2
		}
	}
	m, conns, err := s.Find(ctx, *host, mid)
	if err != nil {
		if errors.Is(err, tracking.ErrNotFound) {
			fmt.Fprintln(stderr, "mailgate explain:", err)
			return 1
		}
		return fail(stderr, err)
	}
	x := explain.Message(m, conns, gatewayOf(cfg))
	if f.json {
		return printJSON(stdout, x)
	}
	printExplanation(stdout, fmt.Sprintf("MID %d on %s", m.MID, m.Host), x)
	return 0
}

// explainConn explains inbound connection icid of host (this gateway's
// when empty).
func (f *storeFlags) explainConn(ctx context.Context, host string, icid uint64, stdout, stderr io.Writer) int {
	s, cfg, err := f.open(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	defer s.Close()
	host = cmp.Or(host, cfg.Hostname)
	b, err := s.Load(ctx, tracking.Keys{Conns: []tracking.ConnKey{{Host: host, Kind: event.InboundConn, ID: icid}}})
	if err != nil {
		return fail(stderr, err)
	}
	if len(b.Conns) == 0 {
		fmt.Fprintf(stderr, "mailgate explain: no ICID %d on %s (--host names another gateway)\n", icid, host)
		return 1
	}
	x, ok := explain.Conn(b.Conns[0])
	if !ok {
		fmt.Fprintf(stderr, "mailgate explain: the log has no HAT line for ICID %d on %s\n", icid, host)
		return 1
	}
	if f.json {
		return printJSON(stdout, x)
	}
	printExplanation(stdout, fmt.Sprintf("ICID %d on %s", icid, host), x)
	return 0
}

func printExplanation(stdout io.Writer, what string, x explain.Explanation) {
	fmt.Fprintf(stdout, "%s: %s\n", maillog.Escape(what), maillog.Escape(x.Summary))
	if len(x.Why) > 0 {
		fmt.Fprintln(stdout, "\nWhat the log shows:")
		for _, s := range x.Why {
			fmt.Fprintln(stdout, "  - "+maillog.Escape(s))
		}
	}
	if len(x.Next) > 0 {
		fmt.Fprintln(stdout, "\nWhat to do:")
		for _, s := range x.Next {
			fmt.Fprintln(stdout, "  - "+maillog.Escape(s))
		}
	}
}

// gatewayOf is what explain needs to know of the configured gateway: its
// hostname and where its listeners listen, so that a suggested packet
// capture names the real port.
func gatewayOf(cfg *config.Config) explain.Gateway {
	gw := explain.Gateway{Host: cfg.Hostname}
	for _, l := range cfg.Listeners {
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(cmp.Or(host, "0.0.0.0"))
		if err != nil {
			ip = netip.IPv4Unspecified() // a name: any address may be its
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		gw.Listeners = append(gw.Listeners, explain.Listener{Interface: l.Interface, Addr: netip.AddrPortFrom(ip, uint16(p))})
	}
	return gw
}

func printAborts(out io.Writer, r explain.AbortReport, since string) {
	fmt.Fprintf(out, "%d aborted receptions in the last %s.\n", r.Total, since)
	if r.Total == 0 {
		return
	}
	section := func(title string, cs []explain.Counted) {
		fmt.Fprintf(out, "\n%s:\n", title)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for i, c := range cs {
			if i == 10 {
				fmt.Fprintf(tw, "  ...\t%d more\n", len(cs)-10)
				break
			}
			fmt.Fprintf(tw, "  %s\t%d\n", maillog.Escape(c.Value), c.Count)
		}
		tw.Flush()
	}
	section("By kind", r.ByKind)
	section("By sending host", r.ByHost)
	section("By SMTP state", r.ByState)
	if len(r.Patterns) > 0 {
		fmt.Fprintln(out, "\nPatterns:")
		for _, p := range r.Patterns {
			fmt.Fprintln(out, "  - "+maillog.Escape(p))
		}
	}
}
