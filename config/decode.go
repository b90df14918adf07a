package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one mistake in a configuration file.
type Problem struct {
	File string
	Line int    // 1-based; 0 when the problem has no place in the file
	Path string // the key: "listeners[0].hat.sender_groups[1].match[2]"
	Msg  string
}

// Error formats the problem as "file:12: listeners[0].address: msg".
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is the error Parse and Load return when a file is not valid: every
// problem found, in the order of the file.
type Problems []Problem

// Error returns one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}

// decoder walks a yaml.Node tree, reporting every problem with its line
// rather than stopping at the first, which is why the configuration is not
// decoded into structs by yaml.v3 itself.
type decoder struct {
	file  string
	probs Problems
	warns Problems                  // what does not stop the gateway; Config.Warnings
	keys  map[*yaml.Node]*yaml.Node // value -> its key, for the line of a problem

	signingOn     *yaml.Node // the first policy's "dkim_signing: true", and its path
	signingOnPath string

	quarantineRefs []quarantineRef // checked against the quarantines (dmarcq.go)
	engineRefs     []engineRef     // checked against the scanners (scanpolicy.go)
}

// errorf records a problem at n. A problem with a mapping or list as a whole
// is reported at its key, not at its first entry, which in block style is on
// the next line.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
		if k := d.keys[n]; k != nil && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
			line = k.Line
		}
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning at n: what check-config reports but does not
// stop the gateway (a certificate near its expiry).
func (d *decoder) warnf(n *yaml.Node, path, format string, args ...any) {
	probs := d.probs
	d.errorf(n, path, format, args...)
	d.warns = append(d.warns, d.probs[len(d.probs)-1])
	d.probs = probs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// resolve follows aliases (*anchor) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// present reports whether a key was given a value: a missing key and an
// empty one ("key:" or "key: null") both mean "use the default".
func present(n *yaml.Node) bool {
	n = resolve(n)
	return n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

type pair struct{ key, val *yaml.Node }

// pairs returns the entries of a mapping in order, with merge keys ("<<:
// *defaults") expanded, and reports keys that are given twice.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping (key: value), got %s", kindName(n))
		return nil
	}
	var out []pair
	seen := make(map[string]bool)
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain word, not %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			merged = append(merged, d.mergePairs(v, path)...)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, join(path, k.Value), "given twice")
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k, v})
	}
	// Keys written out override merged ones, as YAML merge keys specify.
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mergePairs(v *yaml.Node, path string) []pair {
	v = resolve(v)
	if v.Kind == yaml.SequenceNode {
		var out []pair
		for _, m := range v.Content {
			out = append(out, d.pairs(m, path)...)
		}
		return out
	}
	return d.pairs(v, path)
}

// fields decodes a mapping with a fixed set of keys and reports any other
// key, suggesting the known key it is closest to.
func (d *decoder) fields(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node)
	for _, p := range d.pairs(n, path) {
		if !slices.Contains(known, p.key.Value) {
			msg := "unknown key"
			if s := closest(p.key.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.errorf(p.key, join(path, p.key.Value), "%s", msg)
			continue
		}
		v := resolve(p.val)
		if d.keys == nil {
			d.keys = make(map[*yaml.Node]*yaml.Node)
		}
		if d.keys[v] == nil { // an aliased value is reported at its first key
			d.keys[v] = p.key
		}
		out[p.key.Value] = v
	}
	return out
}

// closest returns the known key within a small edit distance of s, if any.
func closest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(s), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list returns the items of a sequence.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list, got %s", kindName(n))
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, it := range n.Content {
		items[i] = resolve(it)
	}
	return items
}

// str decodes a scalar as text: "name: 2024" is the string "2024".
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "want a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// text decodes a string for an SMTP reply or a log line, where control
// characters would break the protocol or forge a line.
func (d *decoder) text(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			d.errorf(n, path, "control character %q is not allowed", r)
			return "", false
		}
	}
	if len(s) > 400 {
		d.errorf(n, path, "%d bytes long; an SMTP reply line allows about 400", len(s))
		return "", false
	}
	return s, true
}

// integer decodes a whole number no smaller than least.
func (d *decoder) integer(n *yaml.Node, path string, least int) (int, bool) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, path, "want a whole number, got %s", kindName(n))
		return 0, false
	}
	if v < least {
		d.errorf(n, path, "%d is below the minimum %d", v, least)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		d.errorf(n, path, "want true or false, got %s", kindName(n))
		return false, false
	}
	return v, true
}

// size decodes a byte count of at least 1: a number of bytes or a string
// with a unit ("10MB").
func (d *decoder) size(n *yaml.Node, path string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str" && n.Tag != "!!float") {
		d.errorf(n, path, "want a size (10MB, 512K, 1048576), got %s", kindName(n))
		return 0, false
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0, false
	}
	if v < 1 {
		d.errorf(n, path, "size must be at least 1 byte")
		return 0, false
	}
	return v, true
}

// duration decodes a Go duration ("5m", "90s") no shorter than least.
func (d *decoder) duration(n *yaml.Node, path string, least time.Duration) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a duration (90s, 5m, 1h30m), got %s", kindName(n))
		return 0, false
	}
	if n.Tag == "!!int" {
		d.errorf(n, path, "duration %s has no unit; write %ss or %sm", n.Value, n.Value, n.Value)
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, "want a duration (90s, 5m, 1h30m), got %q", n.Value)
		return 0, false
	}
	if v < least {
		d.errorf(n, path, "duration %s is below the minimum %s", v, least)
		return 0, false
	}
	return v, true
}

// oneOf decodes a string that must be one of the given words (in any case);
// it returns the word in lower case.
func (d *decoder) oneOf(n *yaml.Node, path string, words ...string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if w := strings.ToLower(s); slices.Contains(words, w) {
		return w, true
	}
	d.errorf(n, path, "unknown value %q (want %s)", s, strings.Join(words, ", "))
	return "", false
}
