"""Parsers and formatters of configuration values: numbers, booleans, ports and ranges,
sizes, devices, addresses, names; each raises ``_Invalid`` with the reason, which the
loader reports with the file, section and key."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from enum import IntEnum

from softphone.devices.registry import from_linphone

VIDEO_SIZES: Mapping[str, tuple[int, int]] = {
    "sqcif": (128, 96),
    "qcif": (176, 144),
    "qvga": (320, 240),
    "cif": (352, 288),
    "vga": (640, 480),
    "4cif": (704, 576),
    "svga": (800, 600),
    "xga": (1024, 768),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
MEDIA_ENCRYPTIONS = ("none", "srtp", "zrtp", "dtls")
DIGEST_ALGORITHMS = ("MD5", "SHA-256")


class _Invalid(ValueError):
    """A value that does not parse; the message says what was expected."""


_DECIMAL = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_DEVICE = re.compile(r"[A-Za-z0-9_.-]+:.*")
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_ADDR_SPEC = re.compile(r"sips?:\S+", re.IGNORECASE)
_NAME_ADDR = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^<>"]*?)\s*<sips?:[^<>\s]+>(?:;\S*)?', re.IGNORECASE)


def _parse_int(text: str) -> int:
    if _DECIMAL.fullmatch(text):
        return int(text, 10)
    if _HEX.fullmatch(text):
        return int(text, 16)
    raise _Invalid(f"expected an integer, got {text!r}")


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    bounds = f"{low}..{high}" if high is not None else f">= {low}"

    def parse(text: str) -> int:
        try:
            value = _parse_int(text)
        except _Invalid:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise _Invalid(f"expected an integer {bounds}, got {text!r}")
        return value

    return parse


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Invalid(f"expected a boolean (0/1, true/false, yes/no, on/off), got {text!r}")


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise _Invalid(f"expected a number {low:g}..{high:g}, got {text!r}")
        return value

    return parse


def parse_port_range(text: str) -> tuple[int, int]:
    """``"10000-20000"`` -> (10000, 20000); ``"7078"`` -> (7078, 7078); 0 = any free port."""
    message = f"expected a port 0..65535 or a range like 10000-20000, got {text!r}"
    low_text, dash, high_text = text.strip().partition("-")
    try:
        low = _parse_int(low_text.strip())
        high = _parse_int(high_text.strip()) if dash else low
    except _Invalid:
        raise _Invalid(message) from None
    if not 0 <= low <= high <= 65535 or (dash and low == 0):
        raise _Invalid(message)
    return (low, high)


def parse_size(text: str) -> tuple[int, int]:
    """A video size: a linphone name (``"vga"``, ``"720p"``) or ``"640x480"``."""
    name = text.strip().lower()
    if name in VIDEO_SIZES:
        return VIDEO_SIZES[name]
    match = re.fullmatch(r"([0-9]+)\s*x\s*([0-9]+)", name)
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if 16 <= width <= 8192 and 16 <= height <= 8192:
            return (width, height)
    raise _Invalid(f"expected a video size ({', '.join(VIDEO_SIZES)}) or WIDTHxHEIGHT, got {text!r}")


def _parse_text(text: str) -> str:
    return text


def _parse_device(text: str) -> str:
    text = from_linphone(text)
    if not _DEVICE.fullmatch(text):
        raise _Invalid(f"expected 'driver: device' (e.g. 'pyaudio: default', 'null:'), got {text!r}")
    return text


def _parse_sip_address(text: str) -> str:
    if not (_ADDR_SPEC.fullmatch(text) or _NAME_ADDR.fullmatch(text)):
        raise _Invalid(f"expected a SIP address like sip:user@host or \"Name\" <sip:user@host>, got {text!r}")
    return text


def _parse_mime(text: str) -> str:
    if not _MIME.fullmatch(text):
        raise _Invalid(f"expected a codec name like PCMU or opus, got {text!r}")
    return text


def _parse_log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise _Invalid(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.lower()


def _parse_event_loop(text: str) -> str:
    if text.lower() not in EVENT_LOOPS:
        raise _Invalid(f"expected one of {', '.join(EVENT_LOOPS)}, got {text!r}")
    return text.lower()


def _parse_algorithm(text: str) -> str:
    if text.upper() not in DIGEST_ALGORITHMS:
        raise _Invalid(f"expected one of {', '.join(DIGEST_ALGORITHMS)}, got {text!r}")
    return text.upper()


def _parse_media_encryption(text: str) -> str:
    if text.lower() not in MEDIA_ENCRYPTIONS:
        raise _Invalid(f"expected one of {', '.join(MEDIA_ENCRYPTIONS)}, got {text!r}")
    return text.lower()


def _parse_nat_address(text: str) -> str:  # an IP address or a host name; no port: the phone's own are kept
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    name = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
    if ":" not in host and not re.fullmatch(r"[0-9.]+", host) and re.fullmatch(name, host):
        return host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise _Invalid(f"expected an IP address or a host name (without a port), got {text!r}") from None


def split_dns_server(text: str) -> tuple[str, int]:
    """``[net] dns_server``: an IP address with an optional port (``[v6]:port`` for IPv6)."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "x")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _Invalid(f"expected an IP address with an optional port (HOST[:PORT]), got {text!r}") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _Invalid(f"expected a port from 1 to 65535 after the address, got {text!r}")
    return str(address), int(port)


STUN_PORT = 3478  # RFC 8489 §9: "the default port for STUN requests is 3478, for both TCP and UDP"


def split_server(text: str, default_port: int = STUN_PORT) -> tuple[str, int]:
    """``[net] stun_server`` / ``turn_server``: HOST[:PORT], HOST an IP address (``[v6]:port``) or a name."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (str(default_port) if not rest else "x")
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _Invalid(f"expected HOST[:PORT] with a port from 1 to 65535, got {text!r}")
    try:
        host = _parse_nat_address(host)
    except _Invalid:
        raise _Invalid(f"expected HOST[:PORT] with HOST an IP address or a host name, got {text!r}") from None
    return host, int(port)


def _parse_server(text: str) -> str:
    if not text:
        return ""
    host, port = split_server(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_dns_server(text: str) -> str:
    if not text:
        return ""
    host, port = split_dns_server(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class FirewallPolicy(IntEnum):  # [net] firewall_policy, linphone's numbers
    NONE = 0
    NAT_ADDRESS = 1
    STUN = 2
    ICE = 3
    UPNP = 4


def _parse_firewall_policy(text: str) -> int:  # linphone writes the number; the names are accepted too
    values = {**{p.name.lower(): int(p) for p in FirewallPolicy}, **{str(int(p)): int(p) for p in FirewallPolicy}}
    if text.lower() not in values:
        raise _Invalid(f"expected 0 (none), 1 (nat_address), 2 (stun), 3 (ice) or 4 (upnp), got {text!r}")
    return values[text.lower()]


# ---------------------------------------------------------------- value formatters


def _format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _format_range(value: object) -> str:
    assert isinstance(value, tuple)
    low, high = value
    return f"{low}" if low == high else f"{low}-{high}"


def _format_size(value: object) -> str:
    assert isinstance(value, tuple)
    width, height = value
    return f"{width}x{height}"
