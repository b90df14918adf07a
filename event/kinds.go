package event

func (NewICID) isEvent()          {}
func (HATMatch) isEvent()         {}
func (TLS) isEvent()              {}
func (StartMID) isEvent()         {}
func (MailFrom) isEvent()         {}
func (RcptTo) isEvent()           {}
func (RcptRejected) isEvent()     {}
func (InvalidAddress) isEvent()   {}
func (ReceivingFailed) isEvent()  {}
func (UnknownCommand) isEvent()   {}
func (MessageIDHeader) isEvent()  {}
func (Subject) isEvent()          {}
func (Ready) isEvent()            {}
func (PolicyMatch) isEvent()      {}
func (Queued) isEvent()           {}
func (ICIDLost) isEvent()         {}
func (MessageAborted) isEvent()   {}
func (MessageFinished) isEvent()  {}
func (ICIDClose) isEvent()        {}
func (ICIDDisconnected) isEvent() {}
func (SMTPAuth) isEvent()         {}

func (NewDCID) isEvent()          {}
func (DeliveryStart) isEvent()    {}
func (MessageDone) isEvent()      {}
func (Response) isEvent()         {}
func (Outcome) isEvent()          {}
func (ConnectionError) isEvent()  {}
func (DCIDClose) isEvent()        {}
func (BounceGenerated) isEvent()  {}
func (DoubleBounce) isEvent()     {}
func (Pending) isEvent()          {}
func (PossibleDelivery) isEvent() {}
func (Deleted) isEvent()          {}

func (BeginLogfile) isEvent()         {}
func (LogfileVersion) isEvent()       {}
func (TimeOffset) isEvent()           {}
func (Unknown) isEvent()              {}
func (InjectionDebug) isEvent()       {}
func (ConnectionEnd) isEvent()        {}
func (Status) isEvent()               {}
func (AlertSent) isEvent()            {}
func (ResourceConservation) isEvent() {}
func (ScanSummary) isEvent()          {}
