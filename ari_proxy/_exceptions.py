"""Every exception ari-proxy raises, rooted at `AriProxyError`.

```
AriProxyError
├── TransportError                  could not talk to Asterisk or the bus
│   ├── ConnectError                connecting failed
│   │   ├── AuthenticationError     the broker refused the credentials
│   │   └── CertificateError        the peer's TLS certificate was not trusted
│   └── ConnectionDownError         the link is down right now ("ARI connection is down")
├── RequestTimeout                  no answer in time (also the builtin TimeoutError)
├── NoProxyError                    no proxy serves the application or node asked for
├── TooLargeError                   a request or reply is larger than the bus carries
├── AriError                        Asterisk (or a proxy for it) refused the request
│   ├── BadRequestError             400, or a request a proxy found malformed
│   │   └── InvalidRequestError     refused before Asterisk was asked: key, payload, field
│   ├── ForbiddenError              403
│   ├── NotFoundError               404
│   ├── ConflictError               409
│   ├── UnprocessableEntityError    422
│   ├── InternalServerError         500
│   └── ServiceUnavailableError     503
├── ProtocolError                   a message that breaks the wire contract (also ValueError)
│   └── UnknownKindError            a request kind nobody implements ("Not implemented")
└── ClosedError                     used after close(); named for what happened
    ├── ClientClosedError           we closed it
    └── SubscriptionOverflowError   a subscription fell too far behind and was closed
```

`AriError` keeps the HTTP status and Asterisk's own message; `error_for_status` picks the class.
"""

from __future__ import annotations

import ssl

__all__ = [
    "AriError",
    "AriProxyError",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ClientClosedError",
    "ClosedError",
    "ConflictError",
    "ConnectError",
    "ConnectionDownError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidRequestError",
    "NoProxyError",
    "NotFoundError",
    "ProtocolError",
    "RequestTimeout",
    "ServiceUnavailableError",
    "SubscriptionOverflowError",
    "TooLargeError",
    "TransportError",
    "UnknownKindError",
    "UnprocessableEntityError",
    "certificate_refusal",
    "error_for_status",
]


class AriProxyError(Exception):
    """Base class of every ari-proxy exception."""


class TransportError(AriProxyError):
    """Asterisk or the message bus could not be reached."""


class ConnectError(TransportError):
    """A connection could not be established."""


class AuthenticationError(ConnectError):
    """The message bus refused the credentials (user and password, token, nkey, creds file).

    Raised by a bus transport's first connection: retrying cannot help until the credentials
    or the broker's configuration change. Once connected, a refusal on reconnection is retried
    like any other failure, and logged as an authentication failure."""


class CertificateError(ConnectError):
    """The peer's TLS certificate was not trusted: not signed by the CA given (or by the
    system's, without one), expired, or for another host name.

    Raised by a first connection at once, as `AuthenticationError` is: retrying cannot help
    until the CA setting or the peer's certificate changes, and a TLS link is never quietly
    replaced by a plain one. Once connected, a refusal on reconnection is retried (the peer's
    certificate may be in the middle of a rotation) and logged."""


class ConnectionDownError(TransportError):
    """The link to Asterisk is down right now; the request was not attempted."""


class RequestTimeout(AriProxyError, TimeoutError):
    """No answer arrived within the request timeout."""


class NoProxyError(AriProxyError):
    """No proxy serves the application or node the request is for."""


class TooLargeError(AriProxyError):
    """A request or its reply is larger than the message bus carries."""


class AriError(AriProxyError):
    """Asterisk refused a request.

    `str(error)` is the text and, when Asterisk explained itself, its message after it:
    `Non-2XX response: 404 Not Found: Channel not found`. Only `text` travels on the bus, in a
    reply's `error` (worded as the Go reference words it, for Go clients), with the message in
    its own field (docs/protocol.md), so both clients print the same for the same refusal.

    Attributes:
        text: the error as worded for the wire, without Asterisk's message.
        status: HTTP status Asterisk answered with (0 when a proxy refused before asking).
        reason: the reason phrase, as Asterisk wrote it (`Not Found`, `Variable Not Found`).
        message: Asterisk's explanation from the response body, when it gave one.
    """

    status_code = 0

    def __init__(self, text: str, *, status: int = 0, reason: str = "", message: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.status = status or self.status_code
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        message = self.message
        if not message or message in self.text:
            return self.text
        return f"{self.text}: {message}"


class BadRequestError(AriError):
    """400: invalid parameters, or a request a proxy found incomplete."""

    status_code = 400


class InvalidRequestError(BadRequestError):
    """A request refused before Asterisk was asked: a key, payload or field missing or unusable.

    Go's servers word these as literals ("OriginateRequest is mandatory", "channel key not
    supplied"); the text is kept as it is.
    """


class ForbiddenError(AriError):
    """403."""

    status_code = 403


class NotFoundError(AriError):
    """404: the resource (channel, bridge, variable, ...) does not exist."""

    status_code = 404


class ConflictError(AriError):
    """409: the resource is not in a state that allows the operation."""

    status_code = 409


class UnprocessableEntityError(AriError):
    """422: a resource named in the request body or query does not exist."""

    status_code = 422


class InternalServerError(AriError):
    """500."""

    status_code = 500


class ServiceUnavailableError(AriError):
    """503."""

    status_code = 503


class ProtocolError(AriProxyError, ValueError):
    """A message breaks the wire contract: not JSON, wrong types, missing fields."""


class UnknownKindError(ProtocolError):
    """A request kind that the receiving server does not implement."""


class ClosedError(AriProxyError):
    """The object was closed and cannot be used any more."""


class ClientClosedError(ClosedError):
    """The client (or subscription) was closed by its owner."""


class SubscriptionOverflowError(ClosedError):
    """A subscription with the `close` overflow policy fell behind and was closed."""


_BY_STATUS: dict[int, type[AriError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        UnprocessableEntityError,
        InternalServerError,
        ServiceUnavailableError,
    )
}


def error_for_status(status: int, text: str, *, reason: str = "", message: str = "") -> AriError:
    """Build the `AriError` subclass that matches an HTTP status."""
    cls = _BY_STATUS.get(status, AriError)
    return cls(text, status=status, reason=reason, message=message)


def certificate_refusal(exc: BaseException | None) -> str:
    """Why `exc` (or an exception it was raised from) says a TLS certificate was not trusted,
    or "" when it does not. Libraries wrap `ssl.SSLCertVerificationError` in their own errors,
    sometimes keeping only its text, so the text is looked at as well."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # aiohttp's ClientConnectorCertificateError is one too, without `verify_message`
        # (its text, below, has it).
        if isinstance(exc, ssl.SSLCertVerificationError) and hasattr(exc, "verify_message"):
            return exc.verify_message or str(exc)
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return text.split("certificate verify failed: ", 1)[-1].split(" (_ssl.c", 1)[0]
        exc = exc.__cause__ or exc.__context__
    return ""
