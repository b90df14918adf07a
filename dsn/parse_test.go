package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// report is a built report as a reader sees it: parsed back with the
// standard library's mail and MIME readers, the way a DSN-reading MUA or
// bounce processor takes it apart.
type report struct {
	header       mail.Header
	reportType   string
	parts        []reportPart
	perMessage   textproto.MIMEHeader
	perRecipient []textproto.MIMEHeader
}

type reportPart struct {
	contentType string
	params      map[string]string
	cte         string // as written; multipart decodes quoted-printable
	body        []byte // decoded
}

// readReport parses msg and checks what every report must be: CRLF lines of
// at most 998 octets, a multipart/report with the three parts in order, and
// a delivery-status part of header blocks.
func readReport(msg []byte) (*report, error) {
	if err := checkLines(msg); err != nil {
		return nil, err
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("net/mail: %w", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("Content-Type: %w", err)
	}
	if mt != "multipart/report" {
		return nil, fmt.Errorf("Content-Type %s, want multipart/report", mt)
	}
	r := &report{header: m.Header, reportType: params["report-type"]}
	global := r.reportType == "global-delivery-status"
	if r.reportType != "delivery-status" && !global {
		return nil, fmt.Errorf("report-type %q", r.reportType)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
		if i == 3 {
			return nil, errors.New("more than three parts")
		}
		cte := p.Header.Get("Content-Transfer-Encoding")
		var body io.Reader = p
		if strings.EqualFold(cte, "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		data, err := io.ReadAll(body)
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
		ct, ps, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("part %d Content-Type: %w", i, err)
		}
		r.parts = append(r.parts, reportPart{contentType: ct, params: ps, cte: cte, body: data})
	}
	want := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
	if global {
		want[1], want[2] = "message/global-delivery-status", "message/global-headers"
	}
	if len(r.parts) != 3 {
		return nil, fmt.Errorf("%d parts, want 3", len(r.parts))
	}
	for i, p := range r.parts {
		if p.contentType != want[i] {
			return nil, fmt.Errorf("part %d is %s, want %s", i, p.contentType, want[i])
		}
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(r.parts[1].body)))
	for {
		h, err := tr.ReadMIMEHeader()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("delivery status: %w", err)
		}
		if len(h) > 0 {
			if r.perMessage == nil {
				r.perMessage = h
			} else {
				r.perRecipient = append(r.perRecipient, h)
			}
		}
		if err != nil {
			break
		}
	}
	if r.perMessage.Get("Reporting-MTA") == "" {
		return nil, errors.New("delivery status without Reporting-MTA")
	}
	for i, h := range r.perRecipient {
		for _, k := range []string{"Final-Recipient", "Action", "Status"} {
			if h.Get(k) == "" {
				return nil, fmt.Errorf("recipient block %d without %s", i, k)
			}
		}
	}
	return r, nil
}

// checkLines checks that msg is lines ending in CRLF, none longer than 998
// octets, with no CR or LF elsewhere.
func checkLines(msg []byte) error {
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		return errors.New("does not end in CRLF")
	}
	for i, line := range bytes.Split(msg[:len(msg)-2], []byte("\r\n")) {
		if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
			return fmt.Errorf("line %d: bare %q at %d: %q", i+1, line[j], j, line)
		}
		if len(line) > maxLine {
			return fmt.Errorf("line %d is %d octets long", i+1, len(line))
		}
	}
	return nil
}
