"""SDES key exchange in SDP (RFC 4568): the a=crypto attribute and the choice of a suite.

    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4

Pure: the keys themselves come from the caller (the phone draws them from the system's
random source), so offers and answers stay reproducible in tests.
"""

from __future__ import annotations

import base64
import binascii
import re

from softphone.errors import SdpError
from softphone.frozen import dataclass

# suite name -> (master key length, master salt length) in bytes
# RFC 4568 §6.2.1 (AES_CM_128_HMAC_SHA1_80 and _32: 128-bit key, 112-bit salt);
# RFC 7714 §12 (AEAD_AES_128_GCM: 128-bit key, 96-bit salt).
SUITES: dict[str, tuple[int, int]] = {
    "AEAD_AES_128_GCM": (16, 12),
    "AES_CM_128_HMAC_SHA1_80": (16, 14),
    "AES_CM_128_HMAC_SHA1_32": (16, 14),
}
PREFERENCE = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

_TAG = re.compile(r"[0-9]{1,10}")
_SUITE = re.compile(r"[A-Za-z0-9_]+")
_LIFETIME = re.compile(r"(2\^[0-9]{1,2}|[0-9]{1,20})")
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")


@dataclass(frozen=True)
class KeyParams:
    """One ``inline:<key||salt>[|lifetime][|MKI:length]`` key (RFC 4568 §6.1)."""

    key_salt: bytes
    lifetime: str | None = None
    mki: tuple[int, int] | None = None  # (value, length in bytes)

    @classmethod
    def parse(cls, text: str) -> KeyParams:
        method, sep, info = text.partition(":")
        if method != "inline" or not sep:
            raise SdpError(f"a=crypto key method must be inline, got {text!r}")
        key_text, *rest = info.split("|")
        try:
            key_salt = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            raise SdpError(f"a=crypto key is not base64: {key_text!r}") from None
        lifetime: str | None = None
        mki: tuple[int, int] | None = None
        for part in rest:
            if mki is None and _MKI.fullmatch(part):
                value, length = part.split(":")
                if not 1 <= int(length) <= 128:
                    raise SdpError(f"a=crypto MKI length {length} is out of range")
                mki = (int(value), int(length))
            elif lifetime is None and mki is None and _LIFETIME.fullmatch(part):
                lifetime = part
            else:
                raise SdpError(f"a=crypto key parameter {part!r} is neither a lifetime nor an MKI")
        return cls(key_salt, lifetime, mki)

    def __str__(self) -> str:
        text = "inline:" + base64.b64encode(self.key_salt).decode("ascii")
        if self.lifetime is not None:
            text += f"|{self.lifetime}"
        if self.mki is not None:
            text += f"|{self.mki[0]}:{self.mki[1]}"
        return text


@dataclass(frozen=True)
class CryptoAttribute:
    """``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §9.1)."""

    tag: int
    suite: str
    keys: tuple[KeyParams, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        parts = value.split()
        if len(parts) < 3:
            raise SdpError(f"a=crypto needs <tag> <crypto-suite> <key-params>, got {value!r}")
        tag, suite, key_text, *session = parts
        if not _TAG.fullmatch(tag):
            raise SdpError(f"a=crypto tag {tag!r} is not a number of 1 to 9 digits")
        if not _SUITE.fullmatch(suite):
            raise SdpError(f"a=crypto suite {suite!r} is malformed")
        keys = tuple(KeyParams.parse(k) for k in key_text.split(";"))
        return cls(int(tag), suite, keys, tuple(session))

    @classmethod
    def make(cls, tag: int, suite: str, key_salt: bytes) -> CryptoAttribute:
        """Ours: one key without lifetime or MKI, checked against the suite's lengths."""
        key_len, salt_len = SUITES[suite]
        if len(key_salt) != key_len + salt_len:
            raise ValueError(f"{suite} needs {key_len + salt_len} bytes of key and salt, got {len(key_salt)}")
        return cls(tag, suite, (KeyParams(key_salt),))

    @property
    def key_salt(self) -> bytes:
        return self.keys[0].key_salt

    def usable(self) -> str | None:
        """Why this line cannot be used here (None: it can)."""
        if self.suite not in SUITES:
            return f"unsupported crypto suite {self.suite}"
        key_len, salt_len = SUITES[self.suite]
        if len(self.keys) != 1:
            return "several master keys (MKI) are not supported"
        if self.keys[0].mki is not None:
            return "MKI is not supported"
        if len(self.key_salt) != key_len + salt_len:
            return f"{self.suite} key and salt must be {key_len + salt_len} bytes, got {len(self.key_salt)}"
        if self.session_params:
            return f"session parameters are not supported: {' '.join(self.session_params)}"
        return None

    def __str__(self) -> str:
        text = f"{self.tag} {self.suite} {';'.join(str(k) for k in self.keys)}"
        return " ".join((text, *self.session_params))


@dataclass(frozen=True)
class SrtpKeys:
    """The outcome of an SDES exchange for one stream: one suite, our key and the peer's."""

    suite: str
    local_key: bytes  # key||salt we protect with
    remote_key: bytes  # key||salt the peer protects with

    def __repr__(self) -> str:  # keys never reach logs
        return f"SrtpKeys(suite={self.suite!r})"


def parse_crypto_lines(values: list[str]) -> list[CryptoAttribute]:
    """Every a=crypto value of an m-line; a malformed one is an SdpError."""
    return [CryptoAttribute.parse(v) for v in values]


def choose_offered(
    offered: list[CryptoAttribute], ours: tuple[CryptoAttribute, ...]
) -> tuple[CryptoAttribute, CryptoAttribute] | None:
    """Answerer: the first line of the offer whose suite we have a key for, and our answer line.

    RFC 4568 §7.1.2: the answerer "MUST select at most one of the offered crypto attributes"
    and "the answered crypto attribute MUST contain the same tag value as the offered crypto
    attribute".
    """
    by_suite = {c.suite: c for c in ours}
    for line in offered:
        mine = by_suite.get(line.suite)
        if mine is not None and line.usable() is None:
            return line, CryptoAttribute(line.tag, line.suite, mine.keys)
    return None


def match_answer(answered: list[CryptoAttribute], offered: tuple[CryptoAttribute, ...]) -> SrtpKeys:
    """Offerer: the keys from the answer's crypto line, which must answer one of ours."""
    if len(answered) != 1:
        # RFC 4568 §7.1.2: "the answerer MUST select at most one of the offered crypto attributes"
        raise SdpError(f"the answer must have exactly one a=crypto line, got {len(answered)}")
    line = answered[0]
    ours = next((c for c in offered if c.tag == line.tag), None)
    if ours is None or ours.suite != line.suite:
        raise SdpError(f"a=crypto:{line.tag} {line.suite} in the answer answers no crypto line of the offer")
    why = line.usable()
    if why is not None:
        raise SdpError(f"a=crypto:{line.tag} in the answer: {why}")
    return SrtpKeys(line.suite, ours.key_salt, line.key_salt)


def is_secure_profile(proto: str) -> bool:
    """RTP/SAVP and RTP/SAVPF (RFC 3711 §12, RFC 5124): SRTP is required on the m-line."""
    return proto.upper() in ("RTP/SAVP", "RTP/SAVPF")


def offer_profile(proto: str, crypto: tuple[CryptoAttribute, ...], mandatory: bool) -> str:
    """RTP/SAVP when SRTP is mandatory; otherwise the plain profile, with crypto lines as a
    best-effort offer that a peer without SRTP ignores (as linphone, baresip and pjsua do)."""
    if crypto and mandatory:
        return proto.replace("RTP/AVP", "RTP/SAVP")
    return proto


def answer_crypto(
    offered_values: list[str], proto: str, ours: tuple[CryptoAttribute, ...], mandatory: bool
) -> tuple[CryptoAttribute | None, SrtpKeys | None] | str:
    """Answerer: our a=crypto line and the stream's keys (both None: plain RTP), or why the
    m-line must be declined. A malformed crypto line is an SdpError."""
    offered = parse_crypto_lines(offered_values)
    chosen = choose_offered(offered, ours) if ours else None
    if chosen is not None:
        theirs, answer = chosen
        return answer, SrtpKeys(theirs.suite, answer.key_salt, theirs.key_salt)
    if is_secure_profile(proto):
        if not ours:
            return f"{proto} needs SRTP, and media_encryption is not srtp here"
        suites = " ".join(c.suite for c in offered) or "no a=crypto line"
        return f"{proto} with no usable crypto suite (offered {suites})"
    if mandatory:
        return "no usable a=crypto line, and media_encryption_mandatory is set here"
    return None, None


def answer_keys(offer_values: list[str], offer_proto: str, answer_values: list[str]) -> SrtpKeys | None:
    """Offerer: the keys of an answered m-line, None for plain RTP; SdpError when the answer
    leaves out crypto that our profile made mandatory."""
    offered = tuple(parse_crypto_lines(offer_values))
    if not offered:
        return None
    if not answer_values:
        if is_secure_profile(offer_proto):
            raise SdpError(f"the answer has no a=crypto line for our {offer_proto} offer")
        return None
    return match_answer(parse_crypto_lines(answer_values), offered)
