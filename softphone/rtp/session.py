"""One media stream's RTP/RTCP bookkeeping, without sockets: numbering of the
packets we send, statistics of the remote source, RTCP reports (RFC 3550 §6)."""
from __future__ import annotations

import logging
import random

from .packet import RtpError, RtpPacket, pack
from .rtcp import (
    SDES_CNAME,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    middle_32,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)
from .stats import ReceiverStatistics, SenderStatistics, round_trip_time

logger = logging.getLogger(__name__)

RTCP_MIN_INTERVAL = 5.0
RTCP_RANDOM_LOW = 0.5
RTCP_RANDOM_HIGH = 1.5


# one generator for every stream, seeded once from the OS: seeding a new one per stream reads
# 2.5 kB from the OS each time, a cost that showed under load
_RANDOM = random.Random()


class RtpSender:
    """Sequence numbers and timestamps for one outgoing stream."""

    def __init__(
        self, payload_type: int, clock_rate: int, ssrc: int | None = None, rng: random.Random | None = None
    ) -> None:
        rng = rng or _RANDOM
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        # SSRC: "This identifier SHOULD be chosen randomly"; "The initial value of
        # the sequence number SHOULD be random (unpredictable)"; "The initial value
        # of the timestamp SHOULD be random" (RFC 3550 §5.1)
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)

    @property
    def next_timestamp(self) -> int:
        return self._timestamp

    def data(
        self,
        payload: bytes,
        *,
        samples: int,
        marker: bool = False,
        payload_type: int | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, int]:
        """The next packet's bytes and its RTP timestamp. The stream clock always advances by
        `samples`; an explicit `timestamp` only stamps this packet (an RFC 4733 event keeps its
        start time)."""
        stamp = self._timestamp if timestamp is None else timestamp & 0xFFFFFFFF
        data = pack(self.payload_type if payload_type is None else payload_type, self.sequence, stamp,
                    self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + samples) & 0xFFFFFFFF
        return data, stamp


class RtcpScheduler:
    """RTCP transmission interval (RFC 3550 §6.2, §6.3.1) for a two-party call: a
    fixed minimum (half of it before the first report), randomized over
    [0.5, 1.5] times; no reconsideration."""

    def __init__(self, rng: random.Random | None = None, minimum: float = RTCP_MIN_INTERVAL) -> None:
        self.rng = rng or _RANDOM
        self.minimum = minimum
        self._next: float | None = None

    def _interval(self, deterministic: float) -> float:
        # "the interval between RTCP packets is varied randomly over the range
        # [0.5,1.5] times the calculated interval" (RFC 3550 §6.2)
        return deterministic * self.rng.uniform(RTCP_RANDOM_LOW, RTCP_RANDOM_HIGH)

    def next_time(self, now: float) -> float:
        if self._next is None:
            self._next = now + self._interval(self.minimum / 2)
        return self._next

    def due(self, now: float) -> bool:
        return now >= self.next_time(now)

    def sent(self, now: float) -> None:
        self._next = now + self._interval(self.minimum)


class RtpSession:
    """Sending numbering + statistics of the remote source + RTCP generation and
    processing for one media stream."""

    def __init__(self, *, payload_type: int, clock_rate: int, cname: str, rng: random.Random | None = None) -> None:
        self.clock_rate = clock_rate
        self.cname = cname
        self.sender = RtpSender(payload_type, clock_rate, rng=rng)
        self.sender_stats = SenderStatistics()
        self.receiver: ReceiverStatistics | None = None
        self.malformed = 0
        self.rtt_ms: float | None = None
        self.remote_bye = False
        self.remote_ssrc: int | None = None
        self._held: RtpPacket | None = None  # the first packet of a source still on probation
        self._last_sr: dict[int, tuple[int, float]] = {}
        self._reports_since_sent = 2
        self._wallclock_offset: float | None = None

    @property
    def ssrc(self) -> int:
        return self.sender.ssrc

    # --- RTP -----------------------------------------------------------------

    def prepare(
        self,
        payload: bytes,
        *,
        samples: int,
        now: float,
        marker: bool = False,
        payload_type: int | None = None,
        timestamp: int | None = None,
    ) -> bytes:
        """Build and count one RTP packet; returns its bytes."""
        data, stamp = self.sender.data(
            payload, samples=samples, marker=marker, payload_type=payload_type, timestamp=timestamp
        )
        self.sender_stats.sent_payload(len(payload), stamp, now)
        self._reports_since_sent = 0
        return data

    def receive_rtp(self, data: bytes, now: float) -> RtpPacket | None:
        """Parse and validate one RTP packet; None for one to discard."""
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            self.malformed += 1
            logger.debug("malformed RTP packet dropped: %s", exc)
            return None
        if self.receiver is None or packet.ssrc != self.remote_ssrc:
            self._new_source(packet.ssrc)
        assert self.receiver is not None
        return packet if self.receiver.update(packet, now) else None

    def receive_rtp_packets(self, data: bytes, now: float) -> list[RtpPacket]:
        """Like :meth:`receive_rtp`, but a packet held while its source was on probation
        (RFC 3550 A.1) is delivered too once the next one validates the source: the
        first frame of a stream is not lost to the validation."""
        packet = self.receive_rtp(data, now)
        receiver = self.receiver
        if packet is None:
            if receiver is not None and receiver.probation and data:
                try:
                    self._held = RtpPacket.parse(data)
                except RtpError:
                    self._held = None
            return []
        held, self._held = self._held, None
        if held is not None and held.ssrc == packet.ssrc and (held.sequence + 1) & 0xFFFF == packet.sequence:
            return [held, packet]
        return [packet]

    def _new_source(self, ssrc: int) -> None:
        if self.remote_ssrc is not None:
            logger.info("remote SSRC changed from %08x to %08x", self.remote_ssrc, ssrc)
        self.remote_ssrc = ssrc
        self.receiver = ReceiverStatistics(self.clock_rate, ssrc)

    # --- RTCP in -------------------------------------------------------------

    def receive_rtcp(self, data: bytes, now: float) -> list[RtcpPacket]:
        """Parse a compound RTCP packet and learn from it."""
        try:
            packets = parse_compound(data)
        except RtcpError as exc:
            self.malformed += 1
            logger.debug("malformed RTCP packet dropped: %s", exc)
            return []
        for packet in packets:
            self._learn(packet, now)
        return packets

    def _learn(self, packet: RtcpPacket, now: float) -> None:
        if isinstance(packet, SenderReport):
            self._last_sr[packet.ssrc] = (middle_32(packet.ntp_timestamp), now)
        if isinstance(packet, (SenderReport, ReceiverReport)):
            for block in packet.reports:
                if block.ssrc == self.ssrc:
                    self._update_rtt(block, now)
        elif isinstance(packet, Bye) and self.ssrc not in packet.ssrcs:
            self.remote_bye = True

    def _update_rtt(self, block: ReportBlock, now: float) -> None:
        if self._wallclock_offset is None:
            return
        arrival = middle_32(ntp_from_unix(now + self._wallclock_offset))
        rtt = round_trip_time(block, arrival)
        if rtt is not None:
            self.rtt_ms = rtt * 1000

    # --- RTCP out ------------------------------------------------------------

    def rtcp_report(self, now: float, wallclock: float) -> bytes:
        """A compound RTCP packet: SR or RR, then SDES CNAME (RFC 3550 §6.1)."""
        return serialize_compound(self._report_packets(now, wallclock))

    def rtcp_bye(self, now: float, wallclock: float, reason: str | None = None) -> bytes:
        """The report packets followed by BYE: "BYE should be the last packet sent
        with a given SSRC/CSRC." (RFC 3550 §6.1)"""
        return serialize_compound([*self._report_packets(now, wallclock), Bye((self.ssrc,), reason)])

    def _report_packets(self, now: float, wallclock: float) -> list[RtcpPacket]:
        # "The first RTCP packet in the compound packet MUST always be a report
        # packet [...] even if no data has been sent or received, in which case an
        # empty RR MUST be sent" and "An SDES packet containing a CNAME item MUST be
        # included in each compound RTCP packet" (RFC 3550 §6.1)
        self._wallclock_offset = wallclock - now
        blocks = self._report_blocks(now)
        report: RtcpPacket
        if self._reports_since_sent < 2:
            report = self._sender_report(now, wallclock, blocks)
        else:
            report = ReceiverReport(self.ssrc, blocks)
        self._reports_since_sent += 1
        return [report, SourceDescription(((self.ssrc, ((SDES_CNAME, self.cname),)),))]

    def _report_blocks(self, now: float) -> tuple[ReportBlock, ...]:
        if self.receiver is None or self.remote_ssrc is None or self.receiver.expected == 0:
            return ()
        return (self.receiver.report_block(now, self._last_sr.get(self.remote_ssrc)),)

    def _sender_report(self, now: float, wallclock: float, blocks: tuple[ReportBlock, ...]) -> SenderReport:
        # The SR's RTP timestamp "corresponds to the same time as the NTP timestamp
        # (above), but in the same units and with the same random offset as the RTP
        # timestamps in data packets" (RFC 3550 §6.4.1)
        stats = self.sender_stats
        rtp_timestamp = self.sender.next_timestamp
        if stats.last_rtp_timestamp is not None and stats.last_sent is not None:
            elapsed = int((now - stats.last_sent) * self.clock_rate)
            rtp_timestamp = (stats.last_rtp_timestamp + elapsed) & 0xFFFFFFFF
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_from_unix(wallclock),
            rtp_timestamp=rtp_timestamp,
            packet_count=stats.packets,
            octet_count=stats.octets,
            reports=blocks,
        )

    def summary(self) -> dict[str, int | float | None]:
        receiver = self.receiver
        return {
            "tx_packets": self.sender_stats.packets,
            "tx_octets": self.sender_stats.octets,
            "rx_packets": receiver.received if receiver else 0,
            "lost": receiver.lost if receiver else 0,
            "jitter_ms": round(receiver.jitter_ms, 3) if receiver else 0.0,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "malformed": self.malformed,
            "duplicates": receiver.duplicates if receiver else 0,
        }

