"""Request dispatch: a bus request in, its reply out, one way through the kind table.

`dispatch` decodes the request, checks that it is this server's and that its caller still waits
for it (its `deadline`), hands it to the application's `Executor` (which validates it, binds its
dialog and calls Asterisk) and encodes the `Result` as the kind's row says
(`ari_proxy.protocol.encode_result`). Nothing here knows individual kinds but one:
`ListenTake`, which the server first decides from its own state (who owns the call), then runs
like any other kind. Every failure becomes a reply (`ari_proxy.protocol.error_reply`); a faulty
request is also logged, at most once per 10 s per kind of fault.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import msgspec

from .._exceptions import (
    AriProxyError,
    InvalidRequestError,
    ProtocolError,
    RequestTimeout,
    TooLargeError,
    UnknownKindError,
)
from ..ari import Deadlines, Executor
from ..protocol import (
    KINDS,
    DialogRouter,
    ErrorCode,
    Key,
    KindSpec,
    ListenTake,
    Request,
    RequestClass,
    Response,
    Result,
    check_request,
    decode_request,
    encode_result,
    error_reply,
    error_response,
    named_applications,
    valid_dialog,
    valid_token,
)
from ..spec import OPERATIONS
from ._logging import RateLimiter
from ._offers import CallOffers, TakeVerdict

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

_BINARY_KINDS = frozenset(
    k.name for k in KINDS.values() if k.operation and OPERATIONS[k.operation].response == "binary"
)
"""Kinds whose answer is a file, read chunk by chunk (RecordingStoredFile)."""

_LEAST_TIME = 0.05
"""Seconds a request must have left before its deadline for the server to start it."""


class Dispatcher:
    """Executes requests for the applications of one server.

    Args:
        executors: one `Executor` per application (it stamps that application on keys).
        router: where dialog bindings go.
        node: the current Asterisk entity ID.
        request_timeout: seconds a request may take in all.
        file_limit: the largest binary file (bytes) a reply may carry, read per request (it
            depends on the bus).
        offers: the calls offered to listen groups, which decide `ListenTake`.
        isolate: refuse a request that names an application other than the one it was sent
            for (`proxy.isolate_applications`).
    """

    def __init__(
        self,
        executors: Mapping[str, Executor],
        router: DialogRouter,
        *,
        node: Callable[[], str],
        request_timeout: float,
        file_limit: Callable[[], int],
        offers: CallOffers | None = None,
        isolate: bool = False,
    ) -> None:
        self.executors = executors
        self.offers = offers
        self.isolate = isolate
        self.router = router
        self._node = node
        self.request_timeout = request_timeout
        self._file_limit = file_limit
        self._limiter = RateLimiter(10.0)
        self._deadlines = Deadlines()  # no loop timer per request (see `Deadlines`)
        if router.on_overflow is None:
            router.on_overflow = self._binding_overflow

    def _binding_overflow(self, bound: str) -> None:
        """A bound of the binding table dropped or refused a binding: WARNING, at most one per
        10 s per bound."""
        held = self._limiter.allow(f"bindings:{bound}")
        if held is None:
            return
        router = self.router
        what = {
            "table": "the oldest unpinned binding was evicted",
            "pinned": "the table is full of pinned (owned) calls",
            "dialog": "a dialog reached its bound; its oldest binding was dropped",
            "entity": "an entity reached its bound of dialogs; its oldest dialog was dropped",
        }.get(bound, bound)
        logger.warning(
            "dialog bindings at their bound: %s",
            what,
            extra={
                "bound": bound,
                "bindings": len(router),
                "limit": router.max_entities,
                "pinned": router.pinned,
                "evicted": router.evicted,
                "refused": router.refused,
                "suppressed": held,
            },
        )

    async def dispatch(
        self, app: str, cls: RequestClass, data: bytes, subject: str
    ) -> Response | None:
        """The reply to one request received for `app` on `subject` (of class `cls`), or None
        when the request is another server's."""
        kind = ""
        try:
            request = decode_request(data)
            kind = request.kind
            spec = KINDS.get(kind)
            payload = getattr(request, spec.payload) if spec and spec.payload else None
            # Before anything else, bindings included: a control character in an ID, an
            # integer out of its ARI range (the checks the clients make before sending).
            check_request(kind, request.key, payload, app=app, node=self._node())
            if not self._is_ours(request.key, app, cls):
                return None
            response = await self._execute(self.executors[app], request)
        except (ProtocolError, InvalidRequestError) as exc:  # the request's own fault
            response = error_reply(exc)
            self._log_refused(response, kind, subject, app)
            return response
        if logger.isEnabledFor(logging.DEBUG):
            extra = {"kind": kind, "subject": subject, "app": app, "error": response.error}
            logger.debug("request", extra=extra)
        return response

    def _is_ours(self, key: Key | None, app: str, cls: RequestClass) -> bool:
        """Whether this server runs a request with `key`, received for `app`.

        Raises:
            InvalidRequestError: the key cannot be routed, or another server's create reached
                this one through the shared queue.
        """
        if key is None:
            return True
        for name, value in (("app", key.app), ("node", key.node)):
            # App and node become subject tokens (replies are stamped with them).
            if value and not valid_token(value):
                raise InvalidRequestError(
                    f"key.{name} {value[:100]!r} cannot be a subject token: it must not contain "
                    "'.', '*', '>', '#', spaces or control characters"
                )
        if key.dialog and not valid_dialog(key.dialog):
            # Dialog copies go to `<prefix>dialogevent.<dialog>`: one token, or `<app>.<id>`.
            raise InvalidRequestError(
                f"key.dialog {key.dialog[:100]!r} cannot name a dialog: it must be one subject "
                "token or two (`<app>.<id>`), without '*', '>', '#', spaces or control characters"
            )
        node = self._node()
        if key.app in ("", app) and key.node in ("", node):
            return True
        # Another server's request (Go executes it anyway: docs/protocol.md, "Go defects
        # fixed", 8). On a queue group it reached only us, so say why it cannot run;
        # otherwise let its server answer.
        if cls is not RequestClass.CREATE:
            return False
        where = f"application {key.app or app!r} on node {key.node or node!r}"
        raise InvalidRequestError(
            f"request for {where} reached application {app!r} on node {node!r}"
        )

    async def _execute(self, executor: Executor, request: Request) -> Response:
        """Run a request; an error of Asterisk or of the link becomes the reply.

        Raises:
            UnknownKindError, InvalidRequestError: the request itself is faulty.
        """
        kind = request.kind
        spec = KINDS.get(kind)
        if spec is None:
            raise UnknownKindError("Not implemented")
        payload = getattr(request, spec.payload) if spec.payload else None
        if self.isolate:
            others = named_applications(spec, request.key, payload) - {executor.application}
            if others:
                raise InvalidRequestError(
                    f"{kind} names application {', '.join(sorted(others))!s}, not "
                    f"{executor.application!r} it was sent for (proxy.isolate_applications)"
                )
        limit = self.request_timeout
        if request.deadline:
            # The caller's own clock: a request that waited in a reconnect buffer or a queue
            # past the time its caller gave up is not started at all.
            limit = min(limit, request.deadline - time.time())
            if limit <= _LEAST_TIME:
                text = f"{kind}: the caller's deadline passed before the request could start"
                return error_response(text, ErrorCode.EXPIRED)
        if kind == "ListenTake" and self.offers is not None:
            return await self._take(executor, request, limit)
        if kind in ("ListenSaveState", "ListenRelease") and self.offers is not None:
            return self._owned_call(kind, request)
        key, offers = request.key, self.offers
        if key is not None and key.dialog and offers is not None and offers.handed_away(key.dialog):
            # The old owner, stalled past the liveness timeout, sent this before it heard of
            # the handover: the call is another instance's (docs/handover.md, "Guarantees").
            return error_response(
                f"{kind}: the call of dialog {key.dialog} was handed over to another instance",
                ErrorCode.TAKEN,
                status=409,
            )
        try:
            with self._deadlines.within(limit):
                if kind in _BINARY_KINDS:
                    result = await self._download(executor, spec, request.key)
                else:
                    result = await executor.execute(
                        spec.name,
                        request.key,
                        payload,
                        timeout=limit,
                        router=self.router,
                    )
            return encode_result(spec, result)
        except (UnknownKindError, InvalidRequestError):
            raise
        except (ProtocolError, msgspec.DecodeError) as exc:  # Asterisk's answer, not the request
            text = f"{kind}: unexpected answer from Asterisk: {exc}"
            return error_response(text, ErrorCode.ARI_ERROR)
        except TimeoutError as exc:
            if not isinstance(exc, RequestTimeout):
                text = f"{kind}: Asterisk did not answer within {limit:.3g}s"
                exc = RequestTimeout(text)
            return error_reply(exc)
        except AriProxyError as exc:
            return error_reply(exc)
        except (ValueError, TypeError) as exc:
            # A value Asterisk cannot take (an ID of "..", a number where a word goes): refused
            # before any HTTP request was made.
            raise InvalidRequestError(str(exc)) from None

    async def _take(self, executor: Executor, request: Request, limit: float) -> Response:
        """`ListenTake`: the first instance to take an offered call owns it; then the channel
        is checked and bound to the taker's dialog like any other kind's entity."""
        assert self.offers is not None
        key, take = request.key, request.listen_take
        if key is None or not key.id or not key.dialog or take is None or not take.instance:
            raise InvalidRequestError(
                "ListenTake needs a channel key with a dialog and an instance"
            )
        app = executor.application
        verdict = self.offers.take(app, key.id, take.instance, key.dialog)
        if verdict is TakeVerdict.TAKEN:
            return error_response(
                f"call {key.id} is another instance's", ErrorCode.TAKEN, status=409
            )
        if verdict is TakeVerdict.OFFERED:
            # Offered by us and not ended since: in Stasis, no need to ask Asterisk. An owned
            # call's binding is pinned: no binding made by anyone else can evict it
            # (docs/operations.md, "Limits under load").
            self.router.bind(key.dialog, "channel", key.id, pin=True)
            return Response()
        try:
            async with asyncio.timeout(limit):
                await executor.execute("ListenTake", key, take, timeout=limit, router=self.router)
        except BaseException as exc:
            self.offers.release(key.id, take.instance)
            if isinstance(exc, AriProxyError):
                return error_reply(exc)
            if isinstance(exc, TimeoutError):
                text = f"ListenTake: Asterisk did not answer within {limit:.3g}s"
                return error_reply(RequestTimeout(text))
            raise
        # The channel exists: pin its binding now (made again if it was evicted meanwhile).
        self.router.bind(key.dialog, "channel", key.id, pin=True)
        return Response()

    def _owned_call(self, kind: str, request: Request) -> Response:
        """`ListenSaveState` and `ListenRelease`: only the call's owner may (docs/handover.md)."""
        assert self.offers is not None
        key = request.key
        instance = (request.listen_state or request.listen_take or ListenTake()).instance
        if key is None or not key.id or not instance:
            raise InvalidRequestError(f"{kind} needs a channel key and an instance")
        if kind == "ListenRelease":
            done = self.offers.hand_over(key.id, instance)
        else:
            state = request.listen_state.state if request.listen_state else b""
            try:
                done = self.offers.save_state(key.id, instance, state)
            except TooLargeError as exc:
                return error_reply(exc)
        if not done:
            return error_response(
                f"call {key.id} is not this instance's", ErrorCode.TAKEN, status=409
            )
        return Response()

    async def _download(self, executor: Executor, spec: KindSpec, key: Key | None) -> Result:
        """A binary kind's file, read chunk by chunk so a huge file is refused without
        loading it whole."""
        limit = self._file_limit()
        chunks: list[bytes] = []
        size = 0
        async with executor.stream(spec.name, key, timeout=self.request_timeout) as body:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(
                        f"{spec.name} '{(key or Key()).id}': the file is larger than {limit} "
                        "bytes, the most a reply carries over this bus; fetch it from "
                        "Asterisk's ARI (GET /recordings/stored/{name}/file) or raise "
                        "proxy.max_file_size"
                    )
                chunks.append(chunk)
        return Result(data=b"".join(chunks))

    def _log_refused(self, response: Response, kind: str, subject: str, app: str) -> None:
        """A faulty request at WARNING, at most one per 10 s per kind of fault (never the body)."""
        held = self._limiter.allow(f"{response.code}:{kind[:64]}")
        if held is None:
            return
        logger.warning(
            "refused a request: %s",
            response.error[:300],
            extra={
                "kind": kind[:64],
                "subject": subject,
                "app": app,
                "code": response.code,
                "suppressed": held,
            },
        )
