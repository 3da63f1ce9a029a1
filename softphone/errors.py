"""Errors that carry their consequence: an exit code, or the SIP answer they cause."""

from __future__ import annotations


class SoftphoneError(Exception):
    """Base of every error the user may see; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(SoftphoneError):
    """A mistake on the command line."""

    exit_code = 2


class ConfigError(SoftphoneError):
    """A bad configuration value, naming file, section and key."""

    exit_code = 2

    def __init__(self, path: str | None, section: str | None, key: str | None, message: str) -> None:
        self.path = path
        self.section = section
        self.key = key
        self.message = message
        where = []
        if path:
            where.append(str(path))
        if section:
            where.append(f"[{section}]")
        if key:
            where.append(key)
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TransportError(SoftphoneError):
    """A socket could not be opened or a destination could not be reached."""

    exit_code = 3


class CallFailed(SoftphoneError):
    """The call ended with a SIP failure response."""

    exit_code = 4

    def __init__(self, status: int, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"call failed: {status} {reason}".rstrip())


class AuthenticationFailed(SoftphoneError):
    """Credentials were rejected."""

    exit_code = 5


class NoResponse(SoftphoneError):
    """The peer never answered (a transaction timed out)."""

    exit_code = 6


class ParseError(ValueError):
    """A malformed SIP message; answered 400 when the sender can still be addressed.

    ``partial`` carries what could still be read (the message layer puts the parsed
    header section there) so that the endpoint can address a 400 response.
    """

    status = 400

    def __init__(self, message: str, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class SdpError(ValueError):
    """An SDP we cannot parse or accept; answered 488 Not Acceptable Here."""

    status = 488


class StateError(RuntimeError):
    """An input that the state machine's table does not allow in the current state."""

    def __init__(self, machine: str, state: object, event: object) -> None:
        self.machine = machine
        self.state = state
        self.event = event
        super().__init__(f"{machine}: {event!s} is not allowed in state {state!s}")
