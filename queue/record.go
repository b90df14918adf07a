package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// On-disk layout. See doc.go for the prose description; every number here
// is part of the format and changing one needs a new segVersion.
const (
	segMagic      = "MGSPOOL\x00"
	segVersion    = 1
	segHeaderSize = 32

	recMagic      = "MGR\xa5"
	recHeaderSize = 20

	// maxPayload bounds a record so that a corrupt length can never make
	// recovery allocate more than this, and so that it fits the uint32 field.
	maxPayload = 1 << 30
	// maxEnvelope bounds the encoded envelope, which recovery holds in
	// memory whole (the body it only streams through the CRC).
	maxEnvelope = 1 << 20

	payloadVersion = 1
	// authVersion is the version of a message payload whose envelope ends
	// with Auth; messages without it are written as version 1, which
	// every release reads.
	authVersion = 2
)

type recType uint8

const (
	recMessage recType = 1 // envelope and body
	recState   recType = 2 // per-recipient delivery state
	recFinish  recType = 3 // the message is done
	recWork    recType = 4 // the work queue is done with the message
)

func (t recType) String() string {
	switch t {
	case recMessage:
		return "message"
	case recState:
		return "state"
	case recFinish:
		return "finish"
	case recWork:
		return "work"
	}
	return fmt.Sprintf("recType(%d)", uint8(t))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc is CRC-32C seeded with the spool's salt. The salt is random per spool
// and never leaves the spool directory, so a sender who places the bytes of
// a well-formed record inside a message body cannot make recovery's resync
// (which searches for record starts after a corrupt region) accept it.
func crc(salt uint32, p []byte) uint32 { return crc32.Update(salt, castagnoli, p) }

// putSegHeader writes the fixed header of a segment file.
//
//	[0:8]   magic "MGSPOOL\0"
//	[8:10]  format version (1)
//	[10:12] zero
//	[12:16] salt
//	[16:24] segment sequence number (matches the file name)
//	[24:28] zero
//	[28:32] CRC-32C (unsalted) of [0:28]
func putSegHeader(b []byte, seq uint64, salt uint32) {
	clear(b[:segHeaderSize])
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[8:], segVersion)
	binary.LittleEndian.PutUint32(b[12:], salt)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
}

func parseSegHeader(b []byte) (seq uint64, salt uint32, err error) {
	if len(b) < segHeaderSize {
		return 0, 0, errors.New("short segment header")
	}
	if string(b[:8]) != segMagic {
		return 0, 0, errors.New("bad segment magic")
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return 0, 0, errors.New("segment header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != segVersion {
		return 0, 0, fmt.Errorf("segment format version %d, want %d", v, segVersion)
	}
	return binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint32(b[12:]), nil
}

// putRecHeader writes a record header.
//
//	[0:4]   magic "MGR\xa5"
//	[4]     record type
//	[5:8]   zero
//	[8:12]  payload length
//	[12:16] salted CRC-32C of the payload
//	[16:20] salted CRC-32C of [0:16]
//
// The header has its own checksum so that recovery can reject a candidate
// record start in O(1) while resyncing, and so that a corrupt length is never
// trusted.
func putRecHeader(b []byte, salt uint32, t recType, n int, payloadCRC uint32) {
	copy(b, recMagic)
	b[4] = byte(t)
	b[5], b[6], b[7] = 0, 0, 0
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	binary.LittleEndian.PutUint32(b[12:], payloadCRC)
	binary.LittleEndian.PutUint32(b[16:], crc(salt, b[:16]))
}

type recHeader struct {
	typ recType
	n   int64  // payload length
	crc uint32 // of the payload
}

func parseRecHeader(b []byte, salt uint32) (recHeader, bool) {
	if len(b) < recHeaderSize || string(b[:4]) != recMagic {
		return recHeader{}, false
	}
	if crc(salt, b[:16]) != binary.LittleEndian.Uint32(b[16:]) {
		return recHeader{}, false
	}
	h := recHeader{
		typ: recType(b[4]),
		n:   int64(binary.LittleEndian.Uint32(b[8:])),
		crc: binary.LittleEndian.Uint32(b[12:]),
	}
	if b[5]|b[6]|b[7] != 0 || h.n > maxPayload {
		return recHeader{}, false
	}
	return h, true
}

// Envelope flags. A flag adds a field only at the end of the envelope, so
// that a spool written before it existed reads the same; a flag this code
// does not know is an error rather than a misread envelope.
const (
	flagSMTPUTF8 = 1
	flagOutgoing = 2 // Envelope.Outgoing
	flagParent   = 4 // Envelope.Parent follows the recipients
	flagBounce   = 8 // Envelope.BounceOf and BounceRIDs follow (Parent)
	flagsKnown   = flagSMTPUTF8 | flagOutgoing | flagParent | flagBounce
)

// Payload encodings. Every payload starts with a version byte; integers are
// (u)varints, strings are a uvarint length then the bytes, times are Unix
// nanoseconds as a varint with 0 for the zero time.
//
// message: version, uvarint seq, uvarint len(env), env, body
//
//	env: uvarint MID, uvarint ICID, Listener, ClientIP, ClientHost, Helo,
//	     TLS, From, varint Received, BodyType, byte flags (1 = SMTPUTF8,
//	     2 = outgoing, 4 = has a parent, 8 = a DSN of a message), uvarint
//	     count, then count × (uvarint RID, Addr), then uvarint Parent when
//	     flag 4 is set, then uvarint BounceOf, uvarint count and count ×
//	     uvarint RID when flag 8 is set [version 2: Auth]
//
// state: version, uvarint MID, uvarint count, then count × (uvarint RID,
// byte status, uvarint attempts, varint last, varint next, reason)
//
// finish: version, uvarint MID
//
// work: version, uvarint MID, Headers (the work queue's outcome)
//
//	[version 2, a quarantined or released message: byte flags (2 =
//	released), uvarint Stage, uvarint count, then count × (Quarantine,
//	Reason, varint Since, byte Out)]. A record without them is written
//	as version 1, which every release reads.

// appendMessagePrefix appends everything of a message payload but the body.
func appendMessagePrefix(b []byte, seq uint64, env *Envelope) []byte {
	var e []byte
	e = binary.AppendUvarint(e, env.MID)
	e = binary.AppendUvarint(e, env.ICID)
	e = appendString(e, env.Listener)
	e = appendString(e, env.ClientIP)
	e = appendString(e, env.ClientHost)
	e = appendString(e, env.Helo)
	e = appendString(e, env.TLS)
	e = appendString(e, env.From)
	e = binary.AppendVarint(e, unixNano(env.Received))
	e = appendString(e, env.BodyType)
	var flags byte
	if env.SMTPUTF8 {
		flags |= flagSMTPUTF8
	}
	if env.Outgoing {
		flags |= flagOutgoing
	}
	if env.Parent != 0 {
		flags |= flagParent
	}
	if env.BounceOf != 0 {
		flags |= flagBounce
	}
	e = append(e, flags)
	e = binary.AppendUvarint(e, uint64(len(env.Rcpts)))
	for _, r := range env.Rcpts {
		e = binary.AppendUvarint(e, uint64(r.RID))
		e = appendString(e, r.Addr)
	}
	if env.Parent != 0 {
		e = binary.AppendUvarint(e, env.Parent)
	}
	if env.BounceOf != 0 {
		e = binary.AppendUvarint(e, env.BounceOf)
		e = binary.AppendUvarint(e, uint64(len(env.BounceRIDs)))
		for _, rid := range env.BounceRIDs {
			e = binary.AppendUvarint(e, uint64(rid))
		}
	}
	version := byte(payloadVersion)
	if len(env.Auth) > 0 {
		version = authVersion
		e = appendString(e, string(env.Auth))
	}

	b = append(b, version)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(e)))
	return append(b, e...)
}

// decodeMessage splits a message payload. It needs only the prefix through
// the envelope: body is whatever of p follows it, and bodyOff is where the
// body starts within the payload.
func decodeMessage(p []byte) (seq uint64, env *Envelope, bodyOff int, err error) {
	d := decoder{b: p}
	v := d.byte()
	if v != payloadVersion && v != authVersion && d.err == nil {
		return 0, nil, 0, fmt.Errorf("message payload version %d", v)
	}
	seq = d.uvarint()
	n := d.uvarint()
	if d.err != nil {
		return 0, nil, 0, d.err
	}
	if n > maxEnvelope || n > uint64(len(d.b)) {
		return 0, nil, 0, errTruncated
	}
	bodyOff = len(p) - len(d.b) + int(n)
	e := decoder{b: d.b[:n]}
	env = &Envelope{
		MID:        e.uvarint(),
		ICID:       e.uvarint(),
		Listener:   e.string(),
		ClientIP:   e.string(),
		ClientHost: e.string(),
		Helo:       e.string(),
		TLS:        e.string(),
		From:       e.string(),
		Received:   fromUnixNano(e.varint()),
		BodyType:   e.string(),
	}
	flags := e.byte()
	if flags&^flagsKnown != 0 && e.err == nil {
		e.err = fmt.Errorf("unknown envelope flags %#x", flags)
	}
	env.SMTPUTF8 = flags&flagSMTPUTF8 != 0
	env.Outgoing = flags&flagOutgoing != 0
	count := e.uvarint()
	// Each recipient takes at least two bytes, which bounds the allocation
	// by the envelope's size whatever the count claims.
	if count > uint64(len(e.b))/2 {
		return 0, nil, 0, errTruncated
	}
	if count > 0 {
		env.Rcpts = make([]Recipient, count)
	}
	for i := range env.Rcpts {
		env.Rcpts[i] = Recipient{RID: e.int(), Addr: e.string()}
	}
	if flags&flagParent != 0 {
		env.Parent = e.uvarint()
	}
	if flags&flagBounce != 0 {
		env.BounceOf = e.uvarint()
		n := e.uvarint()
		// Each RID takes at least a byte.
		if n > uint64(len(e.b)) {
			return 0, nil, 0, errTruncated
		}
		if (env.BounceOf == 0 || n == 0) && e.err == nil {
			e.err = errors.New("a DSN's envelope without the message it reports on")
		}
		env.BounceRIDs = make([]int, n)
		for i := range env.BounceRIDs {
			env.BounceRIDs[i] = e.int()
		}
	}
	if v == authVersion {
		if a := e.string(); a != "" {
			env.Auth = []byte(a)
		}
	}
	if e.err == nil && len(e.b) != 0 {
		e.err = errors.New("trailing bytes after envelope")
	}
	if e.err != nil {
		return 0, nil, 0, e.err
	}
	return seq, env, bodyOff, nil
}

// ridState is one recipient's entry in a state record.
type ridState struct {
	RID int
	RecipientState
}

func appendState(b []byte, mid uint64, states []ridState) []byte {
	b = append(b, payloadVersion)
	b = binary.AppendUvarint(b, mid)
	b = binary.AppendUvarint(b, uint64(len(states)))
	for _, s := range states {
		b = binary.AppendUvarint(b, uint64(s.RID))
		b = append(b, byte(s.Status))
		b = binary.AppendUvarint(b, uint64(s.Attempts))
		b = binary.AppendVarint(b, unixNano(s.Last))
		b = binary.AppendVarint(b, unixNano(s.Next))
		b = appendString(b, s.Reason)
	}
	return b
}

func decodeState(p []byte) (mid uint64, states []ridState, err error) {
	d := decoder{b: p}
	if v := d.byte(); v != payloadVersion && d.err == nil {
		return 0, nil, fmt.Errorf("state payload version %d", v)
	}
	mid = d.uvarint()
	count := d.uvarint()
	if count > uint64(len(d.b))/5 { // each entry is at least five bytes
		return 0, nil, errTruncated
	}
	states = make([]ridState, count)
	for i := range states {
		states[i].RID = d.int()
		st := Status(d.byte())
		if st > Moved && d.err == nil {
			d.err = fmt.Errorf("unknown recipient status %d", st)
		}
		states[i].Status = st
		states[i].Attempts = d.int()
		states[i].Last = fromUnixNano(d.varint())
		states[i].Next = fromUnixNano(d.varint())
		states[i].Reason = d.string()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes after state")
	}
	return mid, states, d.err
}

func appendFinish(b []byte, mid uint64) []byte {
	b = append(b, payloadVersion)
	return binary.AppendUvarint(b, mid)
}

func decodeFinish(p []byte) (mid uint64, err error) {
	d := decoder{b: p}
	if v := d.byte(); v != payloadVersion && d.err == nil {
		return 0, fmt.Errorf("finish payload version %d", v)
	}
	mid = d.uvarint()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes after finish")
	}
	return mid, d.err
}

// workQuarantineVersion is the version of a work payload with the
// quarantine fields.
const workQuarantineVersion = 2

// Work flags. (1 is unused.)
const (
	workReleased = 2
	workKnown    = workReleased
)

func appendWork(b []byte, mid uint64, w Work) []byte {
	plain := len(w.Held) == 0 && !w.Released && w.Stage == 0
	if plain {
		b = append(b, payloadVersion)
	} else {
		b = append(b, workQuarantineVersion)
	}
	b = binary.AppendUvarint(b, mid)
	b = appendString(b, w.Headers)
	if !plain {
		var flags byte
		if w.Released {
			flags |= workReleased
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(w.Stage))
		b = binary.AppendUvarint(b, uint64(len(w.Held)))
		for _, h := range w.Held {
			b = appendString(b, h.Quarantine)
			b = appendString(b, h.Reason)
			b = binary.AppendVarint(b, unixNano(h.Since))
			b = append(b, byte(h.Out))
		}
	}
	if len(w.Strip) == 0 && w.TagSubject == "" && w.Route == "" && w.Rcpt == "" {
		return b // a record without rewrites ends here, as before they existed
	}
	// The rewrites follow, in either version, when there are any.
	b = binary.AppendUvarint(b, uint64(len(w.Strip)))
	for _, s := range w.Strip {
		b = appendString(b, s)
	}
	b = appendString(b, w.TagSubject)
	b = appendString(b, w.Route)
	return appendString(b, w.Rcpt)
}

func decodeWork(p []byte) (mid uint64, w Work, err error) {
	d := decoder{b: p}
	v := d.byte()
	if v != payloadVersion && v != workQuarantineVersion && d.err == nil {
		return 0, Work{}, fmt.Errorf("work payload version %d", v)
	}
	mid = d.uvarint()
	w.Headers = d.string()
	if v == workQuarantineVersion {
		flags := d.byte()
		if flags&^workKnown != 0 && d.err == nil {
			d.err = fmt.Errorf("unknown work flags %#x", flags)
		}
		w.Released = flags&workReleased != 0
		w.Stage = d.int()
		count := d.uvarint()
		if count > uint64(len(d.b))/4 && d.err == nil { // each is at least four bytes
			d.err = errTruncated
		}
		if d.err == nil && count > 0 {
			w.Held = make([]Held, count)
			for i := range w.Held {
				w.Held[i] = Held{Quarantine: d.string(), Reason: d.string(), Since: fromUnixNano(d.varint()), Out: Exit(d.byte())}
				if w.Held[i].Out > Deleted && d.err == nil {
					d.err = fmt.Errorf("unknown quarantine exit %d", w.Held[i].Out)
				}
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		// The rewrites, in a record written since they exist.
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.err = errTruncated
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			w.Strip = append(w.Strip, d.string())
		}
		w.TagSubject, w.Route, w.Rcpt = d.string(), d.string(), d.string()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes after work")
	}
	return mid, w, d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

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
	return time.Unix(0, n)
}

var errTruncated = errors.New("truncated payload")

// decoder reads the payload encodings; the first error sticks and every
// later read returns a zero value, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must fit an int32, which RIDs and attempt counts
// always do.
func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 && d.err == nil {
		d.err = errors.New("integer out of range")
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
