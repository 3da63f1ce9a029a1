"""The configuration: a linphonerc-style INI file read into frozen dataclasses.

The file follows linphone's lpconfig rules: ``[section]`` headers; ``key=value`` lines
with the whitespace around ``=`` and at both ends of the value trimmed; only whole
lines whose first non-blank character is ``#`` are comments (a ``#`` later in a line
belongs to the value); blank lines are ignored; a later duplicate key overrides an
earlier one and an empty value means "unset" (the default applies); values are never
unquoted. Numbered sections (``[proxy_0]``, ``[auth_info_0]``, ``[audio_codec_0]``,
``[video_codec_0]``) are read from index 0 up to the first missing index.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softphone.config.schema import (
    _NUMBERED,
    _SECTIONS,
    ALIASES,
    DEFAULT_USER_AGENT,
    NOT_SUPPORTED,
    NOT_SUPPORTED_VALUES,
    QUIET_KEYS,
    SECTION_KEYS,
    AuthInfo,
    CodecEntry,
    Config,
    MiscConfig,
    NetConfig,
    ProxyConfig,
    RtpConfig,
    SipConfig,
    SoundConfig,
    VideoConfig,
    _Key,
)
from softphone.config.values import (
    DIGEST_ALGORITHMS,
    LOG_LEVELS,
    MEDIA_ENCRYPTIONS,
    VIDEO_SIZES,
    _Invalid,
    parse_port_range,
    parse_size,
)
from softphone.errors import ConfigError

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- reading


@dataclass
class _Raw:
    """A file split into sections of raw string values, with line numbers."""

    path: str | None
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unknown: dict[str, list[str]] = field(default_factory=dict)  # section -> unknown keys ([] = whole section)

    def warn(self, section: str | None, key: str | None, message: str) -> None:
        text = str(ConfigError(self.path, section, key, message))
        logger.warning("%s", text)
        self.warnings.append(text)

    def invalid(self, section: str, key: str, message: str) -> ConfigError:
        line = self.lines.get((section, key))
        suffix = f" (line {line})" if line is not None else ""
        return ConfigError(self.path, section, key, message + suffix)


def _split(text: str, path: str | None) -> _Raw:
    raw = _Raw(path)
    section: str | None = None
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]") and re.fullmatch(r"\S+", stripped[1:-1].strip()):
            section = stripped[1:-1].strip()
            raw.sections.setdefault(section, {})
            continue
        key, equals, value = stripped.partition("=")
        key = key.strip()
        if not equals or not re.fullmatch(r"[^\s\[\]]+", key):
            message = f"line {number}: expected '[section]', 'key=value' or a '#' comment, got {stripped!r}"
            raise ConfigError(path, section, None, message)
        if section is None:
            raw.warn(None, key, f"line {number}: key outside any section, ignored")
            continue
        raw.sections[section][key] = value.strip()
        raw.lines[(section, key)] = number
    return raw


def _read_section(raw: _Raw, name: str, table: dict[str, _Key], kind: str | None = None) -> dict[str, object]:
    """The values of section ``name``; ``kind`` is its entry in ALIASES / QUIET_KEYS (``proxy_N``)."""
    kind = kind or name
    aliases, quiet = ALIASES.get(kind, {}), QUIET_KEYS.get(kind, frozenset())
    values: dict[str, object] = {}
    for key, text in raw.sections.get(name, {}).items():
        spec = table.get(key) or table.get(aliases.get(key, ""))
        if spec is None:
            if key not in quiet:
                raw.unknown.setdefault(name, []).append(key)
        elif text:
            try:
                values[spec.field] = spec.parse(text)
            except _Invalid as exc:
                raise raw.invalid(name, key, str(exc)) from None
    for key, spec in table.items():
        if spec.required and spec.field not in values:
            raise ConfigError(raw.path, name, key, f"missing: every [{name.rsplit('_', 1)[0]}_N] needs {key}")
    return values


def _read_numbered(raw: _Raw, prefix: str) -> tuple[Any, ...]:
    _, cls, table, extra = _NUMBERED[prefix]
    numbered = "index" in {f.name for f in dataclasses.fields(cls)}
    entries = []
    index = 0
    while f"{prefix}_{index}" in raw.sections:
        values = {**extra, **_read_section(raw, f"{prefix}_{index}", table, f"{prefix}_N")}
        if numbered:
            values["index"] = index
        entries.append(cls(**values))
        index += 1
    pattern = re.compile(rf"{prefix}_[0-9]+")
    for name in raw.sections:
        if pattern.fullmatch(name) and name not in {f"{prefix}_{i}" for i in range(index)}:
            raw.warn(name, None, f"unused section: numbering stops at the first missing index ([{prefix}_{index}])")
    return tuple(entries)


def _report_unknown(raw: _Raw) -> None:
    """Every unknown key and section in one warning line (a real linphonerc has many)."""
    if not raw.unknown:
        return
    parts = [f"[{name}] {', '.join(keys) if keys else '(whole section)'}" for name, keys in raw.unknown.items()]
    raw.warn(None, None, f"ignored unknown keys: {'; '.join(parts)}")


def _check_unsupported(raw: _Raw, sections: Mapping[str, Any]) -> None:
    """One warning for each "not supported yet" key set to a non-default value; SRTP made
    mandatory is refused, since calls would go in the clear."""
    for (name, key), what in NOT_SUPPORTED.items():
        spec = _SECTIONS[name][1][key]
        values = sections[name]
        default = {f.name: f.default for f in dataclasses.fields(values)}[spec.field]
        if getattr(values, spec.field) != default:
            raw.warn(name, key, f"{what} (set to {spec.format(getattr(values, spec.field))!r})")
    for (name, key), (unsupported, what) in NOT_SUPPORTED_VALUES.items():
        spec = _SECTIONS[name][1][key]
        value = getattr(sections[name], spec.field)
        if value in unsupported:
            raw.warn(name, key, f"{what} (set to {spec.format(value)!r})")
    net: NetConfig = sections["net"]
    if net.firewall_policy == 1 and not net.nat_address:
        raise raw.invalid("net", "nat_address", "firewall_policy=nat_address (1) needs a nat_address to advertise")
    if net.firewall_policy == 2 and not net.stun_server:
        raise raw.invalid("net", "stun_server", "firewall_policy=stun (2) needs a stun_server to ask")
    if net.turn_server and not (net.turn_username and net.turn_password):
        key = "turn_password" if net.turn_username else "turn_username"
        raise raw.invalid("net", key, "turn_server needs turn_username and turn_password (long-term credentials)")
    sip: SipConfig = sections["sip"]
    if sip.media_encryption not in ("none", "srtp"):  # srtp: SDES keys (RFC 4568); zrtp and dtls are not done
        if sip.media_encryption_mandatory:
            message = (f"media_encryption={sip.media_encryption} with media_encryption_mandatory=1: "
                       f"{sip.media_encryption} is not supported yet and calls would go in the clear; use srtp or none")
            raise raw.invalid("sip", "media_encryption", message)
        raw.warn("sip", "media_encryption", f"{sip.media_encryption} is not supported yet: calls go in the clear")


def _check(raw: _Raw, sip: SipConfig, proxies: tuple[ProxyConfig, ...]) -> None:
    if sip.t2_ms < sip.t1_ms:
        raise raw.invalid("sip", "T2", f"expected T2 >= T1 ({sip.t1_ms} ms), got {sip.t2_ms}")
    if proxies and sip.default_proxy >= len(proxies):
        message = f"expected -1 or a [proxy_N] index 0..{len(proxies) - 1}, got {sip.default_proxy}"
        raise raw.invalid("sip", "default_proxy", message)
    if sip.require_auth and not sip.users_file:
        raise raw.invalid("sip", "require_auth", "require_auth=1 needs a users_file to check callers against")


def loads(text: str, path: str | None = "<string>") -> Config:
    """Parse the text of a configuration file; ``path`` names it in messages."""
    raw = _split(text, path)
    sections = {name: cls(**_read_section(raw, name, table)) for name, (cls, table) in _SECTIONS.items()}
    numbered: dict[str, Any] = {_NUMBERED[prefix][0]: _read_numbered(raw, prefix) for prefix in _NUMBERED}
    for name in raw.sections:
        known = name in _SECTIONS or any(re.fullmatch(rf"{p}_[0-9]+", name) for p in _NUMBERED)
        if not known:
            raw.unknown[name] = []
    _report_unknown(raw)
    _check(raw, sections["sip"], numbered["proxies"])
    _check_unsupported(raw, sections)
    return Config(path=path, **sections, **numbered, warnings=tuple(raw.warnings))


def load(path: str | os.PathLike[str]) -> Config:
    """Read a configuration file; a missing or unreadable file is a ConfigError."""
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(name, None, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, None, None, f"cannot read: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    config = loads(text, name)
    from softphone.config.private import exposure_warning, holds_password

    warning = exposure_warning(name, "a password") if holds_password(config) else None
    if warning is not None:  # about the file, not its content: logged, not among config.warnings
        logger.warning("%s", warning)
    return config


def default_config() -> Config:
    """The built-in defaults, as if an empty file had been read."""
    return Config()


def default_config_path(environ: Mapping[str, str] = os.environ) -> str | None:
    """``$SOFTPHONE_CONFIG``, else ``~/.config/softphone/softphonerc`` if it exists, else None."""
    explicit = environ.get("SOFTPHONE_CONFIG")
    if explicit:
        return explicit
    home = environ.get("HOME")
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else None
    if base is None:
        base = (Path(home) if home else Path.home()) / ".config"
    candidate = base / "softphone" / "softphonerc"
    return str(candidate) if candidate.is_file() else None


def dumps(config: Config) -> str:
    """Write a configuration as file text that ``loads`` reads back to equal values."""
    blocks = []
    for name, (_, table) in _SECTIONS.items():
        blocks.append(_dump_section(name, getattr(config, name), table))
    for prefix, (attribute, _, table, _) in _NUMBERED.items():
        for index, entry in enumerate(getattr(config, attribute)):
            blocks.append(_dump_section(f"{prefix}_{index}", entry, table))
    return "\n".join(blocks)


def _dump_section(name: str, values: object, table: dict[str, _Key]) -> str:
    lines = [f"[{name}]"]
    for key, spec in table.items():
        text = spec.format(getattr(values, spec.field))
        if text:
            lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


__all__ = [
    "DEFAULT_USER_AGENT",
    "DIGEST_ALGORITHMS",
    "LOG_LEVELS",
    "MEDIA_ENCRYPTIONS",
    "NOT_SUPPORTED",
    "NOT_SUPPORTED_VALUES",
    "SECTION_KEYS",
    "VIDEO_SIZES",
    "AuthInfo",
    "CodecEntry",
    "Config",
    "MiscConfig",
    "NetConfig",
    "ProxyConfig",
    "RtpConfig",
    "SipConfig",
    "SoundConfig",
    "VideoConfig",
    "default_config",
    "default_config_path",
    "dumps",
    "load",
    "loads",
    "parse_port_range",
    "parse_size",
]
