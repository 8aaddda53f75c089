"""Bounded server tables (issue 18, point 2).

`proxy.max_dialog_bindings` was a cap that junk could fill: 100,000 `ChannelSubscribe`s of
channels that do not exist (each answered "ok") evicted a live call's binding once the cap was
reached, and that call's events stopped reaching its dialog. Now a call taken with `ListenTake`
is pinned and never evicted to make room; other bindings evict each other, oldest first; a
dialog and an entity each have a bound of their own. Every table (bindings, calls offered and
owned, listeners, the log rate limiter's topics) has a cap, a metric and a WARNING at the cap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from nats.aio.client import Client as NatsClient
from prometheus_client import generate_latest
from security_kit import body

import ari_proxy
from ari_proxy.protocol import DialogRouter, Presence, PresenceRole, Subjects
from ari_proxy.server._logging import RateLimiter
from ari_proxy.server._offers import MAX_LISTENERS_PER_APP, CallOffers, Listeners, TakeVerdict
from ari_proxy.testing import Instance, running_proxy

pytest_plugins = ["security_fixtures"]

CH = "channel"


# --- the binding table --------------------------------------------------------------------------


def test_junk_never_evicts_a_pinned_binding() -> None:
    bounds: list[str] = []
    router = DialogRouter(100, on_overflow=bounds.append)
    router.bind("call-dialog", CH, "live", pin=True)
    for i in range(100_000):
        router.bind(f"junk-{i % 977}", CH, f"junk-{i}")
    assert len(router) == 100 and router.pinned == 1
    assert router.dialogs([(CH, "live")]) == ["call-dialog"]
    assert router.evicted == 100_000 - 99
    assert set(bounds) == {"table"}
    # The survivors are the newest junk: oldest first.
    assert router.dialogs([(CH, "junk-99999")]) and not router.dialogs([(CH, "junk-99900")])


def test_the_unpinned_binding_of_a_call_was_evicted_before() -> None:
    """What happened before the pin: the call's binding, the oldest, went first."""
    router = DialogRouter(100)
    router.bind("call-dialog", CH, "live")  # as ChannelSubscribe (or a take before) bound it
    for i in range(100):
        router.bind("junk", CH, f"junk-{i}")
    assert router.dialogs([(CH, "live")]) == []


def test_a_table_full_of_pinned_calls() -> None:
    bounds: list[str] = []
    router = DialogRouter(3, on_overflow=bounds.append)
    for i in range(3):
        router.bind(f"d{i}", CH, f"call-{i}", pin=True)
    assert not router.bind("junk", CH, "junk-1")  # refused: never evicts a pinned call
    assert router.refused == 1 and len(router) == 3
    assert router.bind("d3", CH, "call-3", pin=True)  # a new call evicts the oldest call
    assert router.pinned_evicted == 1 and router.dialogs([(CH, "call-0")]) == []
    assert bounds == ["pinned", "pinned"]


def test_pins_end_with_their_binding_and_can_be_undone() -> None:
    router = DialogRouter(2)
    router.bind("owner", CH, "c1", pin=True)
    router.bind("other", CH, "c1")  # another dialog follows the call too
    router.unbind("owner", CH, "c1")  # the owner's binding ends: the entity is evictable again
    assert not router.is_pinned(CH, "c1") and router.dialogs([(CH, "c1")]) == ["other"]
    router.bind("owner", CH, "c2", pin=True)
    router.unpin(CH, "c2")
    assert not router.is_pinned(CH, "c2")
    router.bind("owner", CH, "c3", pin=True)
    router.route("ChannelDestroyed", [(CH, "c3")])
    assert router.pinned == 0 and router.dialogs([(CH, "c3")]) == []


def test_one_dialog_and_one_entity_have_bounds_of_their_own() -> None:
    bounds: list[str] = []
    router = DialogRouter(
        1000, max_per_dialog=10, max_dialogs_per_entity=5, on_overflow=bounds.append
    )
    router.bind("call", CH, "live", pin=True)
    for i in range(100):
        router.bind("call", CH, f"junk-{i}")  # the call's own dialog, flooded
    assert router.dialogs([(CH, "live")]) == ["call"]  # its pinned call stays
    assert len(router) == 10 and router.dialog_evicted == 91
    for i in range(50):
        router.bind(f"follower-{i}", CH, "live")  # many dialogs on the live call
    followers = router.dialogs([(CH, "live")])
    assert followers[0] == "call" and len(followers) == 5  # the owner is never dropped
    assert followers[1:] == [f"follower-{i}" for i in range(46, 50)]
    assert set(bounds) == {"dialog", "entity"}


def test_a_take_pins_through_the_dispatcher() -> None:
    """`Dispatcher._take` pins on `OFFERED` and after Asterisk confirmed a `GRANTED` take:
    checked end to end in `test_junk_bindings_never_cut_a_live_call_off` below; here the
    verdicts the pin depends on."""
    offers = CallOffers(_publish, _settle, Subjects(), node=lambda: "n1")
    assert offers.take("app", "c1", "i1", "d1") is TakeVerdict.GRANTED
    assert offers.take("app", "c1", "i1", "d2") is TakeVerdict.OFFERED  # the owner again
    assert offers.take("app", "c1", "i2", "d3") is TakeVerdict.TAKEN


async def _publish(subject: str, data: bytes) -> bool:
    return True


async def _settle(*args: object) -> None:
    return None


# --- calls, listeners, the rate limiter ---------------------------------------------------------


def test_calls_offered_and_owned_are_bounded_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.server")
    offers = CallOffers(_publish, _settle, Subjects(), node=lambda: "n1", max_calls=10)
    for i in range(25):
        offers.take("app", f"c{i}", "i1", f"d{i}")
    assert offers.owned == 10 and offers.counters["owners_evicted"] == 15
    warnings = [r for r in caplog.records if "at their bound" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited
    assert getattr(warnings[0], "limit", None) == 10


def test_listeners_are_bounded_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy.server")
    listeners = Listeners()
    for i in range(MAX_LISTENERS_PER_APP + 100):
        listeners.seen(Presence(PresenceRole.LISTENER, "app", instance=f"i{i}", interval=60.0))
    assert listeners.live("app") == MAX_LISTENERS_PER_APP and listeners.evicted == 100
    assert listeners.total() == MAX_LISTENERS_PER_APP
    assert sum("listeners at their bound" in r.getMessage() for r in caplog.records) == 1


def test_the_rate_limiter_tracks_a_bounded_number_of_topics() -> None:
    limiter = RateLimiter(10.0, max_topics=100)
    allowed = [limiter.allow(f"bad_request:Kind-{i}") for i in range(10_000)]
    assert allowed[:100] == [0] * 100  # the first of each topic passes
    assert allowed[100] == 0 and all(a is None for a in allowed[101:])  # the rest share one
    assert len(limiter._next) <= 101


# --- against the real stack ---------------------------------------------------------------------


@pytest.mark.slow
async def test_junk_bindings_never_cut_a_live_call_off(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    junk_total, window, cap = 100_000, 256, 1_000
    async with running_proxy(
        asterisk, nats_url, app_name, max_dialog_bindings=cap, max_inflight=512
    ) as server:
        app, node = app_name, server.node
        async with ari_proxy.connect(nats_url, application=app) as client:
            async with client.listen() as calls:
                await client.channels.originate("Local/wait@default", app=app, node=node)
                call = await calls.next(timeout=15)
                live = call.channel.key.id
                assert server.router.is_pinned(CH, live)

                # The flood: ChannelSubscribes of channels that do not exist, from one client,
                # `window` at a time, on 10,000 dialogs (under the per-dialog bound).
                subject = f"ari.command.{app}.{node}"
                replies: dict[str, int] = {}
                counter = iter(range(junk_total))

                async def worker() -> None:
                    for i in counter:
                        data = {
                            "kind": "ChannelSubscribe",
                            "key": {"kind": CH, "id": f"junk-{i}", "node": node, "app": app,
                                    "dialog": f"junk-{i % 10_000}"},
                        }  # fmt: skip
                        reply = json.loads((await nc.request(subject, body(data), 10)).data)
                        code = reply.get("code") or ("ok" if not reply["error"] else "error")
                        replies[code] = replies.get(code, 0) + 1

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(window)))
                elapsed = time.perf_counter() - started
                print(
                    f"{junk_total} junk ChannelSubscribe in {elapsed:.1f}s "
                    f"({junk_total / elapsed:.0f}/s): {replies}; bindings {len(server.router)}, "
                    f"evicted {server.router.evicted}, pinned {server.router.pinned}"
                )
                assert replies == {"ok": junk_total}
                assert len(server.router) == cap
                assert server.router.evicted >= junk_total - cap
                assert server.router.dialogs([(CH, live)]) == [call.dialog]

                # The live call's events still reach its dialog.
                await call.channel.set_variable("AFTER_FLOOD", "1")
                async with asyncio.timeout(10):
                    while True:
                        event = await call.events.next()
                        if (
                            type(event).__name__ == "ChannelVarset"
                            and getattr(event, "variable", "") == "AFTER_FLOOD"
                        ):
                            break
                metrics = generate_latest(server.metrics.registry).decode()
                assert "ari_proxy_dialog_bindings_pinned 1.0" in metrics
                await call.channel.hangup()
                await call.close()
