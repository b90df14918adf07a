package sqlrow

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/mailgate/mailgate/event"

	"github.com/mailgate/mailgate/tracking"
)

// Both backends store a record's lines and recipients in these encodings,
// in a column each, so that a record is read and written whole (SQLite
// keeps a message's in a row of message_details, the lines compressed by
// PackLines).

// EncodeLines writes one line per timeline line: "unixnano level text",
// or "unixnano level+n prefix+text" when the line has a Prefix of n bytes.
// Neither holds a newline: the maillog escaping sees to that.
func EncodeLines(lines []tracking.Line) string {
	return string(appendLines(nil, lines))
}

func appendLines(b []byte, lines []tracking.Line) []byte {
	for _, l := range lines {
		b = strconv.AppendInt(b, UnixNano(l.Time), 10)
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

func DecodeLines(s string) ([]tracking.Line, error) {
	if s == "" {
		return nil, nil
	}
	lines := make([]tracking.Line, 0, strings.Count(s, "\n"))
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
		lines = append(lines, tracking.Line{Time: FromUnixNano(n), Level: event.Level(lv[0] - '0'), Text: text, Prefix: prefix})
	}
	return lines, nil
}

// UnixNano is 0 for the zero time, so that "not yet" sorts first and reads
// back as zero.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// storedRecipient has Recipient's fields without its MarshalJSON, which
// is for readers (nulls for zero times) and costs a second encoding pass.
type storedRecipient tracking.Recipient

func EncodeRecipients(rs []tracking.Recipient) string {
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

func DecodeRecipients(s string) ([]tracking.Recipient, error) {
	var rs []storedRecipient
	if err := json.Unmarshal([]byte(s), &rs); err != nil {
		return nil, fmt.Errorf("tracking: bad stored recipients: %w", err)
	}
	out := make([]tracking.Recipient, len(rs))
	for i, r := range rs {
		out[i] = tracking.Recipient(r)
	}
	return out, nil
}

func EncodeIDs(ids []uint64) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendUint(b, id, 10)
	}
	return string(b)
}

func DecodeIDs(s string) ([]uint64, error) {
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

// SubstringPattern is the LIKE pattern of a substring search.
func SubstringPattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// packedLines marks lines stored compressed (s2): text lines never start
// with a NUL.
const packedLines = 0

// PackLines is EncodeLines compressed, for SQLite, which does not
// compress on its own (PostgreSQL does): a timeline is about 1 KB of
// repetitive text, which s2 brings to 57 % at about 900 MB/s, so that an
// import writes (twice: the WAL, then the database) fewer bytes. buf is
// scratch space, returned for the next call.
func PackLines(buf []byte, lines []tracking.Line) (packed, scratch []byte) {
	if len(lines) == 0 {
		return []byte{}, buf
	}
	buf = appendLines(buf[:0], lines)
	out := make([]byte, 1+s2.MaxEncodedLen(len(buf)))
	out[0] = packedLines
	return out[:1+len(s2.Encode(out[1:], buf))], buf
}

// UnpackLines decodes lines stored by PackLines, or as text by
// EncodeLines (PostgreSQL; SQLite rows written before packing).
func UnpackLines(s string) ([]tracking.Line, error) {
	if s == "" || s[0] != packedLines {
		return DecodeLines(s)
	}
	text, err := s2.Decode(nil, []byte(s[1:]))
	if err != nil {
		return nil, fmt.Errorf("tracking: stored lines: %w", err)
	}
	return DecodeLines(string(text))
}

// storedAuth is a message's authentication results in the auth column;
// the spf, dkim and dmarc columns hold what searches match
// (Message.MailFromSPF, DKIMResultList, DMARCResult).
type storedAuth struct {
	SPF   []tracking.SPFCheck  `json:"spf,omitempty"`
	DKIM  []tracking.DKIMCheck `json:"dkim,omitempty"`
	DMARC *tracking.DMARCCheck `json:"dmarc,omitempty"`
}

// EncodeAuth is the auth column of m: "" when it has no results (every
// record stored before there were any).
func EncodeAuth(m *tracking.Message) string {
	if len(m.SPF) == 0 && len(m.DKIM) == 0 && m.DMARC == nil {
		return ""
	}
	b, err := json.Marshal(storedAuth{m.SPF, m.DKIM, m.DMARC})
	if err != nil {
		panic(err) // strings and bools: cannot fail
	}
	return string(b)
}

// DecodeAuth fills m's results from its auth column.
func DecodeAuth(s string, m *tracking.Message) error {
	if s == "" {
		return nil
	}
	var a storedAuth
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return fmt.Errorf("tracking: bad stored authentication results: %w", err)
	}
	m.SPF, m.DKIM, m.DMARC = a.SPF, a.DKIM, a.DMARC
	return nil
}
