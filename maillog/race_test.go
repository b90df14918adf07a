//go:build race

package maillog

const raceEnabled = true
