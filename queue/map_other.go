//go:build !unix

package queue

// mapMessage reads the message record at g/off of n bytes into memory:
// memory mappings are wired up for Unix only.
func mapMessage(g *segment, off, n int64) (*Mapping, error) {
	return readMapping(g, off, n)
}
