//go:build !linux

package statuslog

// FreeKB cannot measure here: the status line leaves QKFre out.
func FreeKB(string) int64 { return -1 }
