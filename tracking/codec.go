package tracking

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Both backends store a record's lines and recipients as text columns in
// these encodings, so that a record is one row and is read and written
// whole.

// encodeLines writes one line per timeline line: "unixnano level text".
// Text never holds a newline: the maillog escaping sees to that.
func encodeLines(lines []Line) string {
	var b strings.Builder
	n := 0
	for _, l := range lines {
		n += len(l.Text) + 24
	}
	b.Grow(n)
	var num [24]byte
	for _, l := range lines {
		b.Write(strconv.AppendInt(num[:0], unixNano(l.Time), 10))
		b.WriteByte(' ')
		b.WriteByte('0' + byte(l.Level))
		b.WriteByte(' ')
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func decodeLines(s string) ([]Line, error) {
	if s == "" {
		return nil, nil
	}
	lines := make([]Line, 0, strings.Count(s, "\n"))
	for s != "" {
		var row string
		row, s, _ = strings.Cut(s, "\n")
		ns, rest, ok1 := strings.Cut(row, " ")
		lv, text, ok2 := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok1 || !ok2 || err != nil || len(lv) != 1 {
			return nil, fmt.Errorf("tracking: bad stored line %q", row)
		}
		lines = append(lines, Line{Time: fromUnixNano(n), Level: event.Level(lv[0] - '0'), Text: text})
	}
	return lines, nil
}

// unixNano is 0 for the zero time, so that "not yet" sorts first and reads
// back as zero.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// storedRecipient has Recipient's fields without its MarshalJSON, which
// is for readers (nulls for zero times) and costs a second encoding pass.
type storedRecipient Recipient

func encodeRecipients(rs []Recipient) string {
	if len(rs) == 0 {
		return "[]"
	}
	stored := make([]storedRecipient, len(rs))
	for i, r := range rs {
		stored[i] = storedRecipient(r)
	}
	b, err := json.Marshal(stored)
	if err != nil {
		panic(err) // plain strings, numbers and times: cannot fail
	}
	return string(b)
}

func decodeRecipients(s string) ([]Recipient, error) {
	var rs []storedRecipient
	if err := json.Unmarshal([]byte(s), &rs); err != nil {
		return nil, fmt.Errorf("tracking: bad stored recipients: %w", err)
	}
	out := make([]Recipient, len(rs))
	for i, r := range rs {
		out[i] = Recipient(r)
	}
	return out, nil
}

func encodeIDs(ids []uint64) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendUint(b, id, 10)
	}
	return string(b)
}

func decodeIDs(s string) ([]uint64, error) {
	var ids []uint64
	for f := range strings.FieldsSeq(s) {
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tracking: bad stored IDs %q", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// likePattern turns an address filter with '*' into a LIKE pattern with
// '\' as the escape character; ok is false when the filter has no '*'.
func likePattern(s string) (pattern string, ok bool) {
	if !strings.Contains(s, "*") {
		return s, false
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`, `*`, `%`)
	return r.Replace(s), true
}

// substringPattern is the LIKE pattern of a substring search.
func substringPattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}
