"""Reception and transmission statistics: RFC 3550 Appendix A.1 (sequence number
validation), A.3 (expected and lost packets) and A.8 (interarrival jitter)."""
from __future__ import annotations

from .packet import RtpPacket
from .rtcp import ReportBlock

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
_SEEN_WINDOW = 1024  # extended sequence numbers remembered for duplicate detection


class ReceiverStatistics:
    """What we know about one remote synchronization source."""

    def __init__(self, clock_rate: int, ssrc: int | None = None) -> None:
        self.clock_rate = clock_rate
        self.ssrc = ssrc
        self.received = 0
        self.octets = 0  # payload octets of the packets that counted as received
        self.duplicates = 0
        self.probation = MIN_SEQUENTIAL
        self.base_seq = 0
        self.max_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.expected_prior = 0
        self.received_prior = 0
        self._started = False
        self._transit: float | None = None
        self._jitter = 0.0
        self._seen: set[int] = set()

    # --- A.1 ---------------------------------------------------------------

    def init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self._seen.clear()

    def update_seq(self, seq: int) -> bool:
        """The A.1 algorithm: True when the packet counts as received."""
        if not self._started:
            self._started = True
            self.init_seq(seq)
            self.max_seq = (seq - 1) % RTP_SEQ_MOD
            self.probation = MIN_SEQUENTIAL
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            return self._update_probation(seq)
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # sequence number wrapped: count another 64K cycle
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
            self.init_seq(seq)  # two sequential packets: assume the other side restarted
        # else: duplicate or reordered packet
        self.received += 1
        return True

    def _update_probation(self, seq: int) -> bool:
        """A source is valid only after MIN_SEQUENTIAL packets in sequence."""
        if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
            self.probation -= 1
            self.max_seq = seq
            if self.probation == 0:
                self.init_seq(seq)
                self.received += 1
                return True
        else:
            self.probation = MIN_SEQUENTIAL - 1
            self.max_seq = seq
        return False

    # --- per packet -----------------------------------------------------

    def update(self, packet: RtpPacket, arrival: float) -> bool:
        """Account one packet arriving at `arrival` seconds; False to discard it."""
        if self.ssrc is None:
            self.ssrc = packet.ssrc
        elif packet.ssrc != self.ssrc:
            return False
        if self._started and not self.probation and self._is_duplicate(packet.sequence):
            self.duplicates += 1
            return False
        if not self.update_seq(packet.sequence):
            return False
        self._remember(packet.sequence)
        self._update_jitter(packet.timestamp, arrival)
        self.octets += len(packet.payload)
        return True

    def _extended(self, seq: int) -> int:
        delta = (seq - self.max_seq + RTP_SEQ_MOD // 2) % RTP_SEQ_MOD - RTP_SEQ_MOD // 2
        return self.extended_max_sequence + delta

    def _is_duplicate(self, seq: int) -> bool:
        return self._extended(seq) in self._seen

    def _remember(self, seq: int) -> None:
        extended = self._extended(seq)
        self._seen.add(extended)
        if len(self._seen) > 2 * _SEEN_WINDOW:
            horizon = self.extended_max_sequence - _SEEN_WINDOW
            self._seen = {s for s in self._seen if s > horizon}

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        """A.8: J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16, in timestamp units."""
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = transit - self._transit
            d = (d + 2**31) % 2**32 - 2**31  # the 32-bit RTP timestamp may wrap
            self._jitter += (abs(d) - self._jitter) / 16
        self._transit = transit

    # --- A.3 ---------------------------------------------------------------

    @property
    def extended_max_sequence(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        if not self._started or self.probation:
            return 0
        return self.extended_max_sequence - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def jitter(self) -> float:
        return self._jitter

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self.clock_rate

    def fraction_lost(self) -> int:
        """Fraction lost since the previous call, in 1/256 units; starts a new interval."""
        expected_interval = self.expected - self.expected_prior
        self.expected_prior = self.expected
        received_interval = self.received - self.received_prior
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    def report_block(self, now: float, last_sr: tuple[int, float] | None) -> ReportBlock:
        """A reception report about this source; `last_sr` is the middle 32 bits of the
        last SR's NTP timestamp and its local arrival time (for LSR and DLSR)."""
        lsr, dlsr = 0, 0
        if last_sr is not None:
            lsr = last_sr[0]
            # "expressed in units of 1/65536 seconds" (RFC 3550 §6.4.1, DLSR)
            dlsr = max(0, min(0xFFFFFFFF, int((now - last_sr[1]) * 65536)))
        return ReportBlock(
            ssrc=self.ssrc or 0,
            fraction_lost=self.fraction_lost(),
            cumulative_lost=max(-0x800000, min(0x7FFFFF, self.lost)),
            highest_sequence=self.extended_max_sequence & 0xFFFFFFFF,
            jitter=min(0xFFFFFFFF, int(self._jitter)),
            lsr=lsr,
            dlsr=dlsr,
        )


class SenderStatistics:
    """Counts for the SR sender information (RFC 3550 §6.4.1)."""

    def __init__(self) -> None:
        self.packets = 0
        self.octets = 0
        self.last_rtp_timestamp: int | None = None
        self.last_sent: float | None = None

    def sent(self, packet: RtpPacket, now: float) -> None:
        self.sent_payload(len(packet.payload), packet.timestamp, now)

    def sent_payload(self, octets: int, timestamp: int, now: float) -> None:
        # sender's octet count: "the total number of payload octets (i.e., not
        # including header or padding)" (RFC 3550 §6.4.1)
        self.packets = (self.packets + 1) & 0xFFFFFFFF
        self.octets = (self.octets + octets) & 0xFFFFFFFF
        self.last_rtp_timestamp = timestamp
        self.last_sent = now


def round_trip_time(block: ReportBlock, arrival_ntp_middle32: int) -> float | None:
    """RFC 3550 §6.4.1: round-trip propagation delay A - LSR - DLSR, in seconds;
    None when the report carries no LSR (no SR received by the reporter yet)."""
    if block.lsr == 0:
        return None
    delay = (arrival_ntp_middle32 - block.lsr - block.dlsr) & 0xFFFFFFFF
    if delay >= 1 << 31:  # negative: clocks disagree or the report is stale
        return 0.0
    return delay / 65536
