"""RFC 4733 telephone events: payload bytes, the sender's packet sequence, the receiver's dedupe."""

from __future__ import annotations

import pytest

from softphone.codecs import CodecError
from softphone.codecs.dtmf import (
    DTMF_EVENTS,
    DtmfReceiver,
    DtmfSender,
    TelephoneEventCodec,
    event_code,
    pack_event,
    unpack_event,
)

# RFC 4733 §2.3: event(8) | E(1) R(1) volume(6) | duration(16), network byte order.
KNOWN = [
    # digit 1, not the end, -10 dBm0, 160 units: 00000001 0|0|001010 0000000010100000
    ((1, False, 10, 160), bytes([0x01, 0x0A, 0x00, 0xA0])),
    # digit #, end, -10 dBm0, 800 units: 00001011 1|0|001010 0000001100100000
    ((11, True, 10, 800), bytes([0x0B, 0x8A, 0x03, 0x20])),
    ((0, False, 0, 0), bytes(4)),
    ((15, True, 63, 0xFFFF), bytes([0x0F, 0xBF, 0xFF, 0xFF])),
]


@pytest.mark.parametrize(("fields", "payload"), KNOWN)
def test_pack_and_unpack_known_bytes(fields: tuple[int, bool, int, int], payload: bytes) -> None:
    assert pack_event(*fields) == payload
    assert unpack_event(payload) == fields


def test_the_reserved_bit_is_ignored_on_receipt() -> None:
    assert unpack_event(bytes([0x05, 0x4A, 0x01, 0x40])) == (5, False, 10, 320)


@pytest.mark.parametrize("payload", [b"", b"\x01\x0a\x00", b"\x01\x0a\x00\xa0\x00"])
def test_unpack_rejects_bad_lengths(payload: bytes) -> None:
    with pytest.raises(CodecError):
        unpack_event(payload)


def test_unpack_reads_the_first_of_several_events() -> None:
    assert unpack_event(pack_event(3, True, 10, 800) + pack_event(4, False, 10, 160)) == (3, True, 10, 800)


@pytest.mark.parametrize(("fields"), [(256, False, 10, 0), (1, False, 64, 0), (1, False, 10, 65536), (1, False, -1, 0)])
def test_pack_rejects_values_that_do_not_fit(fields: tuple[int, bool, int, int]) -> None:
    with pytest.raises(ValueError):
        pack_event(*fields)


def test_event_codes() -> None:
    assert [event_code(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_code("a") == 12 and event_code("d") == 15
    assert DTMF_EVENTS[11] == "#"


def _run(sender: DtmfSender, slots: int, start: int = 1000, step: int = 160) -> list[tuple[bytes, bool, int] | None]:
    return [sender.next_packet(start + i * step) for i in range(slots)]


def test_sender_sequence_for_1_hash_at_20_ms() -> None:
    sender = DtmfSender(clock_rate=8000, ptime_ms=20, digit_ms=100, gap_ms=50, volume=10)
    assert not sender.busy and sender.next_packet(0) is None
    sender.queue("1#")
    assert sender.busy
    out = _run(sender, 20)

    def digit(event: int, timestamp: int) -> list[tuple[bytes, bool, int]]:
        durations = [160, 320, 480, 640, 800, 800, 800]
        return [
            (pack_event(event, i >= 4, 10, duration), i == 0, timestamp) for i, duration in enumerate(durations)
        ]

    # Digit 1 starts at the first slot's timestamp: a marker on its first packet only, the
    # timestamp stays, the duration grows by 160 units, the end packet goes out three times.
    assert out[0:7] == digit(1, 1000)
    # At least 50 ms of audio between digits: three 20 ms slots.
    assert out[7:10] == [None, None, None]
    # '#' starts with the timestamp of the slot it starts in.
    assert out[10:17] == digit(11, 1000 + 10 * 160)
    assert out[17:] == [None, None, None]
    assert not sender.busy


def test_end_packets_are_identical_and_carry_the_e_bit() -> None:
    sender = DtmfSender()
    sender.queue("5")
    packets = [p for p in _run(sender, 10) if p is not None]
    ends = [unpack_event(p[0]) for p in packets if unpack_event(p[0])[1]]
    assert ends == [(5, True, 10, 800)] * 3
    assert packets[-3:][0] == packets[-3:][1] == packets[-3:][2]
    assert [p[1] for p in packets].count(True) == 1


def test_digit_length_that_is_not_a_multiple_of_ptime() -> None:
    sender = DtmfSender(ptime_ms=20, digit_ms=90)
    sender.queue("9")
    durations = [unpack_event(p[0])[3] for p in _run(sender, 8) if p is not None]
    assert durations == [160, 320, 480, 640, 720, 720, 720]


def test_other_clock_rates_and_ptimes() -> None:
    sender = DtmfSender(clock_rate=48000, ptime_ms=10, digit_ms=40, gap_ms=0)
    sender.queue("0*")
    out = _run(sender, 12, start=0, step=480)
    assert [unpack_event(p[0])[3] for p in out[:6] if p] == [480, 960, 1440, 1920, 1920, 1920]
    assert out[6] is not None and out[6][1] and out[6][2] == 6 * 480  # no gap asked for


def test_timestamps_wrap_at_32_bits() -> None:
    sender = DtmfSender()
    sender.queue("2")
    packet = sender.next_packet(2**32 + 5)
    assert packet is not None and packet[2] == 5


@pytest.mark.parametrize("digits", ["1x", "E", " ", "12-3", "#\n"])
def test_invalid_digit_is_a_value_error_and_queues_nothing(digits: str) -> None:
    sender = DtmfSender()
    with pytest.raises(ValueError):
        sender.queue(digits)
    assert not sender.busy


def test_lower_case_letters_are_accepted() -> None:
    sender = DtmfSender()
    sender.queue("abcd")
    first = sender.next_packet(0)
    assert first is not None and unpack_event(first[0])[0] == 12


def test_sender_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError):
        DtmfSender(ptime_ms=0)
    with pytest.raises(ValueError):
        DtmfSender(digit_ms=10_000)  # 80000 units do not fit 16 bits
    with pytest.raises(ValueError):
        DtmfSender(volume=64)


def _send(digits: str) -> list[tuple[bytes, bool, int]]:
    sender = DtmfSender()
    sender.queue(digits)
    return [p for p in _run(sender, 40) if p is not None]


def _receive(packets: list[tuple[bytes, bool, int]], receiver: DtmfReceiver | None = None) -> list[str]:
    receiver = receiver or DtmfReceiver()
    return [d for payload, marker, ts in packets if (d := receiver.receive(payload, ts, marker)) is not None]


def test_receiver_reports_each_digit_once() -> None:
    assert _receive(_send("1#")) == ["1", "#"]


def test_receiver_with_the_first_packet_lost() -> None:
    packets = _send("7")
    assert _receive(packets[1:]) == ["7"]
    assert _receive(packets[-1:]) == ["7"]  # only an end packet arrived


def test_receiver_ignores_retransmitted_end_packets_and_late_ones() -> None:
    packets = _send("45")
    end_of_4 = packets[6]
    assert _receive(packets + [end_of_4, end_of_4]) == ["4", "5"]
    reordered = packets[:7] + packets[7:9] + [packets[5]] + packets[9:]
    assert _receive(reordered) == ["4", "5"]


def test_the_same_digit_twice_is_two_events() -> None:
    assert _receive(_send("11")) == ["1", "1"]


def test_receiver_ignores_non_dtmf_events_and_rejects_bad_payloads() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(pack_event(16, False, 10, 160), 100, True) is None  # flash
    with pytest.raises(CodecError):
        receiver.receive(b"\x01", 200, True)
    assert receiver.receive(pack_event(3, False, 10, 160), 300, True) == "3"


def test_registry_entry_builds_sender_and_receiver() -> None:
    assert isinstance(TelephoneEventCodec.sender(), DtmfSender)
    assert isinstance(TelephoneEventCodec.receiver(), DtmfReceiver)
