//go:build race

package mailauth

const raceEnabled = true
