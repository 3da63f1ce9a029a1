"""SIP over TLS (RFC 3261 §26.2, RFC 5630, RFC 5922): the ssl contexts and what a failed
handshake means to the user.

The client side verifies the server's certificate against the system store, or against
``[sip] root_ca`` (a PEM file or a directory of hashed certificates), and checks its name
against the SIP domain of the URI, not against the address it resolved to (RFC 5922 §7.2:
"the client MUST use the domain of the URI as the identity"). ``[sip] tls_cert`` and
``[sip] tls_key`` are our certificate: the server's for the TLS listener, and the client
certificate offered when a server asks for one.
"""

from __future__ import annotations

import logging
import os
import ssl

from softphone.errors import ConfigError
from softphone.frozen import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsSettings:
    """The ``[sip]`` keys of TLS, as the phone's config holds them."""

    root_ca: str = ""  # a PEM file or a directory; "" = the system's trusted certificates
    cert: str = ""  # our certificate chain (PEM)
    key: str = ""  # its private key (PEM)
    verify_server_certs: bool = True
    verify_server_cn: bool = True
    source: str | None = None  # the config file, for error messages


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context of our outgoing TLS connections."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.root_ca:
        _load_verify(context, settings, "root_ca")
    # RFC 5922 §7.2: the identity is the domain of the URI; asyncio passes it as server_hostname
    context.check_hostname = settings.verify_server_certs and settings.verify_server_cn
    if not settings.verify_server_certs:
        log.warning("TLS: server certificates are not verified ([sip] verify_server_certs=0)")
        context.verify_mode = ssl.CERT_NONE
    if settings.cert or settings.key:
        _load_chain(context, settings)
    return context


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context of our TLS listener: it needs our certificate and key. With ``root_ca``
    set, a client that offers a certificate must present one signed by it."""
    if not settings.cert or not settings.key:
        missing = "tls_cert" if not settings.cert else "tls_key"
        raise ConfigError(settings.source, "sip", missing,
                          "a TLS listener (sip_tls_port) needs our certificate: set tls_cert and tls_key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(context, settings)
    if settings.root_ca:
        _load_verify(context, settings, "root_ca")
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _load_verify(context: ssl.SSLContext, settings: TlsSettings, key: str) -> None:
    path = settings.root_ca
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        message = f"cannot load CA certificates from {path}: {_reason(exc)}"
        raise ConfigError(settings.source, "sip", key, message) from None


def _load_chain(context: ssl.SSLContext, settings: TlsSettings) -> None:
    if not settings.cert or not settings.key:
        missing = "tls_cert" if not settings.cert else "tls_key"
        raise ConfigError(settings.source, "sip", missing, "tls_cert and tls_key go together: set both")
    for key, path in (("tls_cert", settings.cert), ("tls_key", settings.key)):
        if not os.path.isfile(path):
            raise ConfigError(settings.source, "sip", key, f"no such file: {path}")
    try:
        context.load_cert_chain(settings.cert, settings.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(settings.source, "sip", "tls_cert",
                          f"cannot load {settings.cert} with key {settings.key}: {_reason(exc)}") from None


def failure(exc: BaseException, host: str, port: int) -> str:
    """One line for a TLS connection that could not be set up:
    ``TLS: certificate verify failed for example.test: <reason>``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed for {host}: {exc.verify_message or _reason(exc)}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: handshake with {host}:{port} failed: {_reason(exc)}"
    if isinstance(exc, TimeoutError):
        return f"TLS: no connection to {host}:{port} within the time limit"
    return f"TLS: cannot connect to {host}:{port}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
