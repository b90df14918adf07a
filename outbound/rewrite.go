package outbound

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/queue"
)

// The work queue's rewrites (queue.Work): an alternate recipient and an
// alternate mail host change where a message goes, a stripped header field
// or a subject tag what it says. The spool keeps the message as received;
// delivery applies the rewrites each time it sends it.

// redirect applies a work outcome's alternate recipient to env, and
// returns the alternate host, if any.
func (m *Manager) redirect(env *queue.Envelope) (*queue.Envelope, string) {
	w, ok, _ := m.o.Spool.Work(env.MID)
	if !ok || w.Rcpt == "" && w.Route == "" {
		return env, ""
	}
	if w.Rcpt != "" {
		e := *env
		e.Rcpts = make([]queue.Recipient, len(env.Rcpts))
		for i, r := range env.Rcpts {
			e.Rcpts[i] = queue.Recipient{RID: r.RID, Addr: w.Rcpt}
		}
		env = &e
	}
	return env, w.Route
}

// routeDest is the destination of an alternate mail host ("host" or
// "host:port"): a route of its own, named in brackets so that it is never
// a recipient domain's.
func (m *Manager) routeDest(host string) *dest {
	name := "[" + host + "]"
	d := m.dests[name]
	if d == nil {
		h, port := host, m.port()
		if hh, p, err := net.SplitHostPort(host); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				h, port = hh, n
			}
		}
		route := &config.Route{Domain: name, Hosts: []config.RouteHost{{Host: h, Port: port}}}
		d = &dest{name: name, route: route, ctl: m.o.Delivery.Destination(name)}
		d.ctl.MaxConnections = max(d.ctl.MaxConnections, 1)
		d.ctl.MaxMessagesPerConnection = max(d.ctl.MaxMessagesPerConnection, 1)
		m.dests[name] = d
	}
	d.idle = time.Time{}
	return d
}

// maxRewriteHeader bounds the header read into memory to be rewritten: a
// longer one is sent as it is after its first maxRewriteHeader bytes (the
// fields to strip and the Subject are in the first 256 KiB of any real
// message).
const maxRewriteHeader = 256 << 10

// rewriteHeader returns the message of body with w's rewrites applied to
// its header, and the change in size. The body after the header is
// streamed, never read whole.
func rewriteHeader(body io.Reader, w queue.Work) (io.Reader, int64, error) {
	br := bufio.NewReaderSize(body, 4096)
	var head bytes.Buffer
	ended := false
	for head.Len() < maxRewriteHeader {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("outbound: read the header to rewrite: %w", err)
		}
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' && len(bytes.TrimRight(line, "\r\n")) == 0 {
			ended = true
			break
		}
	}
	n := int64(head.Len())
	h := head.Bytes()
	blank := []byte(nil)
	if ended {
		i := bytes.LastIndex(h[:len(h)-1], []byte("\n"))
		blank = h[i+1:]
		h = h[:i+1]
	}
	out := RewriteFields(h, w.Strip, w.TagSubject)
	out = append(out, blank...)
	return io.MultiReader(bytes.NewReader(out), br), int64(len(out)) - n, nil
}

// RewriteFields returns the header fields h (each ending in a line end)
// without the fields named in strip (lower case) and with tag before the
// first Subject's value; a Subject of the tag is added when there is none.
// Text that is not a field (a broken header) is kept as it is.
func RewriteFields(h []byte, strip []string, tag string) []byte {
	out := make([]byte, 0, len(h)+len(tag)+16)
	tagged := tag == ""
	for len(h) > 0 {
		end := fieldEnd(h)
		f := h[:end]
		h = h[end:]
		name, _, ok := bytes.Cut(f, []byte(":"))
		lname := strings.ToLower(strings.TrimRight(string(name), " \t"))
		if ok && containsName(strip, lname) {
			continue
		}
		if ok && !tagged && lname == "subject" {
			tagged = true
			v := f[len(name)+1:]
			out = append(out, f[:len(name)+1]...)
			out = append(out, ' ')
			out = append(out, strings.TrimRight(tag, " ")...)
			if t := bytes.TrimLeft(v, " \t"); len(bytes.TrimRight(t, "\r\n")) > 0 {
				out = append(out, ' ')
				out = append(out, t...)
			} else {
				out = append(out, "\r\n"...)
			}
			continue
		}
		out = append(out, f...)
	}
	if !tagged {
		out = append(out, "Subject: "+strings.TrimRight(tag, " ")+"\r\n"...)
	}
	return out
}

// fieldEnd returns the length of the field at the start of h: its first
// line and the continuation lines after it.
func fieldEnd(h []byte) int {
	i := 0
	for {
		nl := bytes.IndexByte(h[i:], '\n')
		if nl < 0 {
			return len(h)
		}
		i += nl + 1
		if i >= len(h) || h[i] != ' ' && h[i] != '\t' {
			return i
		}
	}
}

func containsName(names []string, n string) bool {
	for _, s := range names {
		if s == n {
			return true
		}
	}
	return false
}
