package policy

// What a mail flow policy does with the sender-authentication checks
// (package mailauth computes them; package inbound asks these decisions).
// The results are RFC 7208's and RFC 7489's words, as strings, so that
// this package stays free of the checks themselves.

// AuthAction is what a result makes the session do.
type AuthAction string

const (
	AuthAccept     AuthAction = "accept"     // accept, and record the result
	AuthReject     AuthAction = "reject"     // 5xx: SPF fail, DMARC p=reject or permanent failure
	AuthDefer      AuthAction = "defer"      // 4xx: try again later (a temporary error)
	AuthQuarantine AuthAction = "quarantine" // accept and tag (DMARC p=quarantine/reject)
	AuthNone       AuthAction = "none"       // DMARC: no action, record only
)

// The replies of the ESA's listener SPF and DMARC settings
// (ESA-PIPELINE.md 1.2 and 1.5). The permanent-failure text of DMARC is
// not confirmed: it is the reject text.
const (
	SPFRejectCode        = 550
	SPFRejectText        = "#5.7.1 SPF unauthorized mail is prohibited."
	SPFDeferCode         = 451
	SPFDeferText         = "#4.4.3 Temporary error occurred during SPF verification."
	DMARCRejectCode      = 550
	DMARCRejectText      = "#5.7.1 DMARC unauthenticated mail is prohibited."
	DMARCTempFailCode    = 451
	DMARCTempFailText    = "#4.7.1 Unable to perform DMARC verification."
	DMARCPermFailureCode = 550
	DMARCPermFailureText = "#5.7.1 DMARC unauthenticated mail is prohibited."
)

// SPFPolicy is SPF verification in a mail flow policy. The actions apply
// to the MAIL FROM identity's result (for the null sender that is the
// HELO's, RFC 7208 2.4); the HELO identity's result is recorded.
type SPFPolicy struct {
	Verify bool
	HELO   bool // check the HELO identity too
	// Actions by result: Fail, SoftFail, Neutral, None and PermError may
	// be AuthAccept or AuthReject; TempError AuthAccept or AuthDefer.
	Fail, SoftFail, Neutral, None, PermError, TempError AuthAction
}

// Action is what an SPF result ("pass", "fail", ...) makes the session
// do; AuthAccept when verification is off.
func (p SPFPolicy) Action(result string) AuthAction {
	if !p.Verify {
		return AuthAccept
	}
	var a AuthAction
	switch result {
	case "fail":
		a = p.Fail
	case "softfail":
		a = p.SoftFail
	case "neutral":
		a = p.Neutral
	case "none":
		a = p.None
	case "permerror":
		a = p.PermError
	case "temperror":
		a = p.TempError
	}
	if a == "" {
		return AuthAccept
	}
	return a
}

// DMARCPolicy is DMARC verification in a mail flow policy: the ESA's
// verification profile (ESA-PIPELINE.md 1.5).
type DMARCPolicy struct {
	Verify bool
	// RejectPolicy is the action for a failing message whose domain asks
	// p=reject: AuthNone, AuthQuarantine or AuthReject; QuarantinePolicy
	// for p=quarantine: AuthNone or AuthQuarantine.
	RejectPolicy, QuarantinePolicy AuthAction
	// TempError (a DNS failure) and PermError (a broken record, a message
	// with authors in several domains): AuthAccept or AuthReject.
	TempError, PermError AuthAction
	// Quarantine is the quarantine a message goes to when the action is
	// AuthQuarantine and the gateway has a work queue (DefaultDMARCQuarantine
	// when ""); without one the message is tagged instead.
	Quarantine string
}

// DefaultDMARCQuarantine is the quarantine of DMARC's quarantine action:
// the ESA's Policy quarantine, which its DMARC verification profile
// offers for it.
const DefaultDMARCQuarantine = "Policy"

// QuarantineName is the quarantine the policy's quarantine action uses.
func (p DMARCPolicy) QuarantineName() string {
	if p.Quarantine == "" {
		return DefaultDMARCQuarantine
	}
	return p.Quarantine
}

// Action is what a DMARC result does, given the policy that applies after
// pct= ("none", "quarantine", "reject"; "" when no record was found).
func (p DMARCPolicy) Action(result, applied string) AuthAction {
	if !p.Verify {
		return AuthAccept
	}
	var a AuthAction
	switch result {
	case "fail":
		switch applied {
		case "reject":
			a = p.RejectPolicy
		case "quarantine":
			a = p.QuarantinePolicy
		}
	case "temperror":
		a = p.TempError
	case "permerror":
		a = p.PermError
	}
	switch a {
	case "", AuthNone:
		return AuthAccept
	}
	return a
}

// DefaultSPF, DefaultDMARC and DefaultDKIM are the checks of a policy
// that accepts mail from outside (ACCEPTED, THROTTLED and every other
// accept policy): verify everything, act on nothing. The results go into
// the mail log, Authentication-Results and the tracking record, so that an
// administrator sees what enforcement would do before turning it on;
// rejecting on SPF fail alone breaks forwarded mail, and DMARC enforcement
// is the domain owner's request to weigh. Relaying policies (mail from
// the gateway's own hosts) verify nothing.
var (
	DefaultSPF = SPFPolicy{Verify: true, HELO: true, Fail: AuthAccept, SoftFail: AuthAccept, Neutral: AuthAccept,
		None: AuthAccept, PermError: AuthAccept, TempError: AuthAccept}
	DefaultDMARC = DMARCPolicy{Verify: true, RejectPolicy: AuthNone, QuarantinePolicy: AuthNone,
		TempError: AuthAccept, PermError: AuthAccept, Quarantine: DefaultDMARCQuarantine}
	DefaultDKIM = true
)
