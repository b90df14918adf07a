package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/explain/explaintest"
)

func newTestServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	h := Handler(Options{Store: fixtureStore(t), Token: token, Now: func() time.Time { return fixtureNow }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and decodes the JSON answer into v (when not nil).
func get(t *testing.T, srv *httptest.Server, path, token string, v any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %d %q: %v", path, res.StatusCode, body, err)
		}
	}
	return res
}

func keysOf(ms []tracking.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s/%d", strings.TrimSuffix(m.Host, ".example.com"), m.MID)
	}
	return out
}

func TestMessagesFilters(t *testing.T) {
	srv := newTestServer(t, "")
	tests := []struct {
		query string
		want  []string // host/MID, newest first
	}{
		{"", []string{"esa2/1001", "esa1/1009", "esa1/1008", "esa1/1007", "esa1/1006", "esa1/1005", "esa1/1004",
			"esa1/1003", "esa1/1002", "esa1/1001", "esa3/3002", "esa3/3001"}},
		// A split: the parent, whose recipients all went on or were
		// delivered, is delivered; both name the recipient that went on.
		{"status=split", nil},
		{"recipient=ceo@example.com", []string{"esa3/3002", "esa3/3001"}},
		{"icid=301", []string{"esa3/3002", "esa3/3001"}},
		{"sender=alice@partner.example", []string{"esa2/1001", "esa1/1009", "esa1/1001"}},
		{"sender=ALICE@Partner.Example&host=esa1.example.com", []string{"esa1/1009", "esa1/1001"}},
		{"sender=*@example.com", []string{"esa1/1003", "esa1/1002"}},
		{"recipient=%3Cnobody@example.org%3E", []string{"esa1/1002"}},
		{"recipient=ops@example.com", []string{"esa1/1009"}},
		{"subject=quarterly", []string{"esa1/1009", "esa1/1001"}},
		{"message_id=%3Cmeet-88@example.com%3E", []string{"esa1/1003"}},
		{"mid=1001", []string{"esa2/1001", "esa1/1001"}},
		{"icid=104", []string{"esa1/1004"}},
		{"dcid=502", []string{"esa1/1002"}},
		{"remote_ip=10.1.1.40", []string{"esa1/1002"}},
		{"status=aborted", []string{"esa1/1006", "esa1/1005", "esa1/1004"}},
		{"status=delayed", []string{"esa1/1003"}},
		{"abort=lost", []string{"esa1/1004"}},
		{"abort=sender", []string{"esa1/1005"}},
		{"status=aborted&abort=timeout", []string{"esa1/1006"}},
		{"since=1h", []string{"esa2/1001", "esa1/1009", "esa1/1008"}},
		{"since=2026-03-10T07:00:00Z&until=2026-03-10T08:00:00Z", []string{"esa1/1005", "esa1/1004", "esa1/1003"}},
		{"limit=2", []string{"esa2/1001", "esa1/1009"}},
		{"sender=nobody@nowhere.example", []string{}},
		{"dmarc=fail", []string{"esa1/1009"}},
		{"dmarc=pass&spf=pass&dkim=pass", []string{"esa1/1001"}},
		{"spf=SoftFail", []string{"esa1/1009"}},
		{"dkim=permfail&sender=alice@partner.example", []string{"esa1/1009"}},
		{"dnslist=zen.spamhaus.org", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got []tracking.Message
			res := get(t, srv, "/api/messages?"+tt.query, "", &got)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if k := keysOf(got); !slices.Equal(k, tt.want) {
				t.Errorf("got %v, want %v", k, tt.want)
			}
		})
	}
}

func TestMessagesJSON(t *testing.T) {
	srv := newTestServer(t, "")
	res, err := srv.Client().Get(srv.URL + "/api/messages?host=esa2.example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var got []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	m := got[0]
	for _, k := range []string{"host", "mid", "icid", "dcids", "sender", "recipients", "subject", "message_id",
		"remote_ip", "remote_host", "sender_group", "status", "abort", "started", "finished", "size",
		"spf", "dkim", "dmarc", "dnslist"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %v", k, m)
		}
	}
	if m["finished"] != nil {
		t.Errorf("finished = %v, want null for a message still queued", m["finished"])
	}
	// A message its log shows no check of: empty lists, no DMARC.
	if spf, ok := m["spf"].([]any); !ok || len(spf) != 0 || m["dmarc"] != nil || m["dnslist"] != "" {
		t.Errorf("spf %v, dmarc %v, dnslist %v: want [], null, \"\"", m["spf"], m["dmarc"], m["dnslist"])
	}
	if s, _ := m["started"].(string); s != "2026-03-10T09:40:01Z" {
		t.Errorf("started = %v", m["started"])
	}
	if m["subject"] != "<img src=x onerror=alert(1)>" {
		t.Errorf("subject = %v, want the log's text unchanged", m["subject"])
	}

	// An empty result is an empty array, not null.
	res2, err := srv.Client().Get(srv.URL + "/api/messages?sender=none@nowhere.example")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("empty result = %q, want []", body)
	}
}

func TestBadFilters(t *testing.T) {
	srv := newTestServer(t, "")
	for _, tt := range []struct{ path, key string }{
		{"/api/messages?status=lost", "status: "},
		{"/api/messages?abort=rst", "abort: "},
		{"/api/messages?since=yesterday", "since: "},
		{"/api/messages?until=tomorrow", "until: "},
		{"/api/messages?limit=0", "limit: "},
		{"/api/messages?limit=10001", "limit: "},
		{"/api/messages?mid=x", "mid: "},
		{"/api/messages?remote_ip=mx.example.com", "remote_ip: "},
		{"/api/messages?sendr=a@example.com", "sendr: unknown filter"},
		{"/api/messages?dmarc=quarantine", "dmarc: "},
		{"/api/messages?spf=softpass", "spf: "},
		{"/api/messages?dkim=fail", "dkim: "},
		{"/api/messages?dnslist=a+b", "dnslist: "},
		{"/api/messages?since=1h&until=2h", "since: "},
		{"/api/histogram?status=lost", "status: "},
		{"/api/histogram?step=fortnight", "step: "},
		{"/api/histogram?step=1s", "step: "},
		{"/api/histogram?since=2026-03-11", "since: "},
		{"/api/messages/esa1.example.com/abc", "mid: "},
	} {
		t.Run(tt.path, func(t *testing.T) {
			var body struct{ Error string }
			res := get(t, srv, tt.path, "", &body)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
			if !strings.HasPrefix(body.Error, tt.key) && !strings.Contains(body.Error, "\n"+tt.key) {
				t.Errorf("error %q does not name %q", body.Error, tt.key)
			}
		})
	}
}

func TestMessageDetail(t *testing.T) {
	srv := newTestServer(t, "")

	var raw map[string]json.RawMessage
	if res := get(t, srv, "/api/messages/esa1.example.com/1004", "", &raw); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, k := range []string{"message", "connections", "timeline", "explanation", "links"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}

	type detail struct {
		Message     tracking.Message
		Connections []struct {
			Kind string
			ID   uint64
			Lost bool
		}
		Timeline    []explain.Entry
		Explanation explain.Explanation
	}
	var d detail
	get(t, srv, "/api/messages/esa1.example.com/1004", "", &d)
	if d.Message.MID != 1004 || d.Message.Status != tracking.Aborted || d.Message.Abort != tracking.AbortLost {
		t.Errorf("message = MID %d %s %s, want 1004 aborted lost", d.Message.MID, d.Message.Status, d.Message.Abort)
	}
	if len(d.Connections) != 1 || d.Connections[0].Kind != "ICID" || d.Connections[0].ID != 104 || !d.Connections[0].Lost {
		t.Errorf("connections = %+v, want ICID 104, lost", d.Connections)
	}
	if d.Explanation.Summary == "" {
		t.Error("explanation has no summary")
	}
	var texts []string
	for _, e := range d.Timeline {
		texts = append(texts, e.Source+": "+e.Text)
	}
	lost := slices.Index(texts, "ICID 104: ICID 104 lost")
	aborted := slices.Index(texts, "MID 1004: Message aborted MID 1004 Receiving aborted")
	if lost < 0 || aborted < 0 || lost > aborted || !strings.HasPrefix(texts[0], "ICID 104: New SMTP ICID 104") {
		t.Errorf("timeline:\n%s", strings.Join(texts, "\n"))
	}

	// The bounced message carries the remote server's reply.
	d = detail{}
	get(t, srv, "/api/messages/esa1.example.com/1002", "", &d)
	if len(d.Message.Recipients) != 1 || !strings.Contains(d.Message.Recipients[0].Response, "User unknown in virtual mailbox table") ||
		d.Message.Recipients[0].Code != "5.1.1" {
		t.Errorf("bounced recipients = %+v", d.Message.Recipients)
	}
	if len(d.Connections) != 2 {
		t.Errorf("bounced message has %d connections, want ICID 102 and DCID 502", len(d.Connections))
	}
}

func TestMessageNotFound(t *testing.T) {
	srv := newTestServer(t, "")
	for _, path := range []string{
		"/api/messages/esa1.example.com/9999",
		"/api/messages/esa9.example.com/1001",
		"/api/nothing",
		"/api/messages/esa1.example.com/1001/more",
	} {
		var body struct{ Error string }
		res := get(t, srv, path, "", &body)
		if res.StatusCode != http.StatusNotFound || body.Error == "" {
			t.Errorf("GET %s: %d %q, want 404 with an error", path, res.StatusCode, body.Error)
		}
	}
}

func TestHistogram(t *testing.T) {
	srv := newTestServer(t, "")
	total := func(bs []tracking.Bucket) (status map[tracking.Status]int, abort map[tracking.Abort]int) {
		status, abort = map[tracking.Status]int{}, map[tracking.Abort]int{}
		for _, b := range bs {
			for k, n := range b.Status {
				status[k] += n
			}
			for k, n := range b.Abort {
				abort[k] += n
			}
		}
		return status, abort
	}

	var bs []tracking.Bucket
	if res := get(t, srv, "/api/histogram", "", &bs); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	// The last 24 hours in 30-minute steps: 48 intervals, empty ones too.
	if len(bs) != 48 || bs[1].Start.Sub(bs[0].Start) != 30*time.Minute {
		t.Fatalf("default histogram: %d buckets", len(bs))
	}
	if !bs[47].Start.Equal(fixtureNow.Add(-30 * time.Minute)) {
		t.Errorf("last bucket starts %v", bs[47].Start)
	}
	status, abort := total(bs)
	wantStatus := map[tracking.Status]int{tracking.Delivered: 2, tracking.Bounced: 1, tracking.Delayed: 1,
		tracking.Aborted: 3, tracking.Rejected: 1, tracking.Dropped: 1, tracking.Queued: 1}
	if fmt.Sprint(status) != fmt.Sprint(wantStatus) {
		t.Errorf("status totals %v, want %v", status, wantStatus)
	}
	wantAbort := map[tracking.Abort]int{tracking.AbortLost: 1, tracking.AbortSender: 1, tracking.AbortTimeout: 1}
	if fmt.Sprint(abort) != fmt.Sprint(wantAbort) {
		t.Errorf("abort totals %v, want %v", abort, wantAbort)
	}

	bs = nil // Unmarshal would merge into the old buckets' maps
	get(t, srv, "/api/histogram?since=2026-03-10T06:00:00Z&until=2026-03-10T10:00:00Z&step=1h", "", &bs)
	if len(bs) != 4 {
		t.Fatalf("4 hours in 1h steps: %d buckets", len(bs))
	}
	if b := bs[1]; b.Status[tracking.Delayed] != 1 || b.Status[tracking.Aborted] != 2 || b.Abort[tracking.AbortLost] != 1 {
		t.Errorf("07:00 bucket = %+v", b)
	}

	bs = nil
	get(t, srv, "/api/histogram?status=aborted&since=7d", "", &bs)
	if status, _ := total(bs); status[tracking.Aborted] != 3 || len(status) != 1 {
		t.Errorf("aborted over 7 days: %v", status)
	}
	// 7 days / 48 is 3.5h, rounded up to a round step: 6h. The first bucket
	// starts at the step boundary before since.
	if len(bs) != 29 || bs[1].Start.Sub(bs[0].Start) != 6*time.Hour {
		t.Errorf("7 days: %d buckets of %v, want 29 of 6h", len(bs), bs[1].Start.Sub(bs[0].Start))
	}
}

func TestToken(t *testing.T) {
	const token = "s3cret-token"
	srv := newTestServer(t, token)
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/api/messages", "", http.StatusUnauthorized},
		{"/api/messages", "wrong", http.StatusUnauthorized},
		{"/api/messages", token + "x", http.StatusUnauthorized},
		{"/api/messages/esa1.example.com/1001", "", http.StatusUnauthorized},
		{"/api/histogram", "", http.StatusUnauthorized},
		{"/api/nothing", "", http.StatusUnauthorized},
		{"/api/messages", token, http.StatusOK},
		{"/api/messages/esa1.example.com/1001", token, http.StatusOK},
		{"/api/histogram", token, http.StatusOK},
	} {
		var body any
		res := get(t, srv, tt.path, tt.token, &body)
		if res.StatusCode != tt.want {
			t.Errorf("GET %s with %q: %d, want %d", tt.path, tt.token, res.StatusCode, tt.want)
		}
		if tt.want == http.StatusUnauthorized {
			if m, _ := body.(map[string]any); m == nil || m["error"] == "" {
				t.Errorf("GET %s: 401 body %v, want a JSON error", tt.path, body)
			}
			if res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s: 401 without WWW-Authenticate", tt.path)
			}
		}
	}
	// Other schemes and a token in the query string do not count.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/messages?token="+token, nil)
	req.Header.Set("Authorization", "Basic "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic auth: %d, want 401", res.StatusCode)
	}

	// The page itself needs no token: it holds no data.
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without token: %d", path, res.StatusCode)
		}
	}
}

func TestHeaders(t *testing.T) {
	srv := newTestServer(t, "")
	for _, tt := range []struct{ path, contentType, cache string }{
		{"/", "text/html", "no-cache"},
		{"/app.js", "text/javascript", "no-cache"},
		{"/style.css", "text/css", "no-cache"},
		{"/api/messages", "application/json", "no-store"},
		{"/api/messages/esa1.example.com/9999", "application/json", "no-store"},
	} {
		res, err := srv.Client().Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", tt.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", tt.path, h.Get("X-Content-Type-Options"))
		}
		if !strings.HasPrefix(h.Get("Content-Type"), tt.contentType) {
			t.Errorf("%s: Content-Type %q, want %s", tt.path, h.Get("Content-Type"), tt.contentType)
		}
		if h.Get("Cache-Control") != tt.cache {
			t.Errorf("%s: Cache-Control %q, want %s", tt.path, h.Get("Cache-Control"), tt.cache)
		}
	}
	res, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

// TestPageHasNoInlineCode keeps the page within its CSP, and keeps log text
// out of the HTML parser: the scripts only ever set text.
func TestPageHasNoInlineCode(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`)
	handlerAttr := regexp.MustCompile(`\s(on[a-z]+|style)\s*=`)
	htmlSinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function`)
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(b)
		switch {
		case strings.HasSuffix(path, ".html"):
			if inlineScript.MatchString(s) || handlerAttr.MatchString(s) {
				t.Errorf("%s has inline script or style", path)
			}
			if strings.Contains(s, "http://") || strings.Contains(s, "https://") {
				t.Errorf("%s loads something from elsewhere", path)
			}
		case strings.HasSuffix(path, ".js"):
			if m := htmlSinks.FindString(s); m != "" {
				t.Errorf("%s uses %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestServeShutsDownWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(Options{Store: fixtureStore(t)})) }()

	res, err := http.Get("http://" + ln.Addr().String() + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after the context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// TestExplanationsQuoteTheRecord: the explanation the API gives of every
// fixture message quotes only lines of the timeline it gives beside it.
func TestExplanationsQuoteTheRecord(t *testing.T) {
	srv := newTestServer(t, "")
	var ms []tracking.Message
	get(t, srv, "/api/messages?limit=100", "", &ms)
	if len(ms) < 10 {
		t.Fatalf("%d messages", len(ms))
	}
	for _, m := range ms {
		var d struct {
			Timeline    []explain.Entry
			Explanation explain.Explanation
		}
		get(t, srv, fmt.Sprintf("/api/messages/%s/%d", m.Host, m.MID), "", &d)
		if d.Explanation.Summary == "" {
			t.Errorf("%s/%d: no explanation", m.Host, m.MID)
		}
		explaintest.Check(t, fmt.Sprintf("%s/%d", m.Host, m.MID), d.Explanation, d.Timeline)
	}
}
