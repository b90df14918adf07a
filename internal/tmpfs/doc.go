// Package tmpfs gives tests a small file system of their own to fill up:
// a tmpfs mounted for the test and unmounted after it. It works on Linux,
// as root; elsewhere Mount skips the test (fails it under CI).
package tmpfs
