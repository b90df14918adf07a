// Package policy makes the receiving side's access decisions the way the
// Cisco ESA does, as pure functions of what a listener knows: the Host
// Access Table (sender groups and mail flow policies) decides what to do
// with a connecting client, the Recipient Access Table decides which
// recipients a public listener accepts, and a Limiter counts connections.
//
// Nothing here opens a socket, reads a file or looks up DNS; the listener
// does the lookups and passes the results in a Client.
package policy
