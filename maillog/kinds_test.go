package maillog

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Kinds of the sample lines that parse as event.Unknown. A kind is the
// line's message with what varies taken out: numbers become "n", quoted
// text and addresses become "'...'" and "<...>", and the text after the
// first few words that say what the line is is dropped.

var (
	kindQuoted = regexp.MustCompile(`'[^']*'|"[^"]*"|<[^>]*>|\[[^\]]*\]|\([^)]*\)`)
	kindNumber = regexp.MustCompile(`\b[0-9][0-9.]*\b`)
)

// kindOf names the kind of a message.
func kindOf(msg string) string {
	s := kindQuoted.ReplaceAllStringFunc(msg, func(q string) string { return q[:1] + "..." + q[len(q)-1:] })
	s = kindNumber.ReplaceAllString(s, "n")
	words := strings.Fields(s)
	if len(words) > 6 {
		words = words[:6]
	}
	return strings.Join(words, " ")
}

// unknownKinds counts, by kind, the lines of the samples that parse as
// event.Unknown and are log lines (they have a level word: the message
// bodies at the end of one sample are not).
func unknownKinds(t *testing.T) map[string]int {
	kinds := map[string]int{}
	for _, l := range readSamples(t) {
		e, _ := ParseLine(l.text, time.UTC)
		u, ok := e.Event.(event.Unknown)
		if !ok || e.Level == 0 {
			continue
		}
		kinds[kindOf(u.Text)]++
	}
	return kinds
}

// TestSamplesUnknownKinds keeps, in testdata/unknown-kinds.golden, the
// kinds of sample lines that are still Unknown and how many lines of each:
// a kind that starts or stops parsing changes the file (go test -update
// rewrites it; review the diff).
func TestSamplesUnknownKinds(t *testing.T) {
	kinds := unknownKinds(t)
	type row struct {
		kind string
		n    int
	}
	rows := make([]row, 0, len(kinds))
	total := 0
	for k, n := range kinds {
		rows = append(rows, row{k, n})
		total += n
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.kind, b.kind))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "# sample log lines that parse as Unknown, by kind: %d lines, %d kinds\n", total, len(rows))
	for _, r := range rows {
		fmt.Fprintf(&b, "%4d %s\n", r.n, r.kind)
	}
	const golden = "testdata/unknown-kinds.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("Unknown kinds changed (go test -update rewrites %s):\n%s", golden, got)
	}
}
