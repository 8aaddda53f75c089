"""Calls offered to listen groups: repeated until taken, one owner each, a fallback at the end.

These run the offer logic alone, with a recording `publish` and `settle`, and short times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ari_proxy.protocol import DialogRouter, Presence, PresenceRole, Subjects
from ari_proxy.server._offers import CallOffers, Fallback, Listeners, TakeVerdict, stasis_start
from ari_proxy.testing import wait_until

APP = "app"
NODE = "02:aa"


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.settled: list[tuple[str, str, Fallback]] = []

    async def publish(self, subject: str, data: bytes) -> bool:
        self.published.append((subject, data))
        return True

    async def settle(self, app: str, channel: str, fallback: Fallback) -> None:
        self.settled.append((app, channel, fallback))


@pytest_asyncio.fixture
async def offers() -> AsyncIterator[tuple[CallOffers, Recorder]]:
    recorder = Recorder()
    calls = CallOffers(
        recorder.publish,
        recorder.settle,
        Subjects(),
        node=lambda: NODE,
        deadline=0.6,
        retry=(0.05, 0.1),
        fallback=Fallback.parse("continue:default,s,1"),
    )
    calls.start()
    yield calls, recorder
    await calls.stop()


def listening(calls: CallOffers, instance: str = "in-1") -> None:
    calls.on_presence(
        Presence(role=PresenceRole.LISTENER, application=APP, instance=instance, interval=1.0)
    )


async def test_an_offer_nobody_listens_for_is_published_once(
    offers: tuple[CallOffers, Recorder],
) -> None:
    calls, recorder = offers
    await calls.offer(APP, "c1", b"{}")
    assert recorder.published == [(f"ari.listen.{APP}.{NODE}", b"{}")]
    assert calls.pending == 0  # no listeners: no repeats, and never a fallback


async def test_an_offer_is_repeated_until_taken(offers: tuple[CallOffers, Recorder]) -> None:
    calls, recorder = offers
    listening(calls)
    await calls.offer(APP, "c1", b"{}")
    await wait_until(lambda: len(recorder.published) >= 3, timeout=2)
    assert calls.take(APP, "c1", "in-1", "dlg-1") is TakeVerdict.OFFERED
    sent = len(recorder.published)
    await asyncio.sleep(0.3)  # negative check: no more offers once taken
    assert len(recorder.published) == sent
    assert calls.counters["offers_repeated"] >= 2
    assert recorder.settled == []


async def test_nobody_takes_it_then_the_fallback_runs(offers: tuple[CallOffers, Recorder]) -> None:
    calls, recorder = offers
    listening(calls)
    await calls.offer(APP, "c1", b"{}")
    await wait_until(lambda: bool(recorder.settled), timeout=3)
    assert recorder.settled == [(APP, "c1", Fallback("continue", "normal", "default", "s", 1))]
    assert calls.pending == 0 and calls.counters["fallbacks"] == 1


async def test_one_owner_per_call(offers: tuple[CallOffers, Recorder]) -> None:
    calls, _ = offers
    listening(calls)
    await calls.offer(APP, "c1", b"{}")
    assert calls.take(APP, "c1", "in-1", "dlg-1") is TakeVerdict.OFFERED
    assert calls.take(APP, "c1", "in-2", "dlg-2") is TakeVerdict.TAKEN
    # The owner's repeated take (its reply was lost) is granted again.
    assert calls.take(APP, "c1", "in-1", "dlg-1") is TakeVerdict.OFFERED
    assert calls.owner("c1") == ("in-1", "dlg-1")
    calls.ended("c1")
    assert calls.owner("c1") is None


async def test_a_take_of_a_gone_channel_is_released(offers: tuple[CallOffers, Recorder]) -> None:
    calls, _ = offers
    assert calls.take(APP, "c9", "in-1", "dlg-1") is TakeVerdict.GRANTED  # unknown: restart case
    calls.release("c9", "in-1")
    assert calls.owner("c9") is None


async def test_resume_offers_only_calls_nobody_took(offers: tuple[CallOffers, Recorder]) -> None:
    calls, recorder = offers
    calls.resume_grace = 0.05
    listening(calls)
    calls.take(APP, "c1", "in-1", "dlg-1")  # its owner took it again after our restart
    events = [stasis_start(APP, NODE, b'{"id":"%s"}' % c) for c in (b"c1", b"c2")]
    await calls.resume(APP, events)
    offered = [data for _, data in recorder.published]
    assert len(offered) == 1 and b'"c2"' in offered[0] and b'"resumed":true' in offered[0]


def test_listeners_age_out_and_leave() -> None:
    now = [0.0]
    listeners = Listeners(clock=lambda: now[0])
    here = Presence(role=PresenceRole.LISTENER, application=APP, instance="i", interval=1.0)
    listeners.seen(here)
    assert listeners.live(APP) == 1
    now[0] = 2.5
    assert listeners.live(APP) == 1
    now[0] = 3.5  # three intervals of silence
    assert listeners.live(APP) == 0
    assert listeners.recent(APP, within=5.0) and not listeners.recent(APP, within=1.0)
    listeners.seen(here)
    listeners.seen(
        Presence(role=PresenceRole.LISTENER, application=APP, instance="i", leaving=True)
    )
    assert listeners.live(APP) == 0


def test_listeners_are_capped() -> None:
    listeners = Listeners()
    for i in range(5000):
        listeners.seen(Presence(role="listener", application=APP, instance=f"i{i}", interval=1))
    assert listeners.live(APP) == 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hangup", Fallback("hangup", "normal")),
        ("hangup:busy", Fallback("hangup", "busy")),
        ("continue", Fallback("continue")),
        ("continue:ctx,100,2", Fallback("continue", context="ctx", extension="100", priority=2)),
    ],
)
def test_fallback_parses(text: str, expected: Fallback) -> None:
    assert Fallback.parse(text) == expected


@pytest.mark.parametrize("text", ["drop", "continue:a,b,c", "continue:a,b,1,2"])
def test_bad_fallback(text: str) -> None:
    with pytest.raises(ValueError, match="listen fallback"):
        Fallback.parse(text)


def test_bindings_sweep() -> None:
    now = [0.0]
    router = DialogRouter(clock=lambda: now[0])
    router.bind("d1", "channel", "live")
    router.bind("d1", "channel", "gone")
    router.bind("d1", "bridge", "b-gone")
    router.bind("d2", "playback", "p1")
    now[0] = 1.0
    live = {"channel": {"live"}, "bridge": set()}
    assert router.sweep(live, older_than=5.0, max_age=60.0) == 0  # too young to judge
    now[0] = 10.0
    assert router.sweep(live, older_than=5.0, max_age=60.0) == 2
    assert router.dialogs([("channel", "live")]) == ["d1"]
    router.route("StasisEnd", [("channel", "live")])  # the channel leaves the application
    now[0] = 11.0
    assert router.dialogs([("channel", "live")]) == ["d1"]  # its ChannelDestroyed may follow
    assert router.sweep(live, older_than=5.0, max_age=60.0) == 0
    now[0] = 70.0
    assert router.sweep(live, older_than=5.0, max_age=60.0) == 2  # left, and the old playback
    assert len(router) == 0


async def test_a_call_moved_to_another_application_is_offered_there(
    offers: tuple[CallOffers, Recorder],
) -> None:
    # ChannelMove: the new application's StasisStart may come before the old one's StasisEnd.
    calls, recorder = offers
    listening(calls)
    calls.on_presence(
        Presence(role=PresenceRole.LISTENER, application="sales", instance="in-9", interval=1.0)
    )
    await calls.offer(APP, "c1", b"{}")
    assert calls.take(APP, "c1", "in-1", "dlg-1") is TakeVerdict.OFFERED
    await calls.offer("sales", "c1", b"{}")
    calls.ended("c1", APP)  # the old application's StasisEnd, late: the call is sales' now
    assert recorder.published[-1][0] == Subjects().listen("sales", NODE)
    assert calls.take("sales", "c1", "in-9", "dlg-9") is TakeVerdict.OFFERED
    assert calls.owner("c1") == ("in-9", "dlg-9")
    calls.ended("c1", "sales")
    assert calls.owner("c1") is None
