package filter

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/mailgate/mailgate/internal/badmime"
)

// hostileMax bounds what the filters' evaluation of one message may
// allocate, whatever its size: the MIME tree (rfc822's bound, 4 MiB), the
// body text (MaxBodyScan, which a growing buffer allocates about four
// times over: 2 MiB of doublings, then room for a last read), the sniffed
// types, and the race detector's own (-race: 8.5 MB for the 100 MB text
// part).
const hostileMax = 16 << 20

// hostileFilters are one filter per condition kind that reads content,
// each on one of the corpus's baits, and the header conditions.
const hostileFilters = `
  - {name: text,     conditions: [{body: "wire transfer now"}], actions: [drop]}
  - {name: name,     conditions: [{attachment_name: "*.exe"}], actions: [drop]}
  - {name: exe,      conditions: [{detected_type: application/x-msdownload}], actions: [drop]}
  - {name: declared, conditions: [{declared_type: "application/*"}], actions: [drop]}
  - {name: header,   conditions: [{header: "*", matches: "(?i)^subject: .*(unknown|nul)"}], actions: [drop]}
`

// TestHostile: each hostile message through the filters of every
// condition kind that reads content: a verdict for each, the baits found
// that the corpus says a reader within rfc822's limits finds (no more, no
// fewer), and an allocation bounded whatever the message's size.
func TestHostile(t *testing.T) {
	fs := parseFilters(t, hostileFilters)
	msgs := badmime.Corpus()
	for _, big := range []struct {
		name  string
		write func(io.Writer) error
		want  badmime.Found
	}{
		{"a 100 MB attachment name, RFC 2231 continuations", func(w io.Writer) error { return badmime.WriteLongName(w, 100<<20) }, badmime.Found{Text: true, Exe: true}},
		{"a 100 MB attachment name on one line", func(w io.Writer) error { return badmime.WriteLongNameLine(w, 100<<20) }, badmime.Found{}},
		// The text is past MaxBodyScan.
		{"a 100 MB text part", func(w io.Writer) error { return badmime.WriteBigBody(w, 100<<20) }, badmime.Found{Name: true, Exe: true}},
	} {
		var b bytes.Buffer
		if err := big.write(&b); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, badmime.Message{Name: big.name, Msg: b.Bytes(), Want: big.want})
	}
	for _, hm := range msgs {
		t.Run(hm.Name, func(t *testing.T) {
			m := message(t, hm.Msg, msgOpts{})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			matched := map[string]bool{}
			for _, c := range fs {
				ok, err := New(c).Match(context.Background(), m)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				matched[c.Name] = ok
			}
			runtime.ReadMemStats(&after)
			if got := (badmime.Found{Text: matched["text"], Name: matched["name"], Exe: matched["exe"]}); got != hm.Want {
				t.Errorf("found %+v, want %+v", got, hm.Want)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > hostileMax {
				t.Errorf("%d bytes: the filters allocated %d bytes, more than %d", len(hm.Msg), alloc, hostileMax)
			}
			t.Logf("%d bytes: the filters allocated %d bytes", len(hm.Msg), alloc)
			// The declared type and the Subject are read whatever the
			// structure below them.
			if hm.Want.Name && !matched["declared"] {
				t.Errorf("the attachment's declared type not seen")
			}
			if (hm.Name == "unknown charsets" || hm.Name == "NUL bytes") != matched["header"] {
				t.Errorf("header condition: %v", matched["header"])
			}
		})
	}
}
