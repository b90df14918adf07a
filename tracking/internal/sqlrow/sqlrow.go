// Package sqlrow holds what the two SQL stores share: the row encodings
// of records, the columns, the WHERE clause of a Query, and the store
// helpers built on the tracking.Store methods.
package sqlrow

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"

	"github.com/mailgate/mailgate/tracking"
)

const MessageCols = `host, mid, icid, dcids, remote_ip, remote_host, sender_group, sender, recipients,
	subject, message_id, size, started, finished, status, abort, abort_reason, abort_state, abort_bytes, bounce_of, updated,
	spf, dkim, dmarc, dnslist, auth`

const ConnCols = `host, kind, id, remote_ip, remote_host, sender_group, started, finished, lost,
	cause, state, last_command, data_bytes, mids, lines, dnslist`

// A Dialect is how a backend spells what differs in the filters of a
// Query, so that both backends build them in one place (WhereClause).
type Dialect struct {
	Recipients string             // the table, or view, of recipient rows
	Arg        func(n int) string // the nth placeholder, from 1
	Fold       func(col string) string
	Ilike      string // the case-insensitive LIKE, for the subject
}

// WhereClause is the WHERE clause (with its leading space) of q's filters,
// and args with their values appended; placeholders are numbered after
// the args given.
func WhereClause(d Dialect, q tracking.Query, args []any) (string, []any) {
	var where []string
	// cond has one '?' where its value goes.
	add := func(cond string, a any) {
		args = append(args, a)
		where = append(where, strings.ReplaceAll(cond, "?", d.Arg(len(args))))
	}
	if q.Host != "" {
		add("host = ?", q.Host)
	}
	if q.MID != 0 {
		add("mid = ?", int64(q.MID))
	}
	if q.ICID != 0 {
		add("icid = ?", int64(q.ICID))
	}
	if q.DCID != 0 {
		add("(host, mid) IN (SELECT host, mid FROM deliveries WHERE dcid = ?)", int64(q.DCID))
	}
	if q.Sender == tracking.NullSender {
		add(d.Fold("sender")+" = "+d.Fold("?"), "")
	} else if q.Sender != "" {
		if p, ok := likePattern(q.Sender); ok {
			add(d.Fold("sender")+` LIKE `+d.Fold("?")+` ESCAPE '\'`, p)
		} else {
			add(d.Fold("sender")+" = "+d.Fold("?"), q.Sender)
		}
	}
	if q.Recipient != "" {
		if p, ok := likePattern(q.Recipient); ok {
			add(`(host, mid) IN (SELECT host, mid FROM `+d.Recipients+` WHERE `+d.Fold("address")+` LIKE `+d.Fold("?")+` ESCAPE '\')`, p)
		} else {
			add("(host, mid) IN (SELECT host, mid FROM "+d.Recipients+" WHERE "+d.Fold("address")+" = "+d.Fold("?")+")", q.Recipient)
		}
	}
	if q.Subject != "" {
		add(`subject `+d.Ilike+` ? ESCAPE '\'`, SubstringPattern(q.Subject))
	}
	if q.MessageID != "" {
		add("message_id = ?", q.MessageID)
	}
	if q.RemoteIP != "" {
		add("remote_ip = ?", q.RemoteIP)
	}
	if q.Status != "" {
		add("status = ?", string(q.Status))
	}
	if q.Abort != "" {
		add("abort = ?", string(q.Abort))
	}
	if q.SPF != "" {
		add("spf = ?", q.SPF)
	}
	if q.DKIM != "" {
		// dkim holds each signature's result, separated by spaces.
		add("(' ' || dkim || ' ') LIKE ?", "% "+q.DKIM+" %")
	}
	if q.DMARC != "" {
		add("dmarc = ?", q.DMARC)
	}
	if q.DNSList != "" {
		add("dnslist = ?", q.DNSList)
	}
	if !q.Since.IsZero() {
		add("started >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("started < ?", q.Until.UnixNano())
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// Scanner is *sql.Rows or pgx.Rows.
type Scanner interface{ Scan(dest ...any) error }

func ScanMessage(row Scanner, withLines bool) (*tracking.Message, error) {
	var m tracking.Message
	var mid, icid, bounceOf, started, finished, updated int64
	var dcids, rcpts, status, abort, lines, spf, dkim, dmarc, auth string
	dest := []any{&m.Host, &mid, &icid, &dcids, &m.RemoteIP, &m.RemoteHost, &m.SenderGroup, &m.Sender, &rcpts,
		&m.Subject, &m.MessageID, &m.Size, &started, &finished, &status, &abort, &m.AbortReason, &m.AbortState,
		&m.AbortBytes, &bounceOf, &updated, &spf, &dkim, &dmarc, &m.DNSList, &auth}
	if withLines {
		dest = append(dest, &lines)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, fmt.Errorf("tracking: read message: %w", err)
	}
	m.MID, m.ICID, m.BounceOf = uint64(mid), uint64(icid), uint64(bounceOf)
	m.Started, m.Finished, m.Updated = FromUnixNano(started), FromUnixNano(finished), FromUnixNano(updated)
	m.Status, m.Abort = tracking.Status(status), tracking.Abort(abort)
	var err error
	if m.DCIDs, err = DecodeIDs(dcids); err != nil {
		return nil, err
	}
	if m.Recipients, err = DecodeRecipients(rcpts); err != nil {
		return nil, err
	}
	if m.Lines, err = UnpackLines(lines); err != nil {
		return nil, err
	}
	if err := DecodeAuth(auth, &m); err != nil {
		return nil, err
	}
	m.VerdictsFromLines()
	return &m, nil
}

func ScanConn(row Scanner) (*tracking.Conn, error) {
	var c tracking.Conn
	var kind int
	var id, started, finished int64
	var mids, lines string
	if err := row.Scan(&c.Host, &kind, &id, &c.RemoteIP, &c.RemoteHost, &c.SenderGroup, &started, &finished,
		&c.Lost, &c.Cause, &c.State, &c.LastCommand, &c.DataBytes, &mids, &lines, &c.DNSList); err != nil {
		return nil, fmt.Errorf("tracking: read connection: %w", err)
	}
	c.Kind, c.ID = event.ConnKind(kind), uint64(id)
	c.Started, c.Finished = FromUnixNano(started), FromUnixNano(finished)
	var err error
	if c.MIDs, err = DecodeIDs(mids); err != nil {
		return nil, err
	}
	if c.Lines, err = UnpackLines(lines); err != nil {
		return nil, err
	}
	return &c, nil
}

// Latest returns the batch's records in key order, the last of each key
// only (as INSERT OR REPLACE one by one would keep). Stores write rows in
// key order: they are then appended to the B-trees rather than split into
// their middle, and writers that lock rows in the same order cannot
// deadlock.
func Latest(b *tracking.Batch) ([]*tracking.Message, []*tracking.Conn) {
	return lastOfKey(b.Messages, func(x, y *tracking.Message) int {
			return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.MID, y.MID))
		}), lastOfKey(b.Conns, func(x, y *tracking.Conn) int {
			return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.ID, y.ID))
		})
}

// lastOfKey sorts a copy of rs stably by key and keeps the last of each
// run of equal keys.
func lastOfKey[R any](rs []R, compare func(a, b R) int) []R {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, compare)
	n := 0
	for i := range out {
		if i+1 < len(out) && compare(out[i], out[i+1]) == 0 {
			continue
		}
		out[n] = out[i]
		n++
	}
	clear(out[n:])
	return out[:n]
}

// FindByLoad is Find through Load: the message, then its connections.
func FindByLoad(ctx context.Context, s tracking.Store, host string, mid uint64) (*tracking.Message, []*tracking.Conn, error) {
	b, err := s.Load(ctx, tracking.Keys{Messages: []tracking.MessageKey{{Host: host, MID: mid}}})
	if err != nil {
		return nil, nil, err
	}
	if len(b.Messages) == 0 {
		return nil, nil, fmt.Errorf("%w: MID %d on %s", tracking.ErrNotFound, mid, host)
	}
	m := b.Messages[0]
	var keys tracking.Keys
	if m.ICID != 0 {
		keys.Conns = append(keys.Conns, tracking.ConnKey{Host: host, Kind: event.InboundConn, ID: m.ICID})
	}
	for _, d := range m.DCIDs {
		if d != 0 {
			keys.Conns = append(keys.Conns, tracking.ConnKey{Host: host, Kind: event.OutboundConn, ID: d})
		}
	}
	if len(keys.Conns) == 0 {
		return m, nil, nil
	}
	cb, err := s.Load(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	return m, cb.Conns, nil
}

// AddBucket adds n messages of status s (and abort kind a) to the bucket
// starting at t, the last of out or a new one.
func AddBucket(out []tracking.Bucket, t time.Time, s tracking.Status, a tracking.Abort, n int) []tracking.Bucket {
	if len(out) == 0 || !out[len(out)-1].Start.Equal(t) {
		out = append(out, tracking.Bucket{Start: t, Status: map[tracking.Status]int{}, Abort: map[tracking.Abort]int{}})
	}
	b := &out[len(out)-1]
	b.Status[s] += n
	if a != "" {
		b.Abort[a] += n
	}
	return out
}

// Limit is the most messages a search of q returns.
func Limit(q tracking.Query) int {
	if q.Limit <= 0 {
		return tracking.DefaultLimit
	}
	return q.Limit
}

// Newest is the end of a search's statement: the newest n, a message's
// MID breaking a tie of times.
func Newest(n int) string {
	return " ORDER BY started DESC, mid DESC LIMIT " + strconv.Itoa(n)
}

func DerefMessages(ms []*tracking.Message) []tracking.Message {
	out := make([]tracking.Message, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

// Range is [from, to] in stored times, a zero bound none.
func Range(from, to time.Time) (int64, int64) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	return lo, hi
}
