// Package outbound is mailgate's queue manager: it delivers the messages of
// the spool to their next hops over SMTP, retries what fails softly,
// bounces what fails hard, and writes every step to the mail log in the
// ESA's words (DCID, "Delivery start", "Message done", "Bounced:", ...).
//
// # Destinations
//
// A recipient's destination is the SMTP route that matches its domain (the
// exact domain, else the longest ".example.com" covering it, else ALL),
// named by the route's domain, or else the domain itself, delivered by MX:
// hosts by preference, equal preferences in random order, the domain's own
// addresses when it has no MX (RFC 5321 5.1), each host's addresses in
// turn, ten addresses at most per attempt. A route's hosts go by priority,
// equal priorities in turn from one connection to the next; a route's
// host is looked up by address, never routed again. The recipients of a
// message are grouped by destination into jobs (at most 100 recipients
// each); a job is one transaction per attempt.
//
// # Scheduling
//
// Each destination has a queue of ready jobs, and its connections take
// jobs from it: up to max_messages_per_connection each (connection reuse),
// closed when the queue is empty. A destination has at most its
// max_connections, and all of them at most max_concurrency. A destination
// with no connection up opens one at a time, so that a dead host costs one
// attempt, not max_connections of them. Free connection slots go to the
// destinations with ready work in turn (a ring), so a destination whose
// host is slow keeps at most its own connections busy, and as its
// connections end their slots go to the others.
//
// When no host of a destination can be reached, or its DNS fails, every
// ready job of the destination gets that outcome at once (the ESA requeues
// the domain); NXDOMAIN bounces them.
//
// # Memory
//
// At most max_active_messages messages are in memory (their envelopes,
// recipient states and jobs). Bodies are read from the spool only to send
// them. The rest wait in the spool: a message due now costs its MID in a
// FIFO, a message waiting for a retry its MID and time in a timer heap. A
// message whose every job is deferred leaves memory until its earliest
// retry, so that mail for dead destinations does not hold the room of mail
// that can go. Messages from Enqueue take the same way when memory is full:
// never dropped, never blocking the listener. One loader goroutine reads
// waiting messages into memory as room frees up.
//
// # Retries and bounces
//
// A 4xx reply, a connection that fails or a DNS lookup that fails for now
// defers the recipient: retried after initial_retry, doubling up to
// max_retry, with a last try at the end of max_time_in_queue; after that,
// or after max_retries, it bounces with "5.4.7 Delivery expired (message
// too old)". A 5xx reply bounces at once. A bounce is a DSN (package dsn)
// to the sender, one per message per attempt for the recipients that
// failed in it, committed to the spool as a message of its own (null
// sender, ICID 0) and delivered like any other. A message from the null
// sender that bounces is dropped ("Double bounce").
//
// Every change of a recipient's state is durable in the spool before it is
// logged or acted on; the DSN is committed before the recipients are
// marked bounced, so a crash between the two may send a DSN twice but never
// loses one. A message whose recipients are all final is finished in the
// spool. After a restart, Start delivers what is left: a delivery that was
// under way is made again, which duplicates a message only when the crash
// came between the next hop's 250 and the spool's record of it.
package outbound
