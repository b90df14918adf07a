package main

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// firstMID is the MID of the first message fill writes; query draws MIDs
// from it up to the newest.
const firstMID = 1_000_000

const (
	nSenders    = 200_000
	nRecipients = 1_000_000
	days        = 30
)

var firstNames = []string{
	"james", "mary", "john", "anna", "robert", "linda", "michael", "sarah", "david", "susan",
	"chris", "karen", "daniel", "lisa", "mark", "emily", "paul", "laura", "peter", "julia",
	"wei", "li", "fatima", "omar", "sofia", "lukas", "mateo", "chloe", "hiro", "yuki",
	"priya", "arjun", "olga", "ivan", "lars", "eva", "pierre", "marie", "luca", "giulia",
	"tom", "kate", "sam", "nina", "ben", "zoe", "max", "lena", "leo", "ada",
}

var lastNames = []string{
	"smith", "jones", "brown", "garcia", "miller", "davis", "lopez", "wilson", "taylor", "moore",
	"lee", "white", "harris", "clark", "lewis", "young", "allen", "king", "wright", "scott",
	"green", "baker", "hall", "hill", "adams", "nelson", "carter", "mitchell", "roberts", "turner",
	"zhang", "wang", "chen", "kumar", "singh", "muller", "schmidt", "dubois", "rossi", "tanaka",
	"sato", "novak", "jensen", "silva", "santos", "haddad", "khan", "ali", "costa", "meyer",
}

var domainWords = []string{
	"acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "tyrell", "hooli", "vandelay",
	"north", "south", "blue", "river", "stone", "bridge", "peak", "harbor", "summit", "pixel",
	"alpine", "coastal", "metro", "prime", "apex", "nova", "orbit", "lumen", "cedar", "maple",
}

var tlds = []string{".com", ".net", ".org", ".de", ".fr", ".io", ".nl", ".it"}

var bigDomains = []string{"gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "gmx.de", "web.de", "orange.fr"}

// vocab are the subject words, the common ones first (picked with a Zipf skew).
var vocab = []string{
	"update", "meeting", "invoice", "report", "order", "project", "review", "request", "reminder", "team",
	"weekly", "new", "your", "account", "payment", "schedule", "planning", "budget", "contract", "proposal",
	"customer", "delivery", "shipment", "security", "password", "training", "webinar", "newsletter", "offer", "renewal",
	"subscription", "survey", "feedback", "agenda", "minutes", "draft", "final", "approval", "ticket", "incident",
	"release", "roadmap", "migration", "backup", "outage", "maintenance", "holiday", "office", "travel", "expense",
	"hiring", "interview", "onboarding", "benefits", "policy", "compliance", "audit", "forecast", "pipeline", "launch",
	"campaign", "partner", "vendor", "supplier", "warehouse", "inventory", "pricing", "quote", "discount", "event",
	"conference", "summit", "workshop", "lunch", "birthday", "welcome", "farewell", "announcement", "results", "dashboard",
	"metrics", "analysis", "quarterly", "annual", "monthly", "daily", "summary", "notes", "slides", "document",
	"signature", "statement", "receipt", "confirmation", "booking", "reservation", "flight", "hotel", "visa", "insurance",
	"claim", "refund", "return", "warranty", "support", "question", "answer", "issue", "problem", "solution",
	"design", "mockup", "prototype", "feature", "bug", "patch", "deploy", "server", "network", "database",
	"storage", "license", "upgrade", "install", "config", "access", "permission", "login", "alert", "warning",
	"invitation", "party", "dinner", "coffee", "call", "sync", "standup", "retro", "demo", "kickoff",
	"strategy", "vision", "goals", "objectives", "priorities", "headcount", "salary", "bonus", "promotion", "review",
	"candidate", "offer", "contractor", "freelance", "agency", "press", "media", "interview", "podcast", "video",
	"photo", "brochure", "catalog", "sample", "trial", "demo", "pilot", "rollout", "adoption", "churn",
	"Rechnung", "Angebot", "Bestellung", "Réunion", "facture", "devis", "pedido", "fattura", "ordine", "Übersicht",
}

// filler makes the records fill writes, deterministically from its seed.
type filler struct {
	host                string
	r                   *rand.Rand
	n, i                int
	t0                  time.Time
	step                int64 // ns between messages
	senders, recipients *rand.Zipf
	words               *rand.Zipf
	domains             []string
	icid, dcid          uint64
	in, out             *tracking.Conn
	inLeft, outLeft     int
	buf                 []byte
	last                time.Time
}

func newFiller(host string, n int, seed uint64) *filler {
	r := rand.New(rand.NewPCG(seed, 0x66696c6c))
	f := &filler{
		host: host, r: r, n: n,
		t0:         time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		step:       int64(days*24*time.Hour) / int64(n),
		senders:    rand.NewZipf(r, 1.1, 30, nSenders-1),
		recipients: rand.NewZipf(r, 1.02, 200, nRecipients-1),
		words:      rand.NewZipf(r, 1.05, 5, uint64(len(vocab)-1)),
		icid:       4_000_000,
		dcid:       2_000_000,
	}
	f.domains = append(f.domains, bigDomains...)
	for i := 0; len(f.domains) < 600; i++ {
		f.domains = append(f.domains, domainWords[i%len(domainWords)]+domainWords[i/len(domainWords)%len(domainWords)]+tlds[i%len(tlds)])
	}
	return f
}

// address is the k-th address of a population: a bijection of k onto
// first.last@domain, scrambled by the multiplier so that neighbours differ.
func (f *filler) address(k uint64, mult uint64) string {
	m := uint64(len(firstNames) * len(lastNames) * len(f.domains))
	p := (k*mult + 12345) % m
	a := firstNames[p%uint64(len(firstNames))]
	p /= uint64(len(firstNames))
	b := lastNames[p%uint64(len(lastNames))]
	p /= uint64(len(lastNames))
	return a + "." + b + "@" + f.domains[p]
}

// Multipliers prime to 50*50*600: distinct k, distinct address.
const (
	senderMult = 1_000_003
	rcptMult   = 999_983
)

func (f *filler) line(t time.Time, ev event.Event) tracking.Line {
	f.buf = maillog.AppendMessage(f.buf[:0], ev)
	return tracking.Line{Time: t, Level: event.Info, Text: string(f.buf)}
}

// batch makes the next k messages and the connections that begin with them.
func (f *filler) batch(k int) *tracking.Batch {
	b := &tracking.Batch{Watermarks: map[string]time.Time{}}
	for range k {
		b.Messages = append(b.Messages, f.message(b))
		f.i++
	}
	b.Watermarks[f.host] = f.last
	return b
}

func (f *filler) newInbound(t time.Time, b *tracking.Batch) {
	f.icid++
	ip := "198." + strconv.Itoa(18+f.r.IntN(2)) + "." + strconv.Itoa(f.r.IntN(256)) + "." + strconv.Itoa(1+f.r.IntN(254))
	host := "mx" + strconv.Itoa(1+f.r.IntN(20)) + "." + f.domains[f.r.IntN(len(f.domains))]
	c := &tracking.Conn{Host: f.host, Kind: event.InboundConn, ID: f.icid, RemoteIP: ip, RemoteHost: host,
		SenderGroup: "UNKNOWNLIST", Started: t}
	c.Lines = append(c.Lines,
		f.line(t, event.NewICID{ICID: c.ID, Interface: "Incoming", InterfaceIP: "192.0.2.10", RemoteIP: ip, ReverseHost: host, Verified: true}),
		f.line(t, event.HATMatch{ICID: c.ID, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: "3.5"}),
		f.line(t, event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: c.ID}, Success: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384"}))
	// 1-5 messages, 2 on average.
	f.inLeft = 1 + min(4, int(f.r.ExpFloat64()*1.1))
	c.Finished = t.Add(time.Duration(f.inLeft)*time.Duration(f.step) + time.Second)
	c.Lines = append(c.Lines, f.line(c.Finished, event.ICIDClose{ICID: c.ID}))
	f.in = c
	b.Conns = append(b.Conns, c)
}

func (f *filler) newOutbound(t time.Time, b *tracking.Batch) {
	f.dcid++
	c := &tracking.Conn{Host: f.host, Kind: event.OutboundConn, ID: f.dcid, RemoteIP: "10.20.1.25", Started: t}
	f.outLeft = 1 + f.r.IntN(10)
	c.Finished = t.Add(time.Duration(f.outLeft)*time.Duration(f.step) + 2*time.Second)
	c.Lines = append(c.Lines,
		f.line(t, event.NewDCID{DCID: c.ID, InterfaceIP: "192.0.2.10", RemoteIP: c.RemoteIP, Port: 25}),
		f.line(t, event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: c.ID}, Success: true, Protocol: "TLSv1.2", Cipher: "ECDHE-RSA-AES256-GCM-SHA384"}),
		f.line(c.Finished, event.DCIDClose{DCID: c.ID}))
	f.out = c
	b.Conns = append(b.Conns, c)
}

var rcptCounts = []int{40, 35, 15, 6, 4} // weights of 1..5 recipients: 1.99 on average

func (f *filler) message(b *tracking.Batch) *tracking.Message {
	mid := uint64(firstMID + f.i)
	t := f.t0.Add(time.Duration(int64(f.i)*f.step + f.r.Int64N(f.step/2+1))).Truncate(time.Microsecond)
	if f.inLeft == 0 {
		f.newInbound(t.Add(-300*time.Millisecond), b)
	}
	f.inLeft--
	in := f.in
	m := &tracking.Message{Host: f.host, MID: mid, ICID: in.ID, RemoteIP: in.RemoteIP, RemoteHost: in.RemoteHost,
		SenderGroup: in.SenderGroup, Started: t}
	m.Sender = f.address(f.senders.Uint64(), senderMult)
	n, w := 1, f.r.IntN(100)
	for _, p := range rcptCounts {
		if w < p {
			break
		}
		w -= p
		n++
	}
	var rcpts []string
	for len(rcpts) < n {
		a := f.address(f.recipients.Uint64(), rcptMult)
		if !slices.Contains(rcpts, a) {
			rcpts = append(rcpts, a)
		}
	}
	// The subject: 2-5 words, now and then a reply or an order number.
	f.buf = f.buf[:0]
	if f.r.IntN(5) == 0 {
		f.buf = append(f.buf, "Re: "...)
	}
	for j := range 2 + f.r.IntN(4) {
		if j > 0 {
			f.buf = append(f.buf, ' ')
		}
		f.buf = append(f.buf, vocab[f.words.Uint64()]...)
	}
	if f.r.IntN(10) == 0 {
		f.buf = append(f.buf, " #"...)
		f.buf = strconv.AppendInt(f.buf, int64(100000+f.r.IntN(900000)), 10)
	}
	m.Subject = string(f.buf)
	m.MessageID = "<" + strconv.FormatUint(mid*2654435761%(1<<40), 36) + "@" + m.Sender[strings.IndexByte(m.Sender, '@')+1:] + ">"
	m.Size = int64(2000 + f.r.IntN(60000))

	// What became of it: the shares of an ordinary day.
	u := f.r.IntN(1000)
	status := tracking.Delivered
	switch {
	case u < 30:
		status = tracking.Bounced
	case u < 50:
		status = tracking.Aborted
	case u < 60:
		status = tracking.Dropped
	case u < 65:
		status = tracking.Rejected
	case u < 75:
		status = tracking.Delayed
	case u < 80:
		status = tracking.Queued
	}
	ms := func(k int) time.Time { return t.Add(time.Duration(k) * 40 * time.Millisecond) }
	add := func(at time.Time, ev event.Event) { m.Lines = append(m.Lines, f.line(at, ev)) }
	add(ms(0), event.StartMID{MID: mid, ICID: in.ID})
	add(ms(0), event.MailFrom{MID: mid, ICID: in.ID, From: m.Sender})
	if status == tracking.Rejected {
		for _, a := range rcpts[:1] {
			add(ms(1), event.RcptRejected{MID: mid, ICID: in.ID, To: a, By: "RAT"})
			m.Recipients = append(m.Recipients, tracking.Recipient{RID: -1, Address: a, Status: tracking.Rejected, Response: "Rejected by RAT", Time: ms(1)})
		}
		add(ms(2), event.MessageAborted{MID: mid, Reason: event.AbortReceivingBySender})
		m.AbortReason = event.AbortReceivingBySender
		return f.finish(m, status, ms(2), event.FinishedAborted)
	}
	for rid, a := range rcpts {
		add(ms(1+rid), event.RcptTo{MID: mid, ICID: in.ID, RID: rid, To: a})
		m.Recipients = append(m.Recipients, tracking.Recipient{RID: rid, Address: a, Status: tracking.Queued, Time: ms(1 + rid)})
	}
	if status == tracking.Aborted {
		m.Abort = []tracking.Abort{tracking.AbortLost, tracking.AbortTimeout, tracking.AbortSenderQuit}[f.r.IntN(3)]
		m.AbortReason, m.AbortState = event.AbortReceiving, "rcpt"
		if m.Abort == tracking.AbortSenderQuit {
			m.AbortReason = event.AbortReceivingBySender
		}
		for i := range m.Recipients {
			m.Recipients[i].Status = tracking.Receiving
		}
		add(ms(9), event.MessageAborted{MID: mid, Reason: m.AbortReason})
		return f.finish(m, status, ms(9), event.FinishedAborted)
	}
	add(ms(6), event.MessageIDHeader{MID: mid, MessageID: m.MessageID})
	add(ms(6), event.Subject{MID: mid, Subject: m.Subject, Quote: maillog.QuoteFor(m.Subject)})
	add(ms(6), event.Ready{MID: mid, Bytes: m.Size, From: m.Sender})
	if status == tracking.Dropped {
		add(ms(20), event.MessageAborted{MID: mid, Reason: "Dropped by CASE"})
		m.AbortReason = "Dropped by CASE"
		for i := range m.Recipients {
			m.Recipients[i].Status, m.Recipients[i].Response = tracking.Dropped, "Dropped by CASE"
		}
		return f.finish(m, status, ms(20), event.FinishedDone)
	}
	add(ms(20), event.Queued{MID: mid})
	if status == tracking.Queued {
		return f.finish(m, status, time.Time{}, "")
	}
	if f.outLeft == 0 {
		f.newOutbound(ms(21), b)
	}
	f.outLeft--
	d := f.out.ID
	m.DCIDs = []uint64{d}
	rids := make([]int, len(rcpts))
	for i := range rids {
		rids[i] = i
	}
	add(ms(22), event.DeliveryStart{DCID: d, MID: mid, RIDs: rids})
	switch status {
	case tracking.Delayed:
		add(ms(25), event.Outcome{DCID: d, MID: mid, From: m.Sender, To: rcpts[0], RID: 0, Status: "4.3.2",
			Reason: "Not accepting messages at this time", Code: "421", Response: []string{"4.3.2 try again later"}})
		add(ms(25), event.Pending{MID: mid, RIDs: rids[:1], Until: ms(25).Add(time.Hour).Truncate(time.Second), Profile: "Default"})
		m.Recipients[0].Status, m.Recipients[0].Code, m.Recipients[0].Response = tracking.Delayed, "4.3.2", "Not accepting messages at this time: 421 4.3.2 try again later"
		m.Recipients[0].NextRetry = ms(25).Add(time.Hour).Truncate(time.Second)
		rids = rids[1:]
		if len(rids) == 0 {
			return f.finish(m, status, time.Time{}, "")
		}
	case tracking.Bounced:
		add(ms(25), event.Outcome{Hard: true, DCID: d, MID: mid, From: m.Sender, To: rcpts[0], RID: 0, Status: "5.1.1",
			Reason: "Bad destination mailbox address", Code: "550", Response: []string{"5.1.1 User unknown"}})
		m.Recipients[0].Status, m.Recipients[0].Code, m.Recipients[0].DCID = tracking.Bounced, "5.1.1", d
		m.Recipients[0].Response = "Bad destination mailbox address: 550 5.1.1 User unknown"
		rids = rids[1:]
	}
	if len(rids) > 0 {
		reply := "2.0.0 Ok: queued as " + strconv.FormatUint(mid*40503%(1<<36), 36)
		add(ms(30), event.MessageDone{DCID: d, MID: mid, RIDs: rids})
		add(ms(30), event.Response{MID: mid, RIDs: rids, Text: reply, Quote: '\''})
		for _, rid := range rids {
			r := &m.Recipients[rid]
			r.Status, r.DCID, r.Response, r.Time = tracking.Delivered, d, reply, ms(30)
		}
	}
	if status == tracking.Delayed {
		return f.finish(m, status, time.Time{}, "")
	}
	return f.finish(m, status, ms(31), event.FinishedDone)
}

// finish sets the status and, when the message is over, its last line.
func (f *filler) finish(m *tracking.Message, s tracking.Status, at time.Time, how string) *tracking.Message {
	m.Status = s
	if how != "" {
		m.Finished = at
		m.Lines = append(m.Lines, f.line(at, event.MessageFinished{MID: m.MID, Status: how}))
	}
	m.Updated = m.Lines[len(m.Lines)-1].Time
	f.last = m.Updated
	return m
}
