package main

import (
	"math/rand/v2"
	"strconv"
)

// The words the generator builds addresses, host names and subjects from.
// Everything is plain ASCII or ordinary UTF-8 letters: nothing the maillog
// renderer escapes, so that the truth file holds exactly what a parser reads
// back from the log.

var firstNames = []string{
	"james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
	"david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen",
	"chris", "nancy", "daniel", "lisa", "matthew", "betty", "anthony", "margaret", "mark", "sandra",
	"donald", "ashley", "steven", "kimberly", "paul", "emily", "andrew", "donna", "joshua", "michelle",
	"kenneth", "carol", "kevin", "amanda", "brian", "dorothy", "george", "melissa", "timothy", "deborah",
	"wei", "li", "fatima", "mohammed", "anna", "lukas", "sofia", "mateo", "chloe", "hiroshi",
	"yuki", "priya", "arjun", "olga", "ivan", "lars", "ingrid", "pierre", "amelie", "giulia",
}

var lastNames = []string{
	"smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
	"hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore", "jackson", "martin",
	"lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez", "lewis", "robinson",
	"walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill", "flores",
	"green", "adams", "nelson", "baker", "hall", "rivera", "campbell", "mitchell", "carter", "roberts",
	"zhang", "wang", "chen", "kumar", "singh", "mueller", "schmidt", "dubois", "rossi", "tanaka",
	"suzuki", "ivanova", "novak", "kowalski", "jensen", "larsen", "silva", "santos", "okafor", "haddad",
}

// Big providers first: the receivers and senders of most mail.
var bigDomains = []string{
	"gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "aol.com", "gmx.de",
	"web.de", "orange.fr", "comcast.net", "proton.me", "yandex.ru", "qq.com", "live.com",
}

// Bulk senders: the automated mail an inbound gateway sees all day.
var bulkDomains = []string{
	"mailer.linkedin.com", "facebookmail.com", "email.amazon.com", "github.com", "atlassian.net",
	"salesforce.com", "mail.zoom.us", "docusign.net", "slack.com", "notifications.google.com",
	"paypal.com", "email.apple.com", "marketo.org", "sendgrid.net", "mailchimpapp.net",
}

var bulkLocals = []string{"noreply", "no-reply", "notifications", "newsletter", "info", "support", "billing", "alerts", "updates", "news"}

var domainWords = []string{
	"acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent",
	"hooli", "vandelay", "dunder", "mifflin", "pied", "piper", "massive", "dynamic", "north", "south",
	"blue", "river", "stone", "bridge", "peak", "harbor", "summit", "pixel", "quantum", "vertex",
	"alpine", "coastal", "metro", "prime", "apex", "nova", "orbit", "lumen", "cedar", "maple",
}

var tlds = []string{".com", ".com", ".com", ".net", ".org", ".de", ".fr", ".co.uk", ".io", ".nl", ".it", ".es"}

// The gateway's own domains: inbound mail is for these.
var localDomains = []string{"example.com", "example.com", "example.com", "eu.example.com", "example.co.uk"}

// Recipient domains that do not exist (typos): DNS hard errors, DCID 0.
var nxDomains = []string{"gmial.com", "hotmial.com", "outlok.com", "yahho.com", "exmaple.net", "comcats.net"}

// Destinations that accept no connection: Connection Error, the mail stays queued.
var deadDomains = []string{"legacy-mx.example.net", "oldpartner.example.org"}

var subjectWords = []string{
	"invoice", "order", "meeting", "report", "update", "project", "budget", "review", "schedule", "contract",
	"proposal", "quarterly", "planning", "team", "customer", "delivery", "shipment", "payment", "reminder", "account",
	"security", "password", "training", "webinar", "newsletter", "offer", "renewal", "subscription", "survey", "feedback",
	"agenda", "minutes", "draft", "final", "approval", "request", "ticket", "incident", "release", "roadmap",
	"migration", "backup", "outage", "maintenance", "holiday", "office", "travel", "expense", "hiring", "interview",
	"onboarding", "benefits", "policy", "compliance", "audit", "forecast", "pipeline", "launch", "campaign", "partner",
	"vendor", "supplier", "warehouse", "inventory", "pricing", "quote", "discount", "event", "conference", "summit",
	"workshop", "lunch", "birthday", "welcome", "farewell", "announcement", "results", "dashboard", "metrics", "analysis",
	"Réunion", "Rechnung", "Angebot", "presupuesto", "fattura", "Bestellung", "Übersicht", "résumé", "café", "naïve",
}

var subjectTemplates = []string{
	"%w %w",
	"Re: %w %w",
	"RE: %w %w for %N",
	"Fwd: %w %w",
	"FW: %W %w %w",
	"%W %w #%n",
	"Invoice %n from %D",
	"Your order #%n has shipped",
	"Don't miss our %w %w",
	"Reminder: %w %w on Monday",
	"[%D] %W %w",
	"%W %w – week %k",
	"Action required: %w %w",
	"We've updated our %w %w",
	"Q%q %w %w",
	"Meeting with %N about the \"%w\" %w",
	"Your %w statement is ready",
	"%N shared \"%w %w\" with you",
	"Re: Re: %w %w",
	"Welcome to %D",
}

var tlsCiphers = []string{
	"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384",
	"TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "AES128-SHA",
}

var mtaHostFormats = []string{
	"mail-%d.outbound.protection.outlook.com", "mail-wr1-f%d.google.com", "mx%d.%D", "smtp%d.%D",
	"o%d.email.%D", "mta-%d.%D", "out-%d.mailgun.net", "a%d-%d.smtp-out.amazonses.com",
}

// pools are the address and host populations, built once from the seed.
type pools struct {
	extSenders []string // external senders of inbound mail
	intUsers   []string // the gateway's users: inbound recipients, relay senders
	extRcpts   []string // external recipients of relayed (outbound) mail
	inIPs      []peer   // sending MTAs on the internet
	relayIPs   []peer   // internal clients that relay out
	domains    []string // external domains
}

type peer struct {
	ip, host string
	verified bool
}

func newPools(r *rand.Rand) *pools {
	p := &pools{}
	p.domains = append(p.domains, bigDomains...)
	for len(p.domains) < 600 {
		d := domainWords[r.IntN(len(domainWords))]
		if r.IntN(2) == 0 {
			d += domainWords[r.IntN(len(domainWords))]
		} else if r.IntN(3) == 0 {
			d += "-" + domainWords[r.IntN(len(domainWords))]
		}
		p.domains = append(p.domains, d+tlds[r.IntN(len(tlds))])
	}
	person := func(domain string) string {
		f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		switch r.IntN(6) {
		case 0:
			return f + "." + l + strconv.Itoa(r.IntN(100)) + "@" + domain
		case 1:
			return f[:1] + l + "@" + domain
		case 2:
			return f + "_" + l + "@" + domain
		}
		return f + "." + l + "@" + domain
	}
	extDomain := func() string {
		// A third at the big providers, the rest spread over companies with a skew.
		if r.IntN(3) == 0 {
			return bigDomains[r.IntN(len(bigDomains))]
		}
		i := int(float64(len(p.domains)) * r.Float64() * r.Float64())
		return p.domains[i]
	}
	for range 50000 {
		if r.IntN(5) == 0 {
			p.extSenders = append(p.extSenders, bulkLocals[r.IntN(len(bulkLocals))]+"@"+bulkDomains[r.IntN(len(bulkDomains))])
			continue
		}
		p.extSenders = append(p.extSenders, person(extDomain()))
	}
	for range 20000 {
		p.intUsers = append(p.intUsers, person(localDomains[r.IntN(len(localDomains))]))
	}
	for range 100000 {
		p.extRcpts = append(p.extRcpts, person(extDomain()))
	}
	for i := range 5000 {
		ip := strconv.Itoa(r.IntN(200)+11) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(254)+1)
		pe := peer{ip: ip, host: "unknown"}
		if r.IntN(100) >= 12 {
			pe.host = expand(r, mtaHostFormats[i%len(mtaHostFormats)], p.domains)
			pe.verified = r.IntN(10) != 0
		}
		p.inIPs = append(p.inIPs, pe)
	}
	for range 300 {
		n := r.IntN(250) + 2
		p.relayIPs = append(p.relayIPs, peer{
			ip:       "10.1." + strconv.Itoa(r.IntN(8)) + "." + strconv.Itoa(n),
			host:     "app" + strconv.Itoa(n) + ".corp.example.com",
			verified: true,
		})
	}
	return p
}

// expand fills a template: %d a number, %D a domain.
func expand(r *rand.Rand, f string, domains []string) string {
	var b []byte
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b = append(b, f[i])
			continue
		}
		i++
		switch f[i] {
		case 'd':
			b = strconv.AppendInt(b, int64(r.IntN(999)+1), 10)
		case 'D':
			b = append(b, domains[r.IntN(len(domains))]...)
		}
	}
	return string(b)
}

// subject builds a subject line: %w a word, %W a capitalised word, %n an
// order number, %k a week, %q a quarter, %N a name, %D a company.
func subject(r *rand.Rand, b []byte, domains []string) []byte {
	f := subjectTemplates[r.IntN(len(subjectTemplates))]
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b = append(b, f[i])
			continue
		}
		i++
		switch f[i] {
		case 'w':
			b = append(b, word(r)...)
		case 'W':
			w := word(r)
			if w[0] >= 'a' && w[0] <= 'z' {
				b = append(b, w[0]-'a'+'A')
				w = w[1:]
			}
			b = append(b, w...)
		case 'n':
			b = strconv.AppendInt(b, int64(r.IntN(900000)+100000), 10)
		case 'k':
			b = strconv.AppendInt(b, int64(r.IntN(52)+1), 10)
		case 'q':
			b = strconv.AppendInt(b, int64(r.IntN(4)+1), 10)
		case 'N':
			f := firstNames[r.IntN(len(firstNames))]
			b = append(b, f[0]-'a'+'A')
			b = append(b, f[1:]...)
		case 'D':
			d := domains[r.IntN(len(domains))]
			for j := 0; j < len(d) && d[j] != '.'; j++ {
				b = append(b, d[j])
			}
		}
	}
	return b
}

// word picks a subject word with a skew: the first words of the list are
// the common ones.
func word(r *rand.Rand) string {
	return subjectWords[int(float64(len(subjectWords))*r.Float64()*r.Float64())]
}
