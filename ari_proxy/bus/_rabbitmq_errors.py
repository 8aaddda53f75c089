"""The one place where aiormq / pamqp exceptions become ari-proxy exceptions.

Every backend exception that can leave the RabbitMQ transport passes through `translate` (or
the `amqp_errors` context manager), so callers only ever see the `ari_proxy._exceptions` tree:

| backend exception                                    | ours             |
|------------------------------------------------------|------------------|
| authentication refused                               | `AuthenticationError` (a `ConnectError`) |
| vhost refused, incompatible protocol                 | `ConnectError`   |
| socket errors and connection closes while connecting | `ConnectError`   |
| the same once connected, channel closes, broker errors | `TransportError` |
| `PublishError` (basic.return of a mandatory message: no queue bound) | `NoProxyError` |

The transport drives aiormq (and through it pamqp) directly, so theirs are the only backend
exceptions; a test checks that every class of `aiormq.exceptions` and `pamqp.exceptions` has an
entry.
Messages are scrubbed of credentials (`amqp://user:password@host`), which some socket and
connection errors carry.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from types import TracebackType

import aiormq.exceptions as amqp
import pamqp.exceptions as pamqp_errors

from .._exceptions import (
    AriProxyError,
    AuthenticationError,
    ConnectError,
    NoProxyError,
    TransportError,
)

__all__ = ["AUTH_FAILURE", "BACKEND_ERRORS", "amqp_errors", "redact_text", "translate"]

AUTH_FAILURE = "authentication failure (the broker refused the credentials)"
"""How logs name a refusal of the credentials."""

BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    amqp.AMQPError,
    amqp.ChannelInvalidStateError,
    pamqp_errors.PAMQPException,
    OSError,
    EOFError,
)
"""What the backend raises besides our own exceptions (aiormq raises `ChannelInvalidStateError`,
a `RuntimeError`, for a closed channel; sockets raise `OSError`)."""

# Looked up along the exception's MRO, so a subclass missing here (a newer aiormq) still maps
# to its parent's entry; the test asks for an explicit entry for every class we know of.
_MAP: dict[type[BaseException], type[AriProxyError]] = {
    # connection establishment: nothing was ever connected
    amqp.AuthenticationError: AuthenticationError,
    amqp.ProbableAuthenticationError: AuthenticationError,  # ACCESS_REFUSED at the handshake
    amqp.IncompatibleProtocolError: ConnectError,
    amqp.ConnectionNotAllowed: ConnectError,  # vhost access refused
    # connection-level failures
    amqp.AMQPError: TransportError,
    amqp.AMQPConnectionError: TransportError,
    amqp.ConnectionClosed: TransportError,
    amqp.ConnectionSyntaxError: TransportError,
    amqp.ConnectionFrameError: TransportError,
    amqp.ConnectionCommandInvalid: TransportError,
    amqp.ConnectionChannelError: TransportError,
    amqp.ConnectionUnexpectedFrame: TransportError,
    amqp.ConnectionResourceError: TransportError,
    amqp.ConnectionNotImplemented: TransportError,
    amqp.ConnectionInternalError: TransportError,
    # channel-level failures: refused declarations (PRECONDITION_FAILED for a queue or
    # exchange declared with other properties, RESOURCE_LOCKED for another connection's
    # exclusive queue), publishes to a missing exchange, a closed channel
    amqp.AMQPChannelError: TransportError,
    amqp.ChannelClosed: TransportError,
    amqp.ChannelAccessRefused: TransportError,
    amqp.ChannelNotFoundEntity: TransportError,
    amqp.ChannelLockedResource: TransportError,
    amqp.ChannelPreconditionFailed: TransportError,
    amqp.DuplicateConsumerTag: TransportError,
    amqp.ChannelInvalidStateError: TransportError,
    # frame and protocol errors of AMQP itself (not our wire contract: ProtocolError is a
    # ValueError about message content, these are a broken link)
    amqp.ProtocolSyntaxError: TransportError,
    amqp.InvalidFrameError: TransportError,
    amqp.MethodNotImplemented: TransportError,
    # publisher confirms: nack, and return of a mandatory message that no queue took
    amqp.DeliveryError: TransportError,
    amqp.PublishError: NoProxyError,
    # pamqp's reply-code classes (aiormq raises its own, but a frame error can surface these)
    pamqp_errors.PAMQPException: TransportError,
    pamqp_errors.UnmarshalingException: TransportError,
    pamqp_errors.AMQPError: TransportError,
    pamqp_errors.AMQPSoftError: TransportError,
    pamqp_errors.AMQPHardError: TransportError,
    pamqp_errors.AMQPContentTooLarge: TransportError,
    pamqp_errors.AMQPNoRoute: NoProxyError,
    pamqp_errors.AMQPNoConsumers: NoProxyError,
    pamqp_errors.AMQPAccessRefused: TransportError,
    pamqp_errors.AMQPNotFound: TransportError,
    pamqp_errors.AMQPResourceLocked: TransportError,
    pamqp_errors.AMQPPreconditionFailed: TransportError,
    pamqp_errors.AMQPConnectionForced: TransportError,
    pamqp_errors.AMQPInvalidPath: ConnectError,
    pamqp_errors.AMQPFrameError: TransportError,
    pamqp_errors.AMQPSyntaxError: TransportError,
    pamqp_errors.AMQPCommandInvalid: TransportError,
    pamqp_errors.AMQPChannelError: TransportError,
    pamqp_errors.AMQPUnexpectedFrame: TransportError,
    pamqp_errors.AMQPResourceError: TransportError,
    pamqp_errors.AMQPNotAllowed: ConnectError,
    pamqp_errors.AMQPNotImplemented: TransportError,
    pamqp_errors.AMQPInternalError: TransportError,
    # sockets
    OSError: TransportError,
    EOFError: TransportError,
}

_CONNECTING_AS_CONNECT_ERROR = (amqp.AMQPConnectionError, OSError, EOFError)

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^@/\s]*@")


def redact_text(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def _mapped(exc: BaseException) -> type[AriProxyError]:
    for cls in type(exc).__mro__:
        target = _MAP.get(cls)
        if target is not None:
            return target
    return TransportError


def _describe(exc: BaseException) -> str:
    if isinstance(exc, amqp.PublishError):
        # The return frame says why: NO_ROUTE when no queue is bound with the routing key.
        frame = exc.frame
        code = getattr(frame, "reply_code", "")
        text = getattr(frame, "reply_text", "")
        key = getattr(frame, "routing_key", "")
        return f"nobody serves {key!r} (the broker returned the request: {code} {text})"
    detail = str(exc) or repr(exc)
    return redact_text(f"{type(exc).__name__}: {detail}")


def translate(exc: BaseException, *, connecting: bool = False) -> AriProxyError:
    """The ari-proxy exception for a backend exception `exc` (returned, not raised; chain it
    with `raise translate(exc) from exc`). With `connecting`, any connection-level failure
    is a `ConnectError`."""
    if isinstance(exc, AriProxyError):
        return exc
    cls = _mapped(exc)
    if connecting and cls is TransportError and isinstance(exc, _CONNECTING_AS_CONNECT_ERROR):
        cls = ConnectError
    return cls(_describe(exc))


class _Translating(AbstractContextManager[None]):
    """`amqp_errors`: a plain class, as it wraps every request and reply and a generator-based
    context manager costs a few microseconds each time."""

    __slots__ = ("_connecting",)

    def __init__(self, *, connecting: bool) -> None:
        self._connecting = connecting

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Ours pass as they are (RequestTimeout is an OSError through TimeoutError).
        if (
            exc is not None
            and not isinstance(exc, AriProxyError)
            and isinstance(exc, BACKEND_ERRORS)
        ):
            raise translate(exc, connecting=self._connecting) from exc


_TRANSLATING = _Translating(connecting=False)
_TRANSLATING_CONNECTING = _Translating(connecting=True)


def amqp_errors(*, connecting: bool = False) -> AbstractContextManager[None]:
    """Re-raise any backend exception of the block as its ari-proxy exception.

    Raises:
        ConnectError, TransportError, NoProxyError: see the table in the module docstring.
    """
    return _TRANSLATING_CONNECTING if connecting else _TRANSLATING
