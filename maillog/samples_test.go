package maillog

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// sampleLine is one line of a sample file in testdata/.
type sampleLine struct {
	file string // base name
	n    int    // line number from 1
	text string
}

func readSamples(t testing.TB) []sampleLine {
	t.Helper()
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in testdata: %v", err)
	}
	var lines []sampleLine
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			lines = append(lines, sampleLine{filepath.Base(f), n, sc.Text()})
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return lines
}

// normalised lists the sample lines that do not render back byte for byte,
// with what they render as and why. Everything else must.
var normalised = map[string]struct{ want, why string }{
	// Collector prefixes are not kept: an Entry has no field for them.
	"community-course-notes.log:14": {"Sat Sep 28 16:13:51 2019 Info: MID 6509657 quarantined to \"Policy\" (DLP violation)", "collector prefix"},
	"community-course-notes.log:15": {"Sat Sep 28 16:13:51 2019 Info: MID 6509657 DLP violation", "collector prefix"},
	"community-course-notes.log:16": {"Sat Sep 28 16:13:38 2019 Info: MID 6509657 ready 53 bytes from <user1@exampleone.com>", "collector prefix; address without <> (event.Ready has no Form)"},
	"community-course-notes.log:17": {"Sat Sep 28 16:13:38 2019 Info: MID 6509657 ICID 6237668 RID 0 To: <johndoe@exampletwo.com>", "collector prefix; address without <> (event.RcptTo has no Form)"},
	// Variants whose event type has no Form field to record them.
	"community-course-notes.log:18":       {"Info: New SMTP ICID 30 interface Management (192.168.0.100) address 10.128.128.200 reverse dns host unknown verified no", "\"Interface\" (a transcription in course notes)"},
	"ironport-spamtowho-comments.log:31":  {"Wed Feb  4 14:02:12 2004 Info: Message done DCID 3312 MID 4806 to RID [0]", "old \"to [0]\" (event.MessageDone has no Form)"},
	"ironport-spamtowho-comments.log:132": {"Info: MID 515 generated for bounce of MID 511", "\"was generated\" (event.BounceGenerated has no Form)"},
	"ironport-spamtowho-comments.log:149": {"Tue Feb 22 19:26:25 2005 Info: ICID 3 ACCEPT SG None match  SBRS rfc1918", "no \"match\" (the same line is quoted with \"match  SBRS\" in the reference)"},
	"ironport-spamtowho-comments.log:158": {"Thu Mar  4 08:38:41 2004 Info: Message done DCID 570107 MID 3605203 to RID [0] [('X-SBRS', 'BadRep -9.4')]", "old \"to [0]\" (event.MessageDone has no Form)"},
	"ironport-spamtowho-comments.log:160": {"Info: Message done DCID 55306 MID 797710 to RID [0]", "old \"to [0]\" (event.MessageDone has no Form)"},
	"msqa-1363239-tls-failure.log:1":      {"Wed Sep  6 13:13:16 2023 Info: MID 14 ICID 14 From: <******@domainsample1.com>", "address without <> (event.MailFrom has no Form)"},
	"msqa-1363239-tls-failure.log:4":      {"Wed Sep  6 13:13:16 2023 Info: MID 14 ICID 14 RID 0 To: <******@domainsample2.com>", "address without <> (event.RcptTo has no Form)"},
	"msqa-1363239-tls-failure.log:11":     {"Wed Sep  6 13:13:16 2023 Info: MID 14 ready 280 bytes from <******@domainsample1.com>", "address without <> (event.Ready has no Form)"},
	"msqa-1363239-tls-failure.log:24":     {"Fri Sep  8 05:21:31 2023 Info: MID 4 ICID 4 From: <******@domainsample1.com>", "address without <> (event.MailFrom has no Form)"},
	"msqa-1363239-tls-failure.log:27":     {"Fri Sep  8 05:21:31 2023 Info: MID 4 ICID 4 RID 0 To: <******@domainsample2.com>", "address without <> (event.RcptTo has no Form)"},
	"msqa-1363239-tls-failure.log:30":     {"Fri Sep  8 05:21:33 2023 Info: MID 4 ready 280 bytes from <******@domainsample1.com>", "address without <> (event.Ready has no Form)"},
}

// fixWeekday replaces the day name of a line's asctime timestamp by the one
// its date has. Documentation samples with edited dates carry impossible
// day names ("Sat Dec 21 ... 2003"); a time.Time cannot keep one.
func fixWeekday(line string) string {
	t, _, ok := cutAsctime(line, time.UTC)
	if !ok {
		return line
	}
	return dayNames[t.Weekday()] + line[3:]
}

// TestSamplesRoundTrip is the central property: every line of every sample
// renders back as it was. Lines are compared without trailing white space:
// the ESA ends some lines with a space (77 of the 1000 Cribl lines), which
// carries nothing; the parser drops it and mailgate never writes one.
func TestSamplesRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range readSamples(t) {
		key := l.file + ":" + strconv.Itoa(l.n)
		e, err := ParseLine(l.text, time.UTC)
		if err != nil {
			t.Errorf("%s: ParseLine(%q): %v", key, l.text, err)
			continue
		}
		got := string(AppendLine(nil, e, time.UTC))
		want := fixWeekday(strings.TrimRight(l.text, " "))
		if n, ok := normalised[key]; ok {
			seen[key] = true
			want = n.want
			if _, unknown := e.Event.(event.Unknown); unknown && !strings.Contains(n.why, "collector") {
				t.Errorf("%s: %q is an Unknown; want a typed event rendered as %q", key, l.text, n.want)
			}
		}
		if got != want {
			t.Errorf("%s: round trip\nline %q\ngot  %q\nwant %q\nentry %#v", key, l.text, got, want, e)
		}
	}
	for key := range normalised {
		if !seen[key] {
			t.Errorf("normalised lists %s, which is not a sample line", key)
		}
	}
}

// typedKinds matches the messages of the receiving and delivery lines of
// ESA-REFERENCE sections 1.4-1.7 (and the file header and injection debug
// lines) that the event package has a type for. It is written apart from
// the parser so that a line the parser misses shows up here.
var typedKinds = regexp.MustCompile(`^(` + strings.Join([]string{
	`New SMTP [ID]CID \d+ `,
	`ICID \d+ [A-Z]+ SG `,
	`ICID \d+ SBRS `,
	`[ID]CID \d+ TLS `,
	`Start MID \d+ ICID \d+`,
	`MID \d+ ICID \d+ (RID \d+ )?(From|To):`,
	`ICID \d+ (MID \d+ )?Invalid (sender|recipient) address:`,
	`ICID \d+ (Receiving|Injection) Failed:`,
	`ICID \d+ Unknown command:`,
	`ICID \d+ (lost|close|disconnected address )`,
	`MID \d+ (Message-ID|Subject|ready|matched all recipients|queued for delivery)`,
	`MID \d+ (was )?generated for bounce`,
	`MID \d+ RID \[[\d, ]*\] Response`,
	`(MID|Message) \d+ to (RID )?\[[\d, ]*\] pending`,
	`Message (aborted|finished) MID `,
	`Delivery start DCID `,
	`Message done DCID `,
	`(Bounced|Delayed): DCID`,
	`Connection Error: `,
	`DCID \d+ close`,
	`Double bounce: `,
	`Possible Delivery: DCID: `,
	`Deleted: MID `,
	`Begin Logfile`,
	`Version: `,
	`Time offset from UTC: `,
	`\d+ (Sent|Rcvd): `,
	`(ISQ|EUQ): (Tagging|Quarantined|Reinjected) MID `,
	`MID \d+ (quarantined to|quarantine "|released|deleted from)`,
	`MID \d+ (rewritten to|was split creating|(was )?generated based on|was (dropped|bounced) by)`,
	`MID \d+ ((interim )?verdict using engine|using engine|interim AV verdict|antivirus |Outbreak Filters: verdict|AMP file reputation verdict|was too big)`,
	`MID \d+ (SPF: |DKIM: (pass|permfail|tempfail|neutral|none|cannot sign|signing with)|DMARC: |DomainKeys: cannot sign|attachment '|Custom Log Entry: )`,
	`(Bounced|Delayed): \d+:\d+ From:`,
}, "|") + `)`)

// untyped are the lines of those kinds that stay Unknown because their type
// has no field for what they say (see the report on event/).
var untyped = map[string]string{
	"ironport-spamtowho-comments.log:7":   "DCID TLS success with a peer CN: event.TLS has no field for it",
	"ironport-spamtowho-comments.log:10":  "TLS was required but not initiated: no event.TLS form",
	"ironport-spamtowho-comments.log:15":  "Injection Failed: event.ReceivingFailed has no Form",
	"ironport-spamtowho-comments.log:169": "Start MID ... (ISQ Notification): event.StartMID has no field for the note",
}

// TestSamplesKnownShare counts how many sample lines parse to a typed event
// and checks that every line of a kind with a type does.
func TestSamplesKnownShare(t *testing.T) {
	type count struct{ lines, typed, kinds int }
	counts := map[string]*count{}
	var total count
	for _, l := range readSamples(t) {
		key := l.file + ":" + strconv.Itoa(l.n)
		c := counts[l.file]
		if c == nil {
			c = &count{}
			counts[l.file] = c
		}
		e, _ := ParseLine(l.text, time.UTC)
		_, unknown := e.Event.(event.Unknown)
		c.lines++
		if !unknown {
			c.typed++
		}
		if e.Level == 0 {
			continue // no level word: not a log line we type (message bodies)
		}
		msg := strings.TrimRight(l.text, " ")
		msg = msg[strings.Index(msg, e.Level.String()+":")+len(e.Level.String())+1:]
		msg = strings.TrimPrefix(msg, " ")
		if !typedKinds.MatchString(msg) {
			continue
		}
		c.kinds++
		why, expectUnknown := untyped[key]
		switch {
		case unknown && !expectUnknown:
			t.Errorf("%s: %q is of a typed kind but parsed as Unknown", key, l.text)
		case !unknown && expectUnknown:
			t.Errorf("%s: %q parsed as %T; the test expected Unknown (%s)", key, l.text, e.Event, why)
		}
	}
	files := make([]string, 0, len(counts))
	for f := range counts {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		c := counts[f]
		t.Logf("%-34s %4d lines: %4d typed, %4d Unknown; %4d of typed kinds", f, c.lines, c.typed, c.lines-c.typed, c.kinds)
		total.lines += c.lines
		total.typed += c.typed
		total.kinds += c.kinds
	}
	t.Logf("%-34s %4d lines: %4d typed, %4d Unknown; %4d of typed kinds, %d of them Unknown (no field)",
		"all", total.lines, total.typed, total.lines-total.typed, total.kinds, len(untyped))
}
