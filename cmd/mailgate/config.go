package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/mailgate/mailgate/config"
)

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: mailgate check-config FILE")
		return 2
	}
	c, err := config.Load(args[0])
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stdout, p.Error())
			}
			fmt.Fprintf(stdout, "%s: %d problem(s)\n", args[0], len(ps))
			return 1
		}
		fmt.Fprintln(stderr, "mailgate:", err)
		return 1
	}
	// A warning does not stop the gateway, but a check is for finding
	// what needs doing: it fails the check.
	if len(c.Warnings) > 0 {
		for _, w := range c.Warnings {
			fmt.Fprintln(stdout, "warning:", w.Error())
		}
		fmt.Fprintf(stdout, "%s: %d warning(s); the gateway would start\n", args[0], len(c.Warnings))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listener(s), data in %s)\n", args[0], len(c.Listeners), c.DataDir)
	return 0
}

func defaultConfig(stdout io.Writer) int {
	stdout.Write(config.DefaultYAML())
	return 0
}
