package tracking

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		query   string
		want    Query
		wantErr string // a substring of the error; "" when none is expected
	}{
		{name: "empty", query: "", want: Query{}},
		{name: "empty values do not filter", query: "sender=&status=&since=&limit=", want: Query{}},
		{name: "every text filter",
			query: "host=esa1&sender=a@example.com&recipient=*@example.org&subject=report&message_id=<1@x>&remote_ip=192.0.2.1",
			want: Query{Host: "esa1", Sender: "a@example.com", Recipient: "*@example.org", Subject: "report",
				MessageID: "<1@x>", RemoteIP: "192.0.2.1"}},
		{name: "spaces and angle brackets trimmed", query: "sender=+%3Ca@example.com%3E+&recipient=%3Cb@example.org%3E",
			want: Query{Sender: "a@example.com", Recipient: "b@example.org"}},
		{name: "ids", query: "mid=1005&icid=104&dcid=7", want: Query{MID: 1005, ICID: 104, DCID: 7}},
		{name: "ids pasted from a log line", query: "mid=MID+1005&icid=ICID+104", want: Query{MID: 1005, ICID: 104}},
		{name: "bad mid", query: "mid=abc", wantErr: `mid: "abc" is not a positive number`},
		{name: "zero icid", query: "icid=0", wantErr: "icid: "},
		{name: "ipv6 canonical", query: "remote_ip=2001:DB8::0:1", want: Query{RemoteIP: "2001:db8::1"}},
		{name: "ipv4-mapped", query: "remote_ip=::ffff:192.0.2.1", want: Query{RemoteIP: "192.0.2.1"}},
		{name: "bad ip", query: "remote_ip=mail.example.com", wantErr: "remote_ip: "},
		{name: "status", query: "status=bounced", want: Query{Status: Bounced}},
		{name: "bad status", query: "status=lost", wantErr: `status: "lost" is not a status (receiving, queued,`},
		{name: "abort", query: "abort=sender_quit", want: Query{Abort: AbortSenderQuit}},
		{name: "bad abort", query: "abort=rst", wantErr: "abort: "},
		{name: "authentication", query: "spf=SoftFail&dkim=permfail&dmarc=FAIL&dnslist=Zen.Spamhaus.org.",
			want: Query{SPF: "softfail", DKIM: "permfail", DMARC: "fail", DNSList: "zen.spamhaus.org"}},
		{name: "dnslist rule pasted", query: "dnslist=dnslist[bl.example:127.0.0.2]", want: Query{DNSList: "bl.example"}},
		{name: "bad spf", query: "spf=softpass", wantErr: `spf: "softpass" is not an SPF result (pass, fail, softfail,`},
		{name: "bad dkim", query: "dkim=fail", wantErr: `dkim: "fail" is not a DKIM result`},
		{name: "bad dmarc", query: "dmarc=quarantine", wantErr: `dmarc: "quarantine" is not a DMARC result`},
		{name: "bad dnslist", query: "dnslist=zen+spamhaus", wantErr: "dnslist: "},
		{name: "since duration", query: "since=24h", want: Query{Since: now.Add(-24 * time.Hour)}},
		{name: "since minutes", query: "since=90m", want: Query{Since: now.Add(-90 * time.Minute)}},
		{name: "since days", query: "since=7d", want: Query{Since: now.AddDate(0, 0, -7)}},
		{name: "since days and hours", query: "since=1d12h", want: Query{Since: now.Add(-36 * time.Hour)}},
		{name: "since rfc3339", query: "since=2026-03-09T08:00:00%2B01:00",
			want: Query{Since: time.Date(2026, 3, 9, 7, 0, 0, 0, time.UTC)}},
		{name: "since date", query: "since=2026-03-09", want: Query{Since: time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)}},
		{name: "date and time", query: "since=2026-03-09+08:30&until=2026-03-09T09:15",
			want: Query{Since: time.Date(2026, 3, 9, 8, 30, 0, 0, time.UTC), Until: time.Date(2026, 3, 9, 9, 15, 0, 0, time.UTC)}},
		{name: "bad since", query: "since=yesterday", wantErr: `since: "yesterday" is neither a time`},
		{name: "negative duration", query: "since=-24h", wantErr: "since: "},
		{name: "zero duration", query: "until=0d", wantErr: "until: "},
		{name: "since after until", query: "since=1h&until=2h", wantErr: "since: 2026-03-10T11:00:00Z is not before until"},
		{name: "limit", query: "limit=500", want: Query{Limit: 500}},
		{name: "limit zero", query: "limit=0", wantErr: "limit: "},
		{name: "limit too large", query: "limit=10001", wantErr: `limit: "10001" is not a number from 1 to 10000`},
		{name: "key twice", query: "sender=a@x&sender=b@x", wantErr: "sender: given 2 times"},
		{name: "unknown key", query: "sendr=a@x", wantErr: "sendr: unknown filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(v, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseQuery(%q) error = %v, want one containing %q", tt.query, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.query, err)
			}
			if !reflect.DeepEqual(inUTC(got), inUTC(tt.want)) {
				t.Errorf("ParseQuery(%q) = %+v, want %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestParseQueryReportsEveryError(t *testing.T) {
	_, err := ParseQuery(url.Values{"mid": {"x"}, "status": {"y"}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "mid: ") || !strings.Contains(err.Error(), "status: ") {
		t.Fatalf("error = %v, want one naming mid and status", err)
	}
}

func TestParseTimeInNowsLocation(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, loc)
	got, err := ParseTime("2026-03-10 08:00", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 10, 7, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("ParseTime = %v, want %v", got, want)
	}
}

// inUTC lets DeepEqual compare instants, not how they were written.
func inUTC(q Query) Query {
	if !q.Since.IsZero() {
		q.Since = q.Since.UTC()
	}
	if !q.Until.IsZero() {
		q.Until = q.Until.UTC()
	}
	return q
}

// FuzzParseQuery: a query string comes from any HTTP client. Parsing
// never panics, and what it accepts is within bounds.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "mid=5", "sender=*@example.com&since=24h", "since=2026-03-01&until=2026-03-02",
		"limit=10000", "since=7d&until=1d", "remote_ip=::ffff:192.0.2.1", "mid=MID+1005", "status=aborted&abort=lost"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v, now)
		if err != nil {
			return
		}
		if q.Limit < 0 || q.Limit > MaxLimit {
			t.Errorf("limit %d accepted", q.Limit)
		}
		if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
			t.Errorf("since %v not before until %v", q.Since, q.Until)
		}
	})
}
