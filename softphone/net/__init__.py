"""The only sockets: SIP over UDP and TCP, and the RTP/RTCP port pairs of media streams."""
