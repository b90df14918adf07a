package tracking

import "github.com/mailgate/mailgate/event"

// pipelineRefs returns the messages a work-queue line of an ESA log is
// about (event/pipeline.go). A line that links two MIDs (a rewrite, a
// split, a generated copy, a reinjection from the spam quarantine) goes to
// both records, so that each timeline shows the link.
func pipelineRefs(ev event.Event) []uint64 {
	switch e := ev.(type) {
	case event.SpamQuarantineTag:
		return []uint64{e.MID}
	case event.SpamQuarantined:
		return []uint64{e.MID}
	case event.SpamReinjected:
		return []uint64{e.MID, e.NewMID}
	case event.Quarantined:
		return []uint64{e.MID}
	case event.QuarantineReason:
		return []uint64{e.MID}
	case event.QuarantineReleased:
		return []uint64{e.MID}
	case event.QuarantineDeleted:
		return []uint64{e.MID}
	case event.Rewritten:
		return []uint64{e.MID, e.NewMID}
	case event.Split:
		return []uint64{e.MID, e.NewMID}
	case event.Generated:
		return []uint64{e.MID, e.OrigMID}
	case event.PolicyDisposal:
		return []uint64{e.MID}
	case event.EngineVerdict:
		return []uint64{e.MID}
	case event.AVVerdict:
		return []uint64{e.MID}
	case event.OutbreakVerdict:
		return []uint64{e.MID}
	case event.AMPVerdict:
		return []uint64{e.MID}
	case event.TooBig:
		return []uint64{e.MID}
	case event.SPFVerdict:
		return []uint64{e.MID}
	case event.DKIMVerdict:
		return []uint64{e.MID}
	case event.Signing:
		return []uint64{e.MID}
	case event.Attachment:
		return []uint64{e.MID}
	case event.CustomLog:
		return []uint64{e.MID}
	}
	return nil
}
