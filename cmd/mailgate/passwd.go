package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mailgate/mailgate/userdb"
)

// stdin is where passwd reads the password; tests replace it.
var stdin io.Reader = os.Stdin

// passwdCmd is "mailgate passwd USER [--file F | --config C]": it reads a
// password (from the terminal without echo, twice; otherwise the first
// line of standard input) and writes the user's argon2id and SCRAM-SHA-256
// line into the users file. SIGHUP makes a running gateway read it.
func passwdCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "the users `file` (default: that of the first listener with auth in --config)")
	conf := fs.String("config", "", "the gateway's configuration `file`, to find the users file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mailgate passwd USER [--file FILE | --config FILE]")
		fs.PrintDefaults()
	}
	var user string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		user, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if user == "" && fs.NArg() == 1 {
		user = fs.Arg(0)
	} else if fs.NArg() > 0 || user == "" {
		fs.Usage()
		return 2
	}
	path := *file
	if path == "" && *conf != "" {
		c, err := (&configFlags{config: *conf}).load()
		if err != nil {
			fmt.Fprintf(stderr, "mailgate passwd: %v\n", err)
			return 1
		}
		for _, l := range c.Listeners {
			if l.Auth != nil {
				path = l.Auth.Users
				break
			}
		}
	}
	if path == "" {
		fmt.Fprintln(stderr, "mailgate passwd: no users file: give --file, or --config with a listener that has auth")
		return 2
	}
	pw, err := readPassword(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mailgate passwd: %v\n", err)
		return 1
	}
	if err := userdb.SetPassword(path, user, pw); err != nil {
		fmt.Fprintf(stderr, "mailgate passwd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: password of %s set (send SIGHUP to a running gateway)\n", path, user)
	return 0
}

// readPassword reads from the terminal with echo off, twice, or the first
// line of a pipe.
func readPassword(prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios); err == nil {
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			quiet.Lflag |= unix.ICANON | unix.ECHONL
			if err := unix.IoctlSetTermios(int(f.Fd()), ioctlWriteTermios, &quiet); err != nil {
				return "", fmt.Errorf("terminal: %w", err)
			}
			defer unix.IoctlSetTermios(int(f.Fd()), ioctlWriteTermios, t)
			r := bufio.NewReader(f)
			fmt.Fprint(prompt, "Password: ")
			a, err := readLine(r)
			if err != nil {
				return "", err
			}
			fmt.Fprint(prompt, "Again: ")
			b, err := readLine(r)
			if err != nil {
				return "", err
			}
			if a != b {
				return "", errors.New("the passwords differ")
			}
			return a, nil
		}
	}
	return readLine(bufio.NewReader(stdin))
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password")
	}
	return line, nil
}
