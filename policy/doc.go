// Package policy makes the receiving side's access decisions the way the
// Cisco ESA does, as pure functions of what a listener knows: the Host
// Access Table (sender groups and mail flow policies) decides what to do
// with a connecting client, the Recipient Access Table decides which
// recipients a public listener accepts (and SenderRouted which of them name
// a route of their own), a Limiter counts live connections and Rates counts
// connections and recipients per client in time windows. Every per-client
// count is keyed by ClientKey: an IPv4 address or an IPv6 network.
//
// Nothing here opens a socket, reads a file or looks up DNS; the listener
// does the lookups and passes the results in a Client.
package policy
