package event

// ScanSummary is mailgate's own line, one per message its work queue
// scanned, with every verdict and what came of it (the ESA writes this in
// its Consolidated Event Log, a CEF line of its own format; mailgate
// keeps to its mail log, with a "mailgate:" line as for ConnectionEnd):
//
//	mailgate: MID 5 verdicts policy=DEFAULT table=inbound antispam=RSPAMD:positive antivirus=ClamAV:positive:Eicar-Test-Signature.UNOFFICIAL action=drop
type ScanSummary struct {
	MID      uint64
	Policy   string
	Table    string // inbound or outbound
	Verdicts []ScanResult
	// Action is what the policy did: deliver, drop, bounce, quarantine,
	// reject (at SMTP time).
	Action string
}

// ScanResult is one stage's verdict in a ScanSummary.
type ScanResult struct {
	Kind    string // antispam, antivirus
	Engine  string // as the verdict lines name it: RSPAMD, SPAMASSASSIN, ClamAV; the stage's name when it failed
	Verdict string // positive, suspect, negative, unscannable, encrypted; too-big; unscanned (the engine failed, the policy delivers)
	Detail  string // the virus's name
}
