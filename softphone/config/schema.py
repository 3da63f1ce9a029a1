"""The configuration's schema: frozen dataclasses and the key tables.

The value parsers are in :mod:`softphone.config.values`; the file format and the loader
are in :mod:`softphone.config`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from softphone.config.values import (
    FirewallPolicy,
    _float_in,
    _format_range,
    _format_size,
    _format_value,
    _int_in,
    _Invalid,
    _parse_algorithm,
    _parse_bool,
    _parse_device,
    _parse_dns_server,
    _parse_event_loop,
    _parse_firewall_policy,
    _parse_log_level,
    _parse_media_encryption,
    _parse_mime,
    _parse_nat_address,
    _parse_server,
    _parse_sip_address,
    _parse_text,
    parse_port_range,
    parse_size,
)
from softphone.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "softphone"  # no version: scanners fingerprint it


@dataclass(frozen=True)
class SipConfig:
    sip_port: int = 5060
    sip_tcp_port: int = 5060
    sip_tls_port: int = 0
    contact: str = "sip:softphone@localhost"
    ipv6: bool = False
    bind_address: str = ""
    auto_answer: bool = False
    auto_answer_delay_ms: int = 0
    user_agent: str = DEFAULT_USER_AGENT
    t1_ms: int = 500
    t2_ms: int = 4000
    t4_ms: int = 5000
    default_proxy: int = 0
    inc_timeout: int = 30
    in_call_timeout: int = 0
    delayed_timeout: int = 4
    keepalive_period_ms: int = 30000
    guess_hostname: bool = True
    media_encryption: str = "none"
    media_encryption_mandatory: bool = False
    root_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    verify_server_certs: bool = True
    verify_server_cn: bool = True
    auto_answer_allow: str = ""  # patterns of callers let in, separated by spaces or commas; empty = everyone
    auto_answer_deny: str = ""  # patterns of callers always refused
    require_auth: bool = False  # incoming calls must answer a digest challenge (401)
    users_file: str = ""  # the users that may authenticate: user:password or user:realm:ha1 per line
    auth_realm: str = ""  # the realm of our challenges; empty = the host of contact
    max_requests_per_second: int = 20
    request_burst: int = 50
    max_transactions: int = 10000
    max_dialogs: int = 1000


@dataclass(frozen=True)
class RtpConfig:
    audio_rtp_port: tuple[int, int] = (7078, 7078)
    video_rtp_port: tuple[int, int] = (9078, 9078)
    nortp_timeout: int = 30
    audio_jitt_comp: int = 60
    video_jitt_comp: int = 60
    rtcp_mux: bool = False
    symmetric: bool = True


@dataclass(frozen=True)
class SoundConfig:
    capture_dev_id: str = "pyaudio: default"
    playback_dev_id: str = "pyaudio: default"
    ringer_dev_id: str = ""
    ptime: int = 20
    echocancellation: bool = False
    playback_gain_db: float = 0.0
    mic_gain_db: float = 0.0
    local_ring: str = ""
    remote_ring: str = ""


@dataclass(frozen=True)
class VideoConfig:
    enabled: bool = True
    capture: bool = True
    display: bool = True
    device: str = "opencv: 0"
    display_dev: str = "opencv:"
    size: tuple[int, int] = (640, 480)
    framerate: float = 30.0
    self_view: bool = True


@dataclass(frozen=True)
class NetConfig:
    mtu: int = 1300
    upload_bw: int = 0
    download_bw: int = 0
    nat_address: str = ""
    firewall_policy: int = 0
    dns_server: str = ""  # HOST[:PORT] of the DNS server for NAPTR/SRV/A lookups; empty = the system's
    stun_server: str = ""  # HOST:PORT of the STUN server for server-reflexive ICE candidates
    turn_server: str = ""  # HOST:PORT of the TURN server for relayed ICE candidates
    turn_username: str = ""
    turn_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class MiscConfig:
    max_calls: int = 10
    log_level: str = "warning"
    json: bool = False
    event_loop: str = "auto"  # auto (uvloop when installed), asyncio or uvloop


@dataclass(frozen=True)
class ProxyConfig:
    index: int
    reg_proxy: str
    reg_identity: str
    reg_route: str | None = None
    reg_expires: int = 3600
    reg_sendregister: bool = True
    reg_instance_id: str | None = None


@dataclass(frozen=True, repr=False)
class AuthInfo:
    index: int
    username: str
    userid: str | None = None
    passwd: str | None = None
    ha1: str | None = None
    realm: str | None = None
    domain: str | None = None
    algorithm: str | None = None

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("passwd", "ha1") and value is not None:
                shown.append(f"{f.name}='***'")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"AuthInfo({', '.join(shown)})"

    __str__ = __repr__


@dataclass(frozen=True)
class CodecEntry:
    mime: str
    rate: int
    channels: int = 1
    enabled: bool = True
    recv_fmtp: str | None = None


@dataclass(frozen=True)
class Config:
    path: str | None = None
    sip: SipConfig = field(default_factory=SipConfig)
    rtp: RtpConfig = field(default_factory=RtpConfig)
    sound: SoundConfig = field(default_factory=SoundConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    net: NetConfig = field(default_factory=NetConfig)
    misc: MiscConfig = field(default_factory=MiscConfig)
    proxies: tuple[ProxyConfig, ...] = ()
    auth_infos: tuple[AuthInfo, ...] = ()
    audio_codecs: tuple[CodecEntry, ...] = ()
    video_codecs: tuple[CodecEntry, ...] = ()
    warnings: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Config:
        """A copy with whole fields replaced, e.g. ``replace(sip=new_sip)``."""
        return dataclasses.replace(self, **changes)

    def with_values(self, section: str, **values: object) -> Config:
        """A copy with keys of one section changed, e.g. ``with_values("sip", sip_port=5070)``.

        Keys are dataclass field names or file keys; strings are parsed as in the file,
        other values must have the field's type and pass the same checks.
        """
        if section not in _SECTIONS:
            raise ConfigError(None, section, None, f"unknown section, expected one of {', '.join(_SECTIONS)}")
        current = getattr(self, section)
        table = _SECTIONS[section][1]
        by_field = {spec.field: (key, spec) for key, spec in table.items()}
        changes: dict[str, object] = {}
        for name, value in values.items():
            key, spec = (name, table[name]) if name in table else by_field.get(name, (name, None))
            if spec is None:
                raise ConfigError(None, section, name, "unknown key")
            changes[spec.field] = _coerce(section, key, spec, current, value)
        return self.replace(**{section: dataclasses.replace(current, **changes)})

    @property
    def default_proxy_config(self) -> ProxyConfig | None:
        """The ``[proxy_N]`` named by ``[sip] default_proxy``, or None."""
        index = self.sip.default_proxy
        return self.proxies[index] if 0 <= index < len(self.proxies) else None


# ---------------------------------------------------------------- the key tables


@dataclass(frozen=True)
class _Key:
    """One file key: the dataclass field it fills, its parser and its formatter."""

    field: str
    parse: Callable[[str], object]
    format: Callable[[object], str] = _format_value
    required: bool = False


_PORT = _int_in(0, 65535)
_PORT_OR_RANDOM = _int_in(-1, 65535)
_NON_NEGATIVE = _int_in(0)
_POSITIVE = _int_in(1)


def _keys(**specs: _Key) -> dict[str, _Key]:
    return specs


_SIP_KEYS = _keys(
    sip_port=_Key("sip_port", _PORT_OR_RANDOM),
    sip_tcp_port=_Key("sip_tcp_port", _PORT_OR_RANDOM),
    sip_tls_port=_Key("sip_tls_port", _PORT_OR_RANDOM),
    contact=_Key("contact", _parse_sip_address),
    use_ipv6=_Key("ipv6", _parse_bool),
    bind_address=_Key("bind_address", _parse_text),
    auto_answer=_Key("auto_answer", _parse_bool),
    auto_answer_delay=_Key("auto_answer_delay_ms", _NON_NEGATIVE),
    user_agent=_Key("user_agent", _parse_text),
    T1=_Key("t1_ms", _POSITIVE),
    T2=_Key("t2_ms", _POSITIVE),
    T4=_Key("t4_ms", _POSITIVE),
    default_proxy=_Key("default_proxy", _int_in(-1)),
    inc_timeout=_Key("inc_timeout", _NON_NEGATIVE),
    in_call_timeout=_Key("in_call_timeout", _NON_NEGATIVE),
    delayed_timeout=_Key("delayed_timeout", _NON_NEGATIVE),
    keepalive_period=_Key("keepalive_period_ms", _NON_NEGATIVE),
    guess_hostname=_Key("guess_hostname", _parse_bool),
    media_encryption=_Key("media_encryption", _parse_media_encryption),
    media_encryption_mandatory=_Key("media_encryption_mandatory", _parse_bool),
    root_ca=_Key("root_ca", _parse_text),
    tls_cert=_Key("tls_cert", _parse_text),
    tls_key=_Key("tls_key", _parse_text),
    verify_server_certs=_Key("verify_server_certs", _parse_bool),
    verify_server_cn=_Key("verify_server_cn", _parse_bool),
    auto_answer_allow=_Key("auto_answer_allow", _parse_text),
    auto_answer_deny=_Key("auto_answer_deny", _parse_text),
    require_auth=_Key("require_auth", _parse_bool),
    users_file=_Key("users_file", _parse_text),
    auth_realm=_Key("auth_realm", _parse_text),
    max_requests_per_second=_Key("max_requests_per_second", _NON_NEGATIVE),
    request_burst=_Key("request_burst", _POSITIVE),
    max_transactions=_Key("max_transactions", _NON_NEGATIVE),
    max_dialogs=_Key("max_dialogs", _NON_NEGATIVE),
)
_RTP_KEYS = _keys(
    audio_rtp_port=_Key("audio_rtp_port", parse_port_range, _format_range),
    video_rtp_port=_Key("video_rtp_port", parse_port_range, _format_range),
    nortp_timeout=_Key("nortp_timeout", _NON_NEGATIVE),
    audio_jitt_comp=_Key("audio_jitt_comp", _NON_NEGATIVE),
    video_jitt_comp=_Key("video_jitt_comp", _NON_NEGATIVE),
    rtcp_mux=_Key("rtcp_mux", _parse_bool),
    symmetric=_Key("symmetric", _parse_bool),
)
_SOUND_KEYS = _keys(
    capture_dev_id=_Key("capture_dev_id", _parse_device),
    playback_dev_id=_Key("playback_dev_id", _parse_device),
    ringer_dev_id=_Key("ringer_dev_id", _parse_device),
    ptime=_Key("ptime", _int_in(10, 120)),
    echocancellation=_Key("echocancellation", _parse_bool),
    playback_gain_db=_Key("playback_gain_db", _float_in(-60.0, 60.0)),
    mic_gain_db=_Key("mic_gain_db", _float_in(-60.0, 60.0)),
    local_ring=_Key("local_ring", _parse_text),
    remote_ring=_Key("remote_ring", _parse_text),
)
_VIDEO_KEYS = _keys(
    enabled=_Key("enabled", _parse_bool),
    capture=_Key("capture", _parse_bool),
    display=_Key("display", _parse_bool),
    device=_Key("device", _parse_device),
    display_dev=_Key("display_dev", _parse_device),
    size=_Key("size", parse_size, _format_size),
    framerate=_Key("framerate", _float_in(1.0, 240.0)),
    self_view=_Key("self_view", _parse_bool),
)
_NET_KEYS = _keys(
    mtu=_Key("mtu", _int_in(200, 65535)),
    upload_bw=_Key("upload_bw", _NON_NEGATIVE),
    download_bw=_Key("download_bw", _NON_NEGATIVE),
    nat_address=_Key("nat_address", _parse_nat_address),
    firewall_policy=_Key("firewall_policy", _parse_firewall_policy),
    dns_server=_Key("dns_server", _parse_dns_server),
    stun_server=_Key("stun_server", _parse_server),
    turn_server=_Key("turn_server", _parse_server),
    turn_username=_Key("turn_username", _parse_text),
    turn_password=_Key("turn_password", _parse_text),
)
_MISC_KEYS = _keys(
    max_calls=_Key("max_calls", _POSITIVE),
    log_level=_Key("log_level", _parse_log_level),
    json=_Key("json", _parse_bool),
    event_loop=_Key("event_loop", _parse_event_loop),
)
_PROXY_KEYS = _keys(
    reg_proxy=_Key("reg_proxy", _parse_sip_address, required=True),
    reg_identity=_Key("reg_identity", _parse_sip_address, required=True),
    reg_route=_Key("reg_route", _parse_sip_address),
    reg_expires=_Key("reg_expires", _POSITIVE),
    reg_sendregister=_Key("reg_sendregister", _parse_bool),
    reg_instance_id=_Key("reg_instance_id", _parse_text),
)
_AUTH_KEYS = _keys(
    username=_Key("username", _parse_text, required=True),
    userid=_Key("userid", _parse_text),
    passwd=_Key("passwd", _parse_text),
    ha1=_Key("ha1", _parse_text),
    realm=_Key("realm", _parse_text),
    domain=_Key("domain", _parse_text),
    algorithm=_Key("algorithm", _parse_algorithm),
)
_AUDIO_CODEC_KEYS = _keys(
    mime=_Key("mime", _parse_mime, required=True),
    rate=_Key("rate", _POSITIVE, required=True),
    channels=_Key("channels", _int_in(1, 8)),
    enabled=_Key("enabled", _parse_bool),
    recv_fmtp=_Key("recv_fmtp", _parse_text),
)
_VIDEO_CODEC_KEYS = _keys(
    mime=_Key("mime", _parse_mime, required=True),
    rate=_Key("rate", _POSITIVE),
    enabled=_Key("enabled", _parse_bool),
    recv_fmtp=_Key("recv_fmtp", _parse_text),
)

# Plain sections: name -> (dataclass, keys); the name is also the Config field.
_SECTIONS: dict[str, tuple[type[Any], dict[str, _Key]]] = {
    "sip": (SipConfig, _SIP_KEYS),
    "rtp": (RtpConfig, _RTP_KEYS),
    "sound": (SoundConfig, _SOUND_KEYS),
    "video": (VideoConfig, _VIDEO_KEYS),
    "net": (NetConfig, _NET_KEYS),
    "misc": (MiscConfig, _MISC_KEYS),
}
# Numbered sections: prefix -> (Config field, dataclass, keys, fixed extra values).
_NUMBERED: dict[str, tuple[str, type[Any], dict[str, _Key], dict[str, object]]] = {
    "proxy": ("proxies", ProxyConfig, _PROXY_KEYS, {}),
    "auth_info": ("auth_infos", AuthInfo, _AUTH_KEYS, {}),
    "audio_codec": ("audio_codecs", CodecEntry, _AUDIO_CODEC_KEYS, {}),
    "video_codec": ("video_codecs", CodecEntry, _VIDEO_CODEC_KEYS, {"rate": 90000}),
}

# Other names a key is read under, as linphone or older files write them: section -> {name: key}.
ALIASES: Mapping[str, Mapping[str, str]] = {"sip": {"ipv6": "use_ipv6"}}

# linphonerc keys with no meaning for this phone, accepted without a warning ("proxy_N": [proxy_0]...).
QUIET_KEYS: Mapping[str, frozenset[str]] = {"proxy_N": frozenset({"publish"})}

# Keys documented as "not supported yet": (section, key) -> what a non-default value would need.
# Setting one to a non-default value logs one warning; the value is kept but has no effect.
NOT_SUPPORTED: Mapping[tuple[str, str], str] = {
    ("sip", "delayed_timeout"): "not supported yet: ICE candidates are waited for up to 5 s, whatever it says",
    ("sound", "echocancellation"): "echo cancellation is not supported yet: the microphone is sent as captured",
}

# Values of a key documented as "not supported yet": (section, key) -> (the values, what they would need).
NOT_SUPPORTED_VALUES: Mapping[tuple[str, str], tuple[frozenset[object], str]] = {
    ("net", "firewall_policy"): (frozenset({FirewallPolicy.UPNP}),
                                 "uPnP is not supported yet: SIP and SDP carry our own address "
                                 "(firewall_policy=stun or ice ask a STUN server for the public one)"),
}

# The keys each section accepts, as written in the file ("proxy_N" for [proxy_0]...).
SECTION_KEYS: Mapping[str, tuple[str, ...]] = {
    **{name: tuple(table) for name, (_, table) in _SECTIONS.items()},
    **{f"{prefix}_N": tuple(table) for prefix, (_, _, table, _) in _NUMBERED.items()},
}


def _coerce(section: str, key: str, spec: _Key, owner: Any, value: object) -> object:
    """Check a value given from code (a command-line override) like a file value."""
    current = getattr(owner, spec.field)
    if isinstance(value, str):
        text = value.strip()
    else:
        expected = type(current)
        same_kind = isinstance(value, expected) and isinstance(value, bool) == isinstance(current, bool)
        if not (same_kind or (expected is float and type(value) is int)):
            raise ConfigError(None, section, key, f"expected {expected.__name__}, got {value!r}")
        text = spec.format(value)
    if not text:
        return {f.name: f.default for f in dataclasses.fields(owner)}[spec.field]
    try:
        return spec.parse(text)
    except _Invalid as exc:
        raise ConfigError(None, section, key, str(exc)) from None
