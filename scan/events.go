package scan

import "github.com/mailgate/mailgate/event"

// The mail-log events of a scan, in the ESA's forms (ESA-PIPELINE.md 1.6
// and 1.7), for the work queue to log.

// SpamEvent is "MID n [interim verdict ]using engine: <engine> spam <class>".
func SpamEvent(mid uint64, interim bool, engine string, v SpamVerdict) event.EngineVerdict {
	return event.EngineVerdict{MID: mid, Interim: interim, Engine: engine, Verdict: "spam " + v.Class.String()}
}

// VirusInterimEvent is "MID n interim AV verdict using <engine> VIRAL".
func VirusInterimEvent(mid uint64, engine string, v VirusVerdict) event.AVVerdict {
	return event.AVVerdict{MID: mid, Interim: true, Engine: engine, Verdict: v.Class.String()}
}

// VirusEvent is the final "MID n antivirus positive 'name'" (negative,
// unscannable, encrypted).
func VirusEvent(mid uint64, v VirusVerdict) event.AVVerdict {
	verdict, detail := v.Final()
	return event.AVVerdict{MID: mid, Verdict: verdict, Detail: detail}
}

// TooBigEvent is "MID n was too big (size/limit) for scanning by <engine>".
func TooBigEvent(mid uint64, e *TooBigError) event.TooBig {
	return event.TooBig{MID: mid, Size: e.Size, Limit: e.Limit, Engine: e.Engine}
}
