package tracking

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/mailgate/mailgate/event"
)

// Both backends store a record's lines and recipients in these encodings,
// in a column each, so that a record is read and written whole (SQLite
// keeps a message's in a row of message_details, the lines compressed by
// packLines).

// encodeLines writes one line per timeline line: "unixnano level text",
// or "unixnano level+n prefix+text" when the line has a Prefix of n bytes.
// Neither holds a newline: the maillog escaping sees to that.
func encodeLines(lines []Line) string {
	return string(appendLines(nil, lines))
}

func appendLines(b []byte, lines []Line) []byte {
	for _, l := range lines {
		b = strconv.AppendInt(b, unixNano(l.Time), 10)
		b = append(b, ' ', '0'+byte(l.Level))
		if l.Prefix != "" {
			b = append(b, '+')
			b = strconv.AppendInt(b, int64(len(l.Prefix)), 10)
			b = append(b, ' ')
			b = append(b, l.Prefix...)
		} else {
			b = append(b, ' ')
		}
		b = append(b, l.Text...)
		b = append(b, '\n')
	}
	return b
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
		var prefix string
		if ok2 && len(lv) > 2 && lv[1] == '+' {
			p, perr := strconv.Atoi(lv[2:])
			if perr != nil || p < 0 || p > len(text) {
				return nil, fmt.Errorf("tracking: bad stored line %q", row)
			}
			prefix, text, lv = text[:p], text[p:], lv[:1]
		}
		if !ok1 || !ok2 || err != nil || len(lv) != 1 {
			return nil, fmt.Errorf("tracking: bad stored line %q", row)
		}
		lines = append(lines, Line{Time: fromUnixNano(n), Level: event.Level(lv[0] - '0'), Text: text, Prefix: prefix})
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

// packedLines marks lines stored compressed (s2): text lines never start
// with a NUL.
const packedLines = 0

// packLines is encodeLines compressed, for SQLite, which does not
// compress on its own (PostgreSQL does): a timeline is about 1 KB of
// repetitive text, which s2 brings to 57 % at about 900 MB/s, so that an
// import writes (twice: the WAL, then the database) fewer bytes. buf is
// scratch space, returned for the next call.
func packLines(buf []byte, lines []Line) (packed, scratch []byte) {
	if len(lines) == 0 {
		return []byte{}, buf
	}
	buf = appendLines(buf[:0], lines)
	out := make([]byte, 1+s2.MaxEncodedLen(len(buf)))
	out[0] = packedLines
	return out[:1+len(s2.Encode(out[1:], buf))], buf
}

// unpackLines decodes lines stored by packLines, or as text by
// encodeLines (PostgreSQL; SQLite rows written before packing).
func unpackLines(s string) ([]Line, error) {
	if s == "" || s[0] != packedLines {
		return decodeLines(s)
	}
	text, err := s2.Decode(nil, []byte(s[1:]))
	if err != nil {
		return nil, fmt.Errorf("tracking: stored lines: %w", err)
	}
	return decodeLines(string(text))
}
