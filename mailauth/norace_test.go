//go:build !race

package mailauth

const raceEnabled = false
