"""Files that hold secrets: the permission check of a configuration or users file, and
the users file of ``[sip] require_auth`` read into the verifier of incoming calls."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from softphone.config.schema import Config
from softphone.errors import ConfigError
from softphone.sip.challenge import DigestVerifier, UserSecret, UsersFileError, parse_users
from softphone.sip.headers import NameAddress

log = logging.getLogger(__name__)


def holds_password(config: Config) -> bool:
    """Whether the configuration itself holds a password or an ha1."""
    return bool(config.net.turn_password) or any(a.passwd or a.ha1 for a in config.auth_infos)


def exposure_warning(path: str, what: str) -> str | None:
    """A one-line warning when ``path`` (which holds ``what``) is readable by its group or
    by others; None when it is private or cannot be examined."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        who = "others" if mode & stat.S_IROTH else "its group"
        return f"{path}: holds {what} and is readable by {who} (chmod 600 it)"
    return None


def resolve(config: Config, name: str) -> str:
    """A file named in the configuration: relative names are relative to the config file's directory."""
    if os.path.isabs(name) or not config.path or config.path.startswith("<"):
        return name
    return os.path.join(os.path.dirname(config.path), name)


def auth_realm(config: Config) -> str:
    """[sip] auth_realm, else the host of [sip] contact."""
    if config.sip.auth_realm:
        return config.sip.auth_realm
    try:
        return NameAddress.parse(config.sip.contact).uri.as_sip().host
    except ValueError:
        return "softphone"


def load_users(config: Config) -> dict[str, UserSecret]:
    """The users of [sip] users_file; a missing or malformed file is a ConfigError (which never quotes a secret)."""
    path = resolve(config, config.sip.users_file)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(config.path, "sip", "users_file", f"cannot read {path}: {reason}") from None
    try:
        users = parse_users(text)
    except UsersFileError as exc:
        raise ConfigError(config.path, "sip", "users_file", f"{path}: {exc}") from None
    if not users:
        raise ConfigError(config.path, "sip", "users_file", f"{path}: no users")
    warning = exposure_warning(path, "passwords")
    if warning is not None:
        log.warning("%s", warning)
    return users


def split_patterns(text: str) -> tuple[str, ...]:
    """The caller patterns of [sip] auto_answer_allow / auto_answer_deny: separated by spaces or commas."""
    return tuple(p for p in text.replace(",", " ").split() if p)


def verifier_for(config: Config) -> DigestVerifier | None:
    """The digest verifier of incoming calls when [sip] require_auth=1, else None."""
    if not config.sip.require_auth:
        return None
    return DigestVerifier(auth_realm(config), load_users(config))
