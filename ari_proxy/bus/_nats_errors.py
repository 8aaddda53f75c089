"""nats-py's exceptions, translated into ari-proxy's tree in this one place.

Every class that `nats.errors` defines has a row in `NATS_ERRORS` (a test enforces it), so a
new nats-py error cannot leak out of the transport untranslated without a test failing first.
"""

from __future__ import annotations

import asyncio

import nats.errors as nats_errors

from .._exceptions import (
    AriProxyError,
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    NoProxyError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)

__all__ = [
    "AUTH_FAILURE",
    "NATS_ERRORS",
    "NATS_LINK_ERRORS",
    "NATS_RETRYABLE_ERRORS",
    "is_auth_failure",
    "translate_nats_error",
]

NATS_ERRORS: dict[type[BaseException], type[AriProxyError]] = {
    nats_errors.Error: TransportError,
    # Requests.
    nats_errors.TimeoutError: RequestTimeout,
    nats_errors.NoRespondersError: NoProxyError,
    # The link.
    nats_errors.StaleConnectionError: TransportError,
    nats_errors.UnexpectedEOF: TransportError,
    nats_errors.OutboundBufferLimitError: TransportError,
    nats_errors.FlushTimeoutError: TransportError,  # the link stalled, not a missing answer
    nats_errors.ConnectionClosedError: ClientClosedError,  # see translate_nats_error
    nats_errors.ConnectionDrainingError: ClientClosedError,  # we drain only in close()
    nats_errors.ConnectionReconnectingError: TransportError,
    nats_errors.DrainTimeoutError: TransportError,
    nats_errors.SlowConsumerError: TransportError,
    nats_errors.MaxPayloadError: TransportError,
    nats_errors.ProtocolError: TransportError,  # NATS's own protocol, not ari-proxy's contract
    # Connecting.
    nats_errors.NoServersError: ConnectError,
    nats_errors.AuthorizationError: AuthenticationError,
    nats_errors.InvalidUserCredentialsError: ConnectError,
    nats_errors.SecureConnRequiredError: ConnectError,
    nats_errors.SecureConnWantedError: ConnectError,
    nats_errors.SecureConnFailedError: ConnectError,
    nats_errors.ServerNotInPoolError: ConnectError,
    # Bad input: a subject, header or JSON that breaks the contract.
    nats_errors.BadSubjectError: ProtocolError,
    nats_errors.BadHeaderError: ProtocolError,
    nats_errors.JsonParseError: ProtocolError,
    # Misuse of nats-py that the transport should never commit.
    nats_errors.BadSubscriptionError: TransportError,
    nats_errors.BadTimeoutError: TransportError,
    nats_errors.InvalidCallbackTypeError: TransportError,
    # JetStream, which ari-proxy does not use.
    nats_errors.NotJSMessageError: TransportError,
    nats_errors.MsgAlreadyAckdError: TransportError,
}
"""The ari-proxy class for each nats-py exception class."""


# Plainer words than nats-py's for what callers meet most.
_TEXTS: dict[type[BaseException], str] = {
    nats_errors.NoRespondersError: "nobody serves it (NATS: no responders)",
    nats_errors.TimeoutError: "no reply in time (NATS: timeout)",
}

NATS_LINK_ERRORS = (OSError, asyncio.TimeoutError, nats_errors.StaleConnectionError)
"""Errors that end a working link; nats-py reports them just before it starts reconnecting."""

NATS_RETRYABLE_ERRORS = (OSError, asyncio.TimeoutError, nats_errors.Error)
"""Errors after which another connection attempt may succeed (server down or refusing, a
timeout, credentials that may be fixed); any other error is a configuration error."""


AUTH_FAILURE = "authentication failure (the server refused the credentials)"
"""How logs name a refusal of the credentials."""

# What the server says when it refuses the credentials: `-ERR 'Authorization Violation'` (user
# and password, token, nkey), `'User Authentication Expired'` or `'User Authentication Revoked'`
# (JWT). nats-py raises AuthorizationError for the first once connected, but a plain Error with
# the server's text during the handshake.
_AUTH_TEXTS = ("authorization violation", "authentication expired", "authentication revoked")


def is_auth_failure(exc: BaseException | None) -> bool:
    """Whether `exc` says the NATS server refused the credentials."""
    if isinstance(exc, nats_errors.AuthorizationError | AuthenticationError):
        return True
    if isinstance(exc, nats_errors.Error):
        text = str(exc).lower()
        return any(words in text for words in _AUTH_TEXTS)
    return False


def translate_nats_error(
    exc: BaseException, *, closed: bool = False, context: str = ""
) -> AriProxyError:
    """The ari-proxy exception for `exc`, to be raised `from exc`.

    `closed` says whether the owner closed the transport: a closed nats-py connection is then
    `ClientClosedError`, and otherwise a lost link (`TransportError`). `context` (a subject, a
    redacted URL) prefixes the message. OSError and asyncio timeouts from connecting become
    `ConnectError`.
    """
    target: type[AriProxyError] = TransportError
    if isinstance(exc, OSError | asyncio.TimeoutError) and not isinstance(exc, nats_errors.Error):
        target = ConnectError
    else:
        for cls in type(exc).__mro__:
            if cls in NATS_ERRORS:
                target = NATS_ERRORS[cls]
                break
    if target is ClientClosedError and not closed:
        target = TransportError
    if is_auth_failure(exc):
        target = AuthenticationError
    text = _TEXTS.get(type(exc)) or str(exc) or type(exc).__name__
    return target(f"{context}: {text}" if context else text)
