package tracking

import (
	"fmt"
	"io"
	"mime"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// subjectDecoder decodes RFC 2047 encoded words in any charset the WHATWG
// encoding standard names (what mail clients decode), not only the
// UTF-8, ISO-8859-1 and US-ASCII of the standard library.
var subjectDecoder = mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(r), nil
}}

// subjectText is a logged Subject as the message's reader sees it: the
// folding the ESA logs as a literal "\r\n" followed by a space or tab is
// undone, and RFC 2047 encoded words are decoded ("=?UTF-8?B?w6l0w6k=?="
// is "été"). Text that does not decode is kept as it is; control
// characters decoded from it become spaces, so that a subject stays one
// line. mailgate's own log has the subject decoded already: decoding
// again leaves it alone.
func subjectText(s string) string {
	if strings.Contains(s, `\r\n`) {
		s = strings.NewReplacer(`\r\n\t`, " ", `\r\n `, " ").Replace(s)
	}
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := subjectDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, d)
}
