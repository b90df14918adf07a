package policy

// What a mail policy does with an anti-spam or anti-virus verdict: the
// ESA's per-category actions (ESA-PIPELINE.md 2.3), with reject added.

// ScanActionKind is the final action of a verdict's category.
type ScanActionKind string

const (
	// ActDeliver lets the message go on (tagged as the action says).
	ActDeliver ScanActionKind = "deliver"
	// ActDrop ends the message: "Message aborted MID n Dropped by X".
	ActDrop ScanActionKind = "drop"
	// ActBounce ends the message with a DSN to its sender.
	ActBounce ScanActionKind = "bounce"
	// ActQuarantine holds the message in a quarantine.
	ActQuarantine ScanActionKind = "quarantine"
	// ActReject answers 550 5.7.1 at the end of DATA, when every
	// recipient's policy says so (beyond the ESA): nobody is sent a
	// bounce. A message the listener could not reject (its recipients'
	// policies differ, the engine failed during DATA) is dropped in the
	// work queue instead.
	ActReject ScanActionKind = "reject"
)

// ScanAction is what a policy does with one category of verdict.
type ScanAction struct {
	Action     ScanActionKind
	Quarantine string   // for ActQuarantine: its name
	TagSubject string   // put before the Subject ("[SPAM] "); "" none
	AddHeaders []string // "Name: value" fields added
}

// SpamSettings are a policy's anti-spam actions.
type SpamSettings struct {
	Positive ScanAction
	Suspect  ScanAction
	// TooBig is for a message over the engine's scan size (the engine
	// was not asked): logged "was too big (n/limit) for scanning by X".
	TooBig ScanAction
	// MaxSize, when set, is this policy's scan size: a larger message is
	// not sent to the engine (TooBig). 0: the engine's own max_size.
	MaxSize int64
}

// VirusSettings are a policy's anti-virus actions, per category.
type VirusSettings struct {
	Infected    ScanAction
	Unscannable ScanAction
	Encrypted   ScanAction
}

// The defaults of an incoming policy, as the ESA's factory policy has
// them where they are known (ESA-PIPELINE.md 1.6, 1.7; the spam tags are
// not confirmed there): spam is delivered tagged, a virus dropped, what
// could not be scanned delivered tagged.
var (
	DefaultSpamSettings = SpamSettings{
		Positive: ScanAction{Action: ActDeliver, TagSubject: "[SPAM] "},
		Suspect:  ScanAction{Action: ActDeliver, TagSubject: "[SUSPECTED SPAM] "},
		TooBig:   ScanAction{Action: ActDeliver},
	}
	DefaultVirusSettings = VirusSettings{
		Infected:    ScanAction{Action: ActDrop},
		Unscannable: ScanAction{Action: ActDeliver, TagSubject: "[WARNING: A/V UNSCANNABLE] "},
		Encrypted:   ScanAction{Action: ActDeliver, TagSubject: "[WARNING: MESSAGE ENCRYPTED] "},
	}
)

// Rejects reports whether the policy rejects at SMTP time a message of
// the given kind found positive: "spam" or "virus".
func (p *MailPolicy) Rejects(kind string) bool {
	switch kind {
	case "spam":
		return p.AntiSpam != "" && p.Spam.Positive.Action == ActReject
	case "virus":
		return p.AntiVirus != "" && p.Virus.Infected.Action == ActReject
	}
	return false
}
