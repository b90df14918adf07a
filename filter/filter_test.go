package filter

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/workqueue"
)

// parseFilters reads content_filters from YAML as the gateway does.
func parseFilters(t testing.TB, yml string) []config.ContentFilter {
	t.Helper()
	c, err := config.Parse([]byte("content_filters:\n"+yml), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c.ContentFilters
}

func readMsg(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docx is a message with an Office Open XML attachment declared as
// application/octet-stream: a real zip whose first entry is
// [Content_Types].xml.
func docx(t testing.TB) []byte {
	var z bytes.Buffer
	w := zip.NewWriter(&z)
	for _, n := range []string{"[Content_Types].xml", "word/document.xml"} {
		f, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "<xml>%s</xml>", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte("From: a@pass.test\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=report.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(z.Bytes()) + "\r\n--b--\r\n")
}

// nestedDeep is a message of n multiparts, each inside the one before.
func nestedDeep(n int) []byte {
	var b strings.Builder
	b.WriteString("From: a@pass.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: application/octet-stream; name=\"deep.exe\"\r\n\r\nMZ\x90\x00 wire transfer now\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// wide is a message of n parts side by side, each with a name.
func wide(n int) []byte {
	var b strings.Builder
	b.WriteString("From: a@pass.test\r\nSubject: wide\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--w\r\nContent-Type: text/plain; name=\"part%d.txt\"\r\n\r\npart %d\r\n", i, i)
	}
	b.WriteString("--w\r\nContent-Type: text/plain; name=\"last.exe\"\r\n\r\nwire transfer now\r\n--w--\r\n")
	return []byte(b.String())
}

type msgOpts struct {
	from  string
	rcpts int
	auth  *mailauth.Results
}

func message(t testing.TB, raw []byte, o msgOpts) *workqueue.Message {
	env := &queue.Envelope{MID: 7, From: "alice@pass.test"}
	if o.from != "" {
		env.From = o.from
	}
	for i := range max(o.rcpts, 1) {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: fmt.Sprintf("r%d@example.net", i)})
	}
	if o.auth != nil {
		env.Auth = o.auth.Marshal()
	}
	return workqueue.NewMessage(env, nil, "inbound", raw)
}

var (
	spfFail   = &mailauth.Results{SPF: []mailauth.SPF{{Identity: mailauth.IdentityMailFrom, Result: "fail"}}, DMARC: &mailauth.DMARC{Result: "none"}}
	dmarcFail = &mailauth.Results{SPF: []mailauth.SPF{{Identity: mailauth.IdentityMailFrom, Result: "pass"}},
		DKIM: []mailauth.DKIM{{Result: "fail", Domain: "pass.test"}}, DMARC: &mailauth.DMARC{Result: "fail"}}
	allPass = &mailauth.Results{SPF: []mailauth.SPF{{Identity: mailauth.IdentityHELO, Result: "fail"}, {Identity: mailauth.IdentityMailFrom, Result: "pass"}},
		DKIM: []mailauth.DKIM{{Result: "pass", Domain: "pass.test"}}, DMARC: &mailauth.DMARC{Result: "pass"}}
	listed = &mailauth.Results{DNSList: &mailauth.DNSList{Zone: "bl.test", Code: "127.0.0.2"}}
)

// TestConditions: each condition kind on the messages that meet it and on
// those that do not.
func TestConditions(t *testing.T) {
	plain := readMsg(t, "plain.eml")
	for _, c := range []struct {
		name string
		cond string // one condition, YAML flow
		msg  []byte
		o    msgOpts
		want bool
	}{
		{"header named", `{header: X-Case, matches: "^none$"}`, plain, msgOpts{}, true},
		{"header named, case of the name", `{header: x-case, matches: "^none$"}`, plain, msgOpts{}, true},
		{"header named, no match", `{header: X-Case, matches: "^drop$"}`, plain, msgOpts{}, false},
		{"header present", `{header: Message-ID}`, plain, msgOpts{}, true},
		{"header absent", `{header: X-Spam}`, plain, msgOpts{}, false},
		{"header any", `{header: "*", matches: "(?i)^x-case: NONE$"}`, plain, msgOpts{}, true},
		{"header encoded word decoded", `{header: Subject, matches: "^Échéance$"}`, readMsg(t, "base64-body.eml"), msgOpts{}, true},
		{"header negated", `{header: X-Case, matches: "^drop$", not: true}`, plain, msgOpts{}, true},
		{"body plain", `{body: "meet at noon"}`, plain, msgOpts{}, true},
		{"body base64 decoded", `{body: "wire transfer now"}`, readMsg(t, "base64-body.eml"), msgOpts{}, true},
		{"body not in the encoded form", `{body: "cGxlYXNl"}`, readMsg(t, "base64-body.eml"), msgOpts{}, false},
		{"body html part", `{body: "<p>See attached"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"body not an attachment", `{body: "not really"}`, readMsg(t, "nested.eml"), msgOpts{}, false},
		{"body not a text attachment", `{body: "cannot be run in DOS mode"}`, readMsg(t, "exe-as-txt.eml"), msgOpts{}, false},
		{"attachment RFC 2231 name, nested", `{attachment_name: "*.scr"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"attachment RFC 2231 name decoded", `{attachment_name: "résumé final.scr"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"attachment RFC 2047 name", `{attachment_name: "FACTURE.PDF"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"attachment regex", `{attachment_name_regex: "\\.(exe|scr)$"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"attachment none", `{attachment_name: ["*.exe", "*.zip"]}`, readMsg(t, "nested.eml"), msgOpts{}, false},
		{"declared type", `{declared_type: "application/pdf"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"declared type glob", `{declared_type: "application/*"}`, plain, msgOpts{}, false},
		{"declared exe as txt", `{declared_type: "application/x-msdownload"}`, readMsg(t, "exe-as-txt.eml"), msgOpts{}, false},
		{"detected exe as txt", `{detected_type: "application/x-msdownload"}`, readMsg(t, "exe-as-txt.eml"), msgOpts{}, true},
		{"detected pdf", `{detected_type: "application/pdf"}`, readMsg(t, "nested.eml"), msgOpts{}, true},
		{"detected office", `{detected_type: "application/vnd.openxmlformats*"}`, docx(t), msgOpts{}, true},
		{"detected office is not a plain zip", `{detected_type: "application/zip"}`, docx(t), msgOpts{}, false},
		{"detected text", `{detected_type: "application/x-msdownload"}`, plain, msgOpts{}, false},
		{"size over", `{size_over: 100}`, plain, msgOpts{}, true},
		{"size over, not", `{size_over: 1k}`, plain, msgOpts{}, false},
		{"size under", `{size_under: 1k}`, plain, msgOpts{}, true},
		{"recipients over", `{recipients_over: 2}`, plain, msgOpts{rcpts: 3}, true},
		{"recipients over, not", `{recipients_over: 2}`, plain, msgOpts{rcpts: 2}, false},
		{"spf fail", `{spf: fail}`, plain, msgOpts{auth: spfFail}, true},
		{"spf of MAIL FROM, not HELO", `{spf: fail}`, plain, msgOpts{auth: allPass}, false},
		{"spf not checked", `{spf: [fail, softfail, none]}`, plain, msgOpts{}, false},
		{"dkim fail", `{dkim: fail}`, plain, msgOpts{auth: dmarcFail}, true},
		{"dkim none", `{dkim: none}`, plain, msgOpts{auth: spfFail}, true},
		{"dkim pass is not none", `{dkim: none}`, plain, msgOpts{auth: allPass}, false},
		{"dmarc fail", `{dmarc: fail}`, plain, msgOpts{auth: dmarcFail}, true},
		{"dmarc pass", `{dmarc: fail}`, plain, msgOpts{auth: allPass}, false},
		{"dnslist zone", `{dnslist: BL.test.}`, plain, msgOpts{auth: listed}, true},
		{"dnslist any", `{dnslist: "*"}`, plain, msgOpts{auth: listed}, true},
		{"dnslist other zone", `{dnslist: zen.example}`, plain, msgOpts{auth: listed}, false},
		{"dnslist not listed", `{dnslist: "*"}`, plain, msgOpts{auth: allPass}, false},
		{"sender", `{sender: "@pass.test"}`, plain, msgOpts{}, true},
		{"sender other", `{sender: ["@.pass.test", "bob@"]}`, plain, msgOpts{}, false},
		{"recipient", `{recipient: "r2@"}`, plain, msgOpts{rcpts: 3}, true},
		{"recipient none", `{recipient: "r2@"}`, plain, msgOpts{rcpts: 2}, false},
		// Broken structure: read as well as it can be, never a crash.
		{"unterminated: attachment type", `{declared_type: "application/x-msdownload"}`, readMsg(t, "unterminated.eml"), msgOpts{}, true},
		{"unterminated: sniffed", `{detected_type: "application/x-msdownload"}`, readMsg(t, "unterminated.eml"), msgOpts{}, true},
		{"unterminated: body", `{body: "wire transfer"}`, readMsg(t, "unterminated.eml"), msgOpts{}, true},
		{"1000 nested: name past the depth limit not seen", `{attachment_name: "deep.exe"}`, nestedDeep(1000), msgOpts{}, false},
		{"1000 nested: body", `{body: "wire transfer"}`, nestedDeep(1000), msgOpts{}, false},
		{"40 nested: within the depth limit", `{attachment_name: "deep.exe"}`, nestedDeep(30), msgOpts{}, true},
		{"1000 parts wide: the last past the parts limit", `{attachment_name: "last.exe"}`, wide(1000), msgOpts{}, false},
		{"1000 parts wide: an early one", `{attachment_name: "part5.txt"}`, wide(1000), msgOpts{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := parseFilters(t, fmt.Sprintf("  - {name: f, conditions: [%s], actions: [drop]}\n", c.cond))
			got, err := New(fs[0]).Match(context.Background(), message(t, c.msg, c.o))
			if err != nil || got != c.want {
				t.Errorf("Match = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestHeaderAdded: a header condition sees the fields the stages before
// added (an engine's verdict field).
func TestHeaderAdded(t *testing.T) {
	fs := parseFilters(t, "  - {name: f, conditions: [{header: X-Spam-Flag, matches: \"^YES$\"}], actions: [drop]}\n")
	m := message(t, readMsg(t, "plain.eml"), msgOpts{})
	if ok, _ := New(fs[0]).Match(context.Background(), m); ok {
		t.Error("matched before the field was added")
	}
	m.Added = []string{"X-Spam-Flag: YES"}
	if ok, _ := New(fs[0]).Match(context.Background(), m); !ok {
		t.Error("did not see the added field")
	}
}

// TestCombine: all conditions, or any; a filter without conditions matches
// every message.
func TestCombine(t *testing.T) {
	plain := readMsg(t, "plain.eml")
	hit, miss := `{header: X-Case, matches: none}`, `{header: X-Case, matches: drop}`
	for _, c := range []struct {
		combine string
		conds   []string
		want    bool
	}{
		{"all", []string{hit, hit}, true},
		{"all", []string{hit, miss}, false},
		{"all", []string{miss, hit}, false},
		{"any", []string{miss, hit}, true},
		{"any", []string{miss, miss}, false},
		{"any", []string{hit, miss}, true},
		{"all", nil, true},
		{"any", nil, true},
	} {
		fs := parseFilters(t, fmt.Sprintf("  - {name: f, combine: %s, conditions: [%s], actions: [drop]}\n", c.combine, strings.Join(c.conds, ", ")))
		got, err := New(fs[0]).Match(context.Background(), message(t, plain, msgOpts{}))
		if err != nil || got != c.want {
			t.Errorf("%s of %v: %v, %v; want %v", c.combine, c.conds, got, err, c.want)
		}
	}
}

// TestVerdict: the actions' verdict, named as the ESA's lines name the
// filter.
func TestVerdict(t *testing.T) {
	fs := parseFilters(t, `
  - name: everything
    actions:
      - {log_entry: "found it"}
      - {add_header: "X-A: 1"}
      - {strip_header: X-Secret}
      - {tag_subject: "[EXT]"}
      - {alternate_recipient: review@example.org}
      - {alternate_host: "10.0.0.1:2525"}
      - {notify: admin@example.org}
      - skip_remaining
      - bounce
  - {name: q, actions: [{quarantine: Policy}]}
  - {name: d, actions: [drop]}
`)
	m := message(t, readMsg(t, "plain.eml"), msgOpts{})
	v, err := New(fs[0]).Run(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	want := workqueue.Verdict{Action: workqueue.Bounce, By: "content filter 'everything' in the inbound table",
		AddHeaders: []string{"X-A: 1"}, StripHeaders: []string{"x-secret"}, TagSubject: "[EXT]", AltRcpt: "review@example.org",
		Reroute: "10.0.0.1:2525", SkipRest: true, Log: []string{"found it"},
		Notify: []workqueue.Notify{{To: "admin@example.org", By: "notify filter 'everything'"}}}
	if fmt.Sprintf("%+v", v) != fmt.Sprintf("%+v", want) {
		t.Errorf("verdict\n%+v\nwant\n%+v", v, want)
	}
	if v, _ := New(fs[1]).Run(context.Background(), m); v.Action != workqueue.Quarantine || v.Quarantine != "Policy" {
		t.Errorf("quarantine verdict %+v", v)
	}
	if v, _ := New(fs[2]).Run(context.Background(), m); v.Action != workqueue.Drop || v.By != "content filter 'd' in the inbound table" {
		t.Errorf("drop verdict %+v", v)
	}
	// A filter that does not match delivers, untouched.
	fs = parseFilters(t, "  - {name: n, conditions: [{header: X-Nope}], actions: [drop, {log_entry: x}]}\n")
	if v, err := New(fs[0]).Run(context.Background(), m); err != nil || fmt.Sprint(v) != fmt.Sprint(workqueue.Verdict{}) {
		t.Errorf("no match: %+v, %v", v, err)
	}
}

// TestSniff: the magics mail carries, and the standard library's types
// for the rest.
func TestSniff(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"MZ\x90\x00\x03", "application/x-msdownload"},
		{"\x7fELF\x02\x01", "application/x-executable"},
		{"%PDF-1.7\n", "application/pdf"},
		{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "application/x-ole-storage"},
		{"PK\x03\x04\x14\x00\x00\x00", "application/zip"},
		{"Rar!\x1a\x07\x00", "application/x-rar-compressed"},
		{"7z\xbc\xaf\x27\x1c\x00", "application/x-7z-compressed"},
		{"\x1f\x8b\x08", "application/x-gzip"},
		{"<html><body>", "text/html"},
		{"plain words", "text/plain"},
		{"\x00\x01\x02\x03", "application/octet-stream"},
	} {
		if got := Sniff([]byte(c.in)); got != c.want {
			t.Errorf("Sniff(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBodyScanBound: the body condition reads MaxBodyScan bytes of text at
// most: a word past them is not found.
func TestBodyScanBound(t *testing.T) {
	msg := "From: a@pass.test\r\nSubject: long\r\n\r\n" + strings.Repeat("x", MaxBodyScan) + "needle\r\n"
	fs := parseFilters(t, "  - {name: f, conditions: [{body: needle}], actions: [drop]}\n")
	if ok, _ := New(fs[0]).Match(context.Background(), message(t, []byte(msg), msgOpts{})); ok {
		t.Error("found a word past MaxBodyScan")
	}
	msg = "From: a@pass.test\r\nSubject: long\r\n\r\n" + strings.Repeat("x", MaxBodyScan-100) + "needle\r\n"
	if ok, _ := New(fs[0]).Match(context.Background(), message(t, []byte(msg), msgOpts{})); !ok {
		t.Error("did not find a word within MaxBodyScan")
	}
}

// FuzzMatch runs every condition kind on arbitrary messages: a verdict,
// never a panic.
func FuzzMatch(f *testing.F) {
	for _, n := range []string{"plain.eml", "base64-body.eml", "nested.eml", "exe-as-txt.eml", "unterminated.eml"} {
		f.Add(readMsg(f, n))
	}
	f.Add(nestedDeep(50))
	fs := parseFilters(f, `
  - name: all
    combine: any
    conditions:
      - {header: "*", matches: "x"}
      - {body: "wire"}
      - {attachment_name: "*.exe"}
      - {declared_type: "application/*"}
      - {detected_type: "application/x-msdownload"}
      - {size_over: 10}
      - {spf: fail}
      - {dnslist: "*"}
    actions: [drop]
`)
	flt := New(fs[0])
	f.Fuzz(func(t *testing.T, msg []byte) {
		m := message(t, msg, msgOpts{auth: listed})
		if _, err := flt.Match(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		e := &eval{m: m}
		root, _ := m.MIME()
		e.text(root)
		e.detected(root)
	})
}

// BenchmarkFilters: a policy's ten filters on one message (nested
// multipart with attachments), the MIME tree parsed once as the work
// queue does; per message.
func BenchmarkFilters(b *testing.B) {
	fs := parseFilters(b, `
  - {name: c1, conditions: [{header: X-Case, matches: "^header-hit$"}], actions: [drop]}
  - {name: c2, conditions: [{body: "wire transfer now"}], actions: [drop]}
  - {name: c3, conditions: [{attachment_name: ["*.exe", "*.js", "*.vbs"]}], actions: [drop]}
  - {name: c4, conditions: [{declared_type: application/x-msdownload}], actions: [drop]}
  - {name: c5, conditions: [{detected_type: application/x-msdownload}], actions: [drop]}
  - {name: c6, conditions: [{size_over: 10M}], actions: [drop]}
  - {name: c7, conditions: [{recipients_over: 50}], actions: [drop]}
  - {name: c8, conditions: [{spf: fail}], actions: [drop]}
  - {name: c9, conditions: [{dmarc: fail}], actions: [drop]}
  - {name: c10, conditions: [{header: "*", matches: "(?i)^subject: .*viagra"}], actions: [drop]}
`)
	var stages []*Filter
	for _, c := range fs {
		stages = append(stages, New(c))
	}
	raw := readMsg(b, "nested.eml")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m := message(b, raw, msgOpts{auth: allPass})
		for _, f := range stages {
			if _, err := f.Run(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
	}
}
