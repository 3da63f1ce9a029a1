"""firewall_policy=stun: the STUN Binding codec (RFC 5389, RFC 5769 test vectors), and the public
address of a call's RTP sockets from a real STUN server (coturn on loopback) put in its SDP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from softphone.errors import TransportError
from softphone.net import stun
from softphone.net.rtp import RtpPortPair, open_port_pair
from softphone.sdp.negotiate import SessionConfig, StreamConfig
from tests.interop.coturn import TurnServer, coturn

# RFC 5769 §2.2: a Binding success response with XOR-MAPPED-ADDRESS 192.0.2.1:32853, after SOFTWARE
# and before MESSAGE-INTEGRITY and FINGERPRINT
TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
RFC5769_IPV4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)


def test_rfc5769_ipv4_response_gives_the_xor_mapped_address() -> None:
    assert stun.mapped_address(RFC5769_IPV4, TID) == ("192.0.2.1", 32853)


def test_binding_request_is_a_header_with_the_magic_cookie() -> None:
    request = stun.binding_request(TID)
    assert request == bytes.fromhex("000100002112a442") + TID
    with pytest.raises(ValueError, match="96 bits"):
        stun.binding_request(b"short")


@pytest.mark.parametrize("addr", [("192.0.2.1", 32853), ("203.0.113.200", 1), ("2001:db8:1234:5678:11:2233:4455:6677",
                                                                              65534)])
def test_xor_mapped_address_round_trips_and_matches_aioice(addr: tuple[str, int]) -> None:
    aioice_stun = pytest.importorskip("aioice.stun")
    response = stun.binding_response(TID, addr)
    assert stun.mapped_address(response, TID) == addr
    parsed = aioice_stun.parse_message(response)  # an independent codec reads the same thing
    assert parsed.attributes["XOR-MAPPED-ADDRESS"] == addr
    request = aioice_stun.parse_message(stun.binding_request(TID))
    assert (request.message_method, request.message_class, request.transaction_id) == (
        aioice_stun.Method.BINDING, aioice_stun.Class.REQUEST, TID)


def test_ipv6_xor_uses_the_transaction_id() -> None:
    addr = ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    # RFC 5769 §2.3: the XOR'ed IPv6 address for this transaction
    assert stun.encode_address(addr, TID)[4:] == bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")


def test_plain_mapped_address_of_an_rfc3489_server() -> None:
    assert stun.mapped_address(stun.binding_response(TID, ("198.51.100.4", 4000), xor=False), TID) == (
        "198.51.100.4", 4000)


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\x00", "shorter than a STUN header"),
    (b"\x80" + RFC5769_IPV4[1:], "not a STUN message"),  # an RTP packet's first byte
    (RFC5769_IPV4[:4] + b"\x00\x00\x00\x00" + TID, "not a STUN message"),
    (RFC5769_IPV4[:8] + bytes(12) + RFC5769_IPV4[20:], "another transaction"),
    (b"\x01\x11" + RFC5769_IPV4[2:], "not a Binding success"),
    (RFC5769_IPV4[:40], "truncated"),
    (bytes.fromhex("010100002112a442") + TID, "without a mapped address"),
])
def test_bad_responses_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(stun.StunError, match=message):
        stun.mapped_address(data, TID)


@pytest.mark.parametrize(("text", "server"), [("192.0.2.9:3478", ("192.0.2.9", 3478)),
                                              ("stun.example.org", ("stun.example.org", 3478)),
                                              ("[2001:db8::1]:3479", ("2001:db8::1", 3479))])
def test_server_text(text: str, server: tuple[str, int]) -> None:
    assert stun.parse_server(text) == server


# ------------------------------------------------------------------ against coturn on loopback


@pytest.fixture
def stun_server(tmp_path: Path) -> Iterator[TurnServer]:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with coturn("127.0.0.1", port, tmp_path) as server:
        yield server


def _config(pair: RtpPortPair, rtcp_mux: bool) -> SessionConfig:
    # 192.0.2.1 stands for the local address the SDP would carry without STUN
    return SessionConfig("192.0.2.1", (StreamConfig("audio", 40000, (), rtcp_mux=rtcp_mux),))


@pytest.mark.parametrize("rtcp_mux", [False, True])
def test_the_sdp_carries_the_address_and_ports_coturn_reported(stun_server: TurnServer, rtcp_mux: bool) -> None:
    pair = open_port_pair("127.0.0.1", (0, 0))
    settings = SimpleNamespace(firewall_policy=2, stun_server=f"{stun_server.host}:{stun_server.port}")

    async def run() -> tuple[SessionConfig, tuple[str, int]]:
        # what coturn says about another socket bound the same way, asked by the same code path
        reported = await stun.query(pair.rtp, (stun_server.host, stun_server.port))
        return await stun.prepare([pair], _config(pair, rtcp_mux), settings), reported

    try:
        cfg, reported = asyncio.run(run())
    finally:
        pair.close()
    assert reported == ("127.0.0.1", pair.port)
    (stream,) = cfg.streams
    assert (cfg.address, stream.port) == reported
    assert stream.rtcp_port is None  # RTCP's mapping is the next port: no a=rtcp


def test_other_policies_do_not_ask() -> None:
    pair = open_port_pair("127.0.0.1", (0, 0))
    try:
        cfg = _config(pair, False)
        settings = SimpleNamespace(firewall_policy=3, stun_server="127.0.0.1:9")
        assert asyncio.run(stun.prepare([pair], cfg, settings)) is cfg
    finally:
        pair.close()


def test_a_silent_stun_server_leaves_the_local_address_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    pair = open_port_pair("127.0.0.1", (0, 0))
    settings = SimpleNamespace(firewall_policy=2, stun_server=f"127.0.0.1:{silent.getsockname()[1]}")
    try:
        cfg = _config(pair, False)
        with caplog.at_level("WARNING", logger="softphone.net.stun"):
            assert asyncio.run(stun.prepare([pair], cfg, settings, waits=(0.05, 0.05, 0.05))) is cfg
        with pytest.raises(TransportError, match="no answer from the STUN server"):
            asyncio.run(stun.query(pair.rtp, silent.getsockname(), (0.05,)))
        silent.setblocking(False)
        received = []
        with contextlib.suppress(BlockingIOError):
            while True:
                received.append(silent.recv(100))
        # three tries from each of RTP and RTCP, then the one of the single query
        assert len(received) == 7 and all(r[:8] == bytes.fromhex("000100002112a442") for r in received)
    finally:
        pair.close()
        silent.close()
    assert "STUN failed, the SDP carries the local address" in caplog.text


# ------------------------------------------------------------------ the phone, calling and called

AUDIO = ("--audio-source", "tone: 440", "--audio-sink", "null:")


def _stun_rc(tmp_path: Path, name: str, server: str) -> Path:
    path = tmp_path / f"{name}.rc"
    path.write_text(f"[net]\nfirewall_policy=stun\nstun_server={server}\n")
    return path


def _announced(stderr: str) -> list[tuple[str, int]]:
    """What the phone's STUN log lines say its SDP carries: (address, first port)."""
    found = []
    for line in stderr.splitlines():
        if "STUN: the SDP carries " in line:
            address, _, ports = line.split("STUN: the SDP carries ", 1)[1].partition(" (ports ")
            found.append((address, int(ports.split(",")[0].rstrip(")"))))
    return found


@pytest.mark.timeout(60)
def test_calling_and_called_phones_put_the_stun_mapping_in_their_sdp(
    softphone: Any, stun_server: TurnServer, tmp_path: Path
) -> None:
    server = f"{stun_server.host}:{stun_server.port}"
    callee = softphone("-c", _stun_rc(tmp_path, "callee", server), "-v", "--bind", "127.0.0.1", "--sip-port", "0",
                       "--rtp-port", "0", "answer", "--auto", "--once", *AUDIO)
    caller = softphone("-c", _stun_rc(tmp_path, "caller", server), "-v", "--bind", "127.0.0.1", "--sip-port", "0",
                       "--rtp-port", "0", "call", f"sip:bob@127.0.0.1:{callee.port('udp')}", "--duration", "2",
                       *AUDIO)
    assert caller.wait(30) == 0, caller.describe()
    assert callee.wait(30) == 0, callee.describe()
    (end,) = callee.summary["calls"]
    for phone, peer in ((caller, end), (callee, caller.summary)):
        (announced,) = _announced(phone.stderr)
        # what coturn reported is what the other side took from the SDP
        assert peer["audio"]["remote"] == f"{announced[0]}:{announced[1]}", (announced, peer["audio"])
        assert peer["audio"]["rx_packets"] > 0 and peer["audio"]["tx_packets"] > 0, peer


@pytest.mark.timeout(60)
def test_without_an_answer_from_the_stun_server_the_call_goes_on_with_a_warning(
    softphone: Any, tmp_path: Path
) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "answer", "--auto", "--once", *AUDIO)
        caller = softphone("-c", _stun_rc(tmp_path, "caller", f"127.0.0.1:{silent.getsockname()[1]}"),
                           "--bind", "127.0.0.1", "--sip-port", "0", "call",
                           f"sip:bob@127.0.0.1:{callee.port('udp')}", "--duration", "1", *AUDIO)
        assert caller.wait(30) == 0, caller.describe()
        assert callee.wait(30) == 0, callee.describe()
    finally:
        silent.close()
    assert "STUN failed, the SDP carries the local address" in caller.stderr, caller.describe()
    assert caller.summary["result"] == "completed", caller.summary
