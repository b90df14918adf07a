// Package maillog renders mailgate's events as lines of the Cisco ESA
// ("IronPort Text Mail Logs") format, parses such lines back into events,
// and writes and reads the log files.
//
// # Lines
//
// AppendMessage writes the message of one event, AppendLine a whole line
// of a local log file:
//
//	Wed Sep  6 13:13:16 2023 Info: MID 14 ICID 14 From: <a@example.com>
//
// ParseMessage and ParseLine are their inverse. They never lose a line: one
// they do not know becomes an event.Unknown that renders back unchanged, a
// line without a timestamp gets a zero Time, a line without a level word
// Level 0. Render after parse gives back the line (trailing white space
// aside) for every kind of line the event package has a type for, in the
// modern form and in the older forms the ESA wrote: types with a Form
// field record the variant (DeliveryStart*, Outcome*, ConnError*, Pending*
// constants), Subject and Response their Quote. A few variants cannot be
// recorded, because their type has no Form, and are rendered in mailgate's
// form: an address without angle brackets ("From: a@b", gets them),
// "Message done ... to [0]" (gets "to RID [0]"), "MID 5 was generated for
// bounce of MID 4" (loses "was"), "ICID 3 ACCEPT SG None SBRS x" (gets
// "match  SBRS x"), "Interface" (lower case), and a Message-ID's quote
// (mailgate's choice, see QuoteFor). Parsing then rendering again is
// always a fixed point.
//
// mailgate writes the modern form of each line, and one line of its own
// after "ICID n close", event.ConnectionEnd:
//
//	mailgate: ICID 10293 ended cause=peer-reset state=rcpt last=RCPT data_bytes=0 duration=36.012s ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
//
// The fields come in this order, space-separated; cause= is the word of an
// event.Cause (a line with a word this version does not know stays an
// event.Unknown, so that it renders back unchanged); state= and last= hold
// one token each (a space or '=' inside is written \x20 or \x3d), last=-
// when no command was seen; data_bytes= is an integer; duration= is
// in seconds with exactly three decimals (rounded to the millisecond). Then
// one verb=count per CommandCount with Total > 0, in order, count being OK
// when OK == Total and OK/Total otherwise, then commands= with the sums in
// the same form (commands=0 when there were none), and last, only when
// Detail is not empty, detail='...' up to the end of the line. The parser
// accepts exactly this form.
//
// Lines of a Cisco ESA that mailgate does not write are parsed too: the
// work queue's (quarantines, rewrites, splits, generated copies, engine
// verdicts; pipeline.go, whose Forms are Rewritten* and Generated*) and the
// bounce log's ("Bounced: 45346670:0 From:<a> To:<b> Reason: ..."; the
// Outcome form OutcomeBounceLog). testdata/unknown-kinds.golden lists the
// kinds of sample lines that stay Unknown.
//
// A parsed Entry's Prefix keeps what came before the message, as written
// (the timestamp, a syslog host and tag, the level word), so that
// Prefix+Text is the line as logged; a Reader dates the lines of a syslog
// file, which have no year, from SetYear or SetNow.
//
// # Escaping
//
// Text from the network is escaped so that no client can end a line, forge
// the next one or hide text: TAB, LF and CR are written as \t, \n and \r,
// other C0 controls, DEL and bytes that are not UTF-8 as \xNN, C1 controls
// (U+0085 among them), U+2028, U+2029, the bidi controls (U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069) and U+FEFF as
// \uNNNN; '<' and '>' inside an address as \x3c and \x3e. The backslash is
// not escaped, because the ESA itself writes folded header text as a
// literal "\r\n\t" and such lines must render back unchanged. So escaping
// cannot be undone, and the parser does not try: a parsed field holds the
// escaped text. SMTP replies inside Bounced/Delayed lines are Python string
// literals, as the ESA writes them, decoded into event.Outcome.Response.
//
// # Injection debug logs
//
// An event.InjectionDebug line is "102503993 Rcvd: 'MAIL FROM:<x@y>'". The
// ESA's documentation labels the client's commands "Sent"; mailgate labels
// from its own side: Rcvd is what the client sent, Sent what mailgate
// replied.
//
// # Files
//
// A Writer writes the mail log file with the ESA's header lines, rollover
// to <name>.@<time>.s and SIGHUP (Reopen) semantics; a Reader reads one,
// following its "Time offset from UTC" header.
package maillog
