"""SIP (RFC 3261) without I/O: messages, transactions, the endpoint, dialogs, digest auth, registration."""
