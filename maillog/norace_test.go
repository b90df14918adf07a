//go:build !race

package maillog

const raceEnabled = false
