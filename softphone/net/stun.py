"""[net] firewall_policy=stun (linphone's 2): the public address of each RTP and RTCP socket from a
STUN server (RFC 5389 Binding request), put in the SDP in place of our own, without ICE.

The request goes from the call's own sockets before they are handed to the event loop, so the
mapping the server reports is the one a peer outside the NAT reaches them by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from softphone.errors import TransportError
from softphone.net.rtp import RtpPortPair
from softphone.sdp.negotiate import SessionConfig

log = logging.getLogger(__name__)

Address = tuple[str, int]
STUN_POLICY = 2  # [net] firewall_policy=stun, linphone's number
DEFAULT_PORT = 3478
# how long each try waits for the answer: three tries, about a second in all
WAITS = (0.2, 0.3, 0.5)

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
_HEADER = struct.Struct("!HHI12s")
_FAMILY = {0x01: socket.AF_INET, 0x02: socket.AF_INET6}


class StunError(ValueError):
    """A datagram that is not the STUN Binding success response we wait for."""


def binding_request(transaction_id: bytes) -> bytes:
    """A Binding request without attributes (RFC 5389 §6: "The magic cookie field MUST contain the
    fixed value 0x2112A442 in network byte order")."""
    if len(transaction_id) != 12:
        raise ValueError("a STUN transaction ID is 96 bits")
    return _HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction_id)


def new_transaction_id() -> bytes:
    # RFC 5389 §6: the transaction ID "MUST be uniformly and randomly chosen from the interval 0 .. 2**96-1"
    return os.urandom(12)


def mapped_address(data: bytes, transaction_id: bytes) -> Address:
    """The (XOR-)MAPPED-ADDRESS of a Binding success response to ``transaction_id``."""
    if len(data) < _HEADER.size:
        raise StunError("shorter than a STUN header")
    kind, length, cookie, tid = _HEADER.unpack_from(data)
    if kind & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunError("not a STUN message")
    if tid != transaction_id:
        raise StunError("a response to another transaction")
    if kind != BINDING_SUCCESS:
        raise StunError(f"not a Binding success response (type 0x{kind:04x})")
    if _HEADER.size + length > len(data) or length % 4:
        raise StunError("truncated STUN message")
    plain: Address | None = None
    offset, end = _HEADER.size, _HEADER.size + length
    while offset + 4 <= end:
        attr, size = struct.unpack_from("!HH", data, offset)
        value = data[offset + 4:offset + 4 + size]
        if len(value) < size:
            raise StunError("truncated STUN attribute")
        if attr == XOR_MAPPED_ADDRESS:
            return _address(value, xor=data[4:20])
        if attr == MAPPED_ADDRESS:  # RFC 3489 servers send only this one
            plain = _address(value, xor=None)
        offset += 4 + size + (-size % 4)  # attributes are padded to 32 bits
    if plain is None:
        raise StunError("Binding response without a mapped address")
    return plain


def encode_address(addr: Address, transaction_id: bytes, *, xor: bool = True) -> bytes:
    """An XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) attribute, as a server sends it."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    raw = socket.inet_pton(family, addr[0])
    port = addr[1]
    if xor:
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
        port ^= MAGIC_COOKIE >> 16
    value = struct.pack("!BBH", 0, 0x01 if family == socket.AF_INET else 0x02, port) + raw
    return struct.pack("!HH", XOR_MAPPED_ADDRESS if xor else MAPPED_ADDRESS, len(value)) + value


def binding_response(transaction_id: bytes, addr: Address, *, xor: bool = True) -> bytes:
    attribute = encode_address(addr, transaction_id, xor=xor)
    return _HEADER.pack(BINDING_SUCCESS, len(attribute), MAGIC_COOKIE, transaction_id) + attribute


def _address(value: bytes, xor: bytes | None) -> Address:
    if len(value) < 4:
        raise StunError("short address attribute")
    family_code, port = struct.unpack_from("!xBH", value)
    family = _FAMILY.get(family_code)
    size = 4 if family == socket.AF_INET else 16
    if family is None or len(value) < 4 + size:
        raise StunError(f"bad address family {family_code}")
    raw = value[4:4 + size]
    if xor is not None:
        # RFC 5389 §15.2: X-Port is the port XOR'ed with the most significant 16 bits of the magic
        # cookie; the address is XOR'ed with the cookie (IPv4) or with the cookie and transaction ID
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, xor, strict=False))
    return socket.inet_ntop(family, raw), port


# ------------------------------------------------------------------ asking the server


def parse_server(text: str) -> Address:
    """HOST[:PORT] or [v6]:PORT as [net] stun_server holds it."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    host, sep, port = text.rpartition(":")
    return (host, int(port)) if sep else (text, DEFAULT_PORT)


async def query(sock: socket.socket, server: Address, waits: Sequence[float] = WAITS) -> Address:
    """The address the server saw ``sock`` at; retransmits after each wait in ``waits``.

    ``sock`` is a non-blocking datagram socket not yet handed to the event loop. It is read with
    ``sock_recv`` and written directly: uvloop has no ``sock_sendto`` or ``sock_recvfrom``."""
    loop = asyncio.get_running_loop()
    tid = new_transaction_id()
    request = binding_request(tid)
    for wait in waits:
        with contextlib.suppress(BlockingIOError):  # a full send buffer: as if the request were lost
            sock.sendto(request, server)
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 2048), left)
            except TimeoutError:
                break
            try:
                return mapped_address(data, tid)
            except StunError as exc:  # an early RTP packet, or a stale answer: keep waiting
                log.debug("not our STUN answer on %s: %s", sock.getsockname(), exc)
    raise TransportError(f"no answer from the STUN server {server[0]}:{server[1]}")


class StunSettings(Protocol):
    """The [net] keys read here (the phone passes its config's [net] section)."""

    @property
    def firewall_policy(self) -> int: ...

    @property
    def stun_server(self) -> str: ...


async def _resolve(server: Address, family: int) -> Address:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(server[0], server[1], family=family, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {server[0]}")
    host, port = infos[0][4][:2]
    return str(host), int(port)


async def prepare(ports: Sequence[object], cfg: SessionConfig, settings: StunSettings,
                  waits: Sequence[float] = WAITS) -> SessionConfig:
    """With firewall_policy=stun, ``cfg`` with the public addresses of the streams' sockets: the
    address in c=, the RTP ports in m=, the RTCP port in a=rtcp when it is not the RTP port + 1.
    Without an answer the call goes on with the local addresses (and a warning)."""
    if settings.firewall_policy != STUN_POLICY:
        return cfg
    if not settings.stun_server:
        log.warning("firewall_policy=stun without a [net] stun_server: the SDP carries the local address")
        return cfg
    pairs = [p for p in ports if isinstance(p, RtpPortPair)]
    if len(pairs) != len(ports) or len(pairs) < len(cfg.streams):
        return cfg  # ICE transports took over (firewall_policy=ice): nothing to do here
    try:
        server = await _resolve(parse_server(settings.stun_server), pairs[0].rtp.family)
        jobs = []
        for pair, stream in zip(pairs, cfg.streams, strict=False):
            jobs.append(query(pair.rtp, server, waits))
            if not stream.rtcp_mux:
                jobs.append(query(pair.rtcp, server, waits))
        # every query runs to its end (about a second at most): none may still be reading a socket
        # when the call hands it to the event loop
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    except (TransportError, OSError, ValueError) as exc:
        log.warning("STUN failed, the SDP carries the local address: %s", exc)
        return cfg
    found = iter(r for r in results if not isinstance(r, BaseException))
    streams = []
    address: str | None = None
    for stream in cfg.streams:
        rtp = next(found)
        address = address or rtp[0]
        rtcp_port = None
        if not stream.rtcp_mux:
            rtcp = next(found)
            # RFC 3605 §2.1: a=rtcp documents the RTCP port "when that port is not the next higher (odd)
            # port number following the RTP port described in the media line"
            rtcp_port = rtcp[1] if rtcp[1] != rtp[1] + 1 or rtcp[0] != rtp[0] else None
        streams.append(replace(stream, port=rtp[1], rtcp_port=rtcp_port))
    log.info("STUN: the SDP carries %s (ports %s)", address, ", ".join(str(s.port) for s in streams))
    return replace(cfg, address=address or cfg.address, streams=tuple(streams))
