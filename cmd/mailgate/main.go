// Command mailgate is an SMTP gateway modelled on the Cisco Email Security
// Appliance: listeners governed by a Host Access Table, a durable spool,
// and mail logs in the ESA text format.
//
//	mailgate serve [--config FILE]     run the gateway (the embedded default without --config)
//	mailgate check-config FILE         report every problem of a configuration
//	mailgate workqueue                 the running gateway's queue
//	mailgate queue list|show|...       list and act on the running gateway's queue
//	mailgate status [detail]           the ESA's counters, rates and gauges
//	mailgate tophosts | hoststatus D   destinations: by activity, one in detail
//	mailgate rate [SECONDS]            a line every SECONDS: connections, recipients
//	mailgate resetcounters             zero the Reset column of status
//	mailgate import FILE...            read ESA mail logs into the tracking store
//	mailgate track [filters]           find messages in the tracking store
//	mailgate findevent -m MID ...      every log line of a message
//	mailgate explain MID | --aborts    what happened and why
//	mailgate default-config            print the embedded default configuration
//	mailgate dkim keygen DOMAIN SELECTOR  write a DKIM key, print its DNS record
//	mailgate version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "workqueue":
		return workqueueCmd(args[1:], stdout, stderr)
	case "queue":
		return queueCmd(args[1:], stdout, stderr)
	case "quarantine":
		return quarantineCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "tophosts":
		return tophostsCmd(args[1:], stdout, stderr)
	case "hoststatus":
		return hoststatusCmd(args[1:], stdout, stderr)
	case "rate":
		return rateCmd(args[1:], stdout, stderr)
	case "resetcounters":
		return resetcountersCmd(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "track":
		return trackCmd(args[1:], stdout, stderr)
	case "findevent":
		return findeventCmd(args[1:], stdout, stderr)
	case "explain":
		return explainCmd(args[1:], stdout, stderr)
	case "default-config":
		return defaultConfig(stdout)
	case "passwd":
		return passwdCmd(args[1:], stdout, stderr)
	case "dkim":
		return dkimCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "mailgate", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "mailgate: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: mailgate <command> [arguments]

commands:
  serve [--config FILE]   run the gateway; without --config, the embedded default
                          (listens on 127.0.0.1:2525, data under ./mailgate-data)
  check-config FILE       report every problem of a configuration file; exit 1 if any
  workqueue [--json]      the running gateway's queue: counts, oldest message, destinations
  queue list|show|deliver-now|bounce|delete ...
                          list and act on the running gateway's queue ("mailgate queue help")
  quarantine list|show|release|delete ...
                          the messages the mail policies quarantined ("mailgate quarantine help")
  status [detail] [--json]
                          the running gateway's counters (Reset, Uptime, Lifetime), current
                          IDs and gauges; detail adds the 1, 5 and 15-minute rates
  tophosts [--sort active|conn_out|delivered|soft|hard] [--limit N] [--json]
                          the destinations with the most queued, connected, delivered, bounced
  hoststatus DOMAIN [--json]
                          one destination: up/down, counters, gauges, oldest message, route
  rate [SECONDS] [--count N] [--json]
                          a line every SECONDS (10): connections, recipients received, completed
  resetcounters           zero the Reset column of status and the destinations' counters
  import FILE...          read ESA mail logs (mailgate's or a Cisco ESA's) into the tracking store
  track [filters]         find messages in the tracking store ("mailgate track -h")
  findevent -m MID | -f FROM | -t TO | -s SUBJECT
                          every log line of the matching messages, as the ESA's findevent
  explain MID | --aborts  say what happened to a message and why; sum up aborted receptions
  default-config          print the embedded default configuration
  passwd USER [--file F]  set a user's password in a SMTP AUTH users file (read from stdin)
  dkim keygen [--type rsa|ed25519] [--bits 2048] [--out FILE] DOMAIN SELECTOR
                          write a DKIM signing key; print its DNS record and signing profile
  version                 print the version
`)
}
