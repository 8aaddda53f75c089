"""The examples (the Go project's bridge, play, record and stasisStart, in Python) really run,
through the proxy and directly."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import pytest_asyncio

import ari_proxy
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance, running_proxy, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = TypeVar("T")


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest_asyncio.fixture(params=["native", "proxy"])
async def client(
    request: pytest.FixtureRequest, asterisk: Instance, app_name: str, nats_url: str
) -> AsyncIterator[ari_proxy.Client]:
    if request.param == "native":
        async with ari_proxy.connect(
            asterisk.http_url,
            application=app_name,
            username=asterisk.username,
            password=asterisk.password,
        ) as native:
            yield native
        return
    server = Server(
        ServerConfig(
            applications=(app_name,),
            ari_username=asterisk.username,
            ari_password=asterisk.password,
            ari_http_url=asterisk.http_url,
            bus_urls=(nats_url,),
            shutdown_grace=2.0,
        )
    )
    await server.start(ari_timeout=30)
    try:
        async with ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as proxied:
            yield proxied
    finally:
        await server.stop()


class Listening:
    """The client as an example sees it, except that `listen()` and `on()` tell the test
    (`live`) once the example's call subscription or handler is in place: calls placed before
    that would be missed."""

    def __init__(self, client: ari_proxy.Client) -> None:
        self._client = client
        self.live = asyncio.Event()
        self._watchers: set[asyncio.Task[None]] = set()

    def on(self, types: Any, handler: Any = None, /, **options: Any) -> Any:
        def register(callback: Any) -> ari_proxy.EventHandler:
            registered = self._client.on(types, callback, **options)

            async def watch() -> None:
                await registered.ready()
                self.live.set()

            watcher = asyncio.create_task(watch())
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
            return registered

        return register if handler is None else register(handler)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    @contextlib.asynccontextmanager
    async def listen(self, **options: Any) -> AsyncIterator[ari_proxy.Calls]:
        async with self._client.listen(**options) as calls:
            self.live.set()
            yield calls


async def start(
    run: Callable[[Any], Coroutine[Any, Any, T]], client: ari_proxy.Client
) -> asyncio.Task[T]:
    """Run an example on `client`; return once it listens for calls (or raise what it raised)."""
    listening = Listening(client)
    runner = asyncio.create_task(run(listening))
    live = asyncio.create_task(listening.live.wait())
    await asyncio.wait({runner, live}, return_when=asyncio.FIRST_COMPLETED)
    if not live.done():
        live.cancel()
        await runner  # it ended before listening: raise its error
        raise AssertionError("the example ended without listening for calls")
    return runner


async def call_in(client: ari_proxy.Client, extension: str = "wait") -> ari_proxy.ChannelHandle:
    """A caller: a Local channel whose ;1 half enters the application."""
    return await client.channels.originate(f"Local/{extension}@default")


async def test_play(client: ari_proxy.Client) -> None:
    play = load("play")
    async with asyncio.timeout(30):
        runner = await start(lambda c: play.run(c, 2, media="sound:beep"), client)
        callers = [await call_in(client) for _ in range(2)]
        await runner
        for caller in callers:  # the example hung every call up
            with pytest.raises(ari_proxy.NotFoundError):
                for _ in range(50):  # bounded poll: Asterisk drops it a moment after hangup
                    await caller.data()
                    await asyncio.sleep(0.02)


async def test_record(client: ari_proxy.Client) -> None:
    record = load("record")
    name = f"example-{client.application}"
    async with asyncio.timeout(40):
        runner = await start(lambda c: record.run(c, 1, name=name, max_duration=1), client)
        await call_in(client, "echo")
        await runner
        stored = client.recordings.stored(name)
        data = await stored.data()
        assert (data.name, data.format) == (name, "wav")
        assert (await stored.read())[:4] == b"RIFF"
        await stored.delete()


async def test_bridge(client: ari_proxy.Client) -> None:
    bridge = load("bridge")
    async with asyncio.timeout(40):
        runner = await start(lambda c: bridge.run(c, 2), client)
        callers = [await call_in(client) for _ in range(2)]
        conference = await runner
        assert conference.bridge is not None
        data = await conference.bridge.data()
        assert len(data.channels) == 2
        for _ in range(100):  # bounded poll: the example counts joins as the events come
            if conference.joined == 2:
                break
            await asyncio.sleep(0.05)
        assert conference.joined == 2
        for caller in callers:
            await caller.hangup()
        await conference.close()


async def test_stasis_start(client: ari_proxy.Client) -> None:
    stasis_start = load("stasis_start")
    async with asyncio.timeout(30):
        runner = await start(lambda c: stasis_start.run(c, 1), client)
        await stasis_start.create_call(client)
        (states,) = await runner
        assert states[-1] == "Up"


async def test_handlers(client: ari_proxy.Client) -> None:
    handlers = load("handlers")
    async with asyncio.timeout(30):
        runner = await start(lambda c: handlers.run(c, 2), client)
        greeted = await client.channels.originate(
            "Local/wait@default", variables={"GREETING": "hello"}
        )
        plain = await client.channels.originate("Local/wait@default")
        results = {answered.channel: answered for answered in await runner}
    assert results[greeted.id].greeting == "hello"
    assert results[plain.id].greeting == ""
    # The error text names Asterisk's reason, through the proxy as directly.
    assert results[plain.id].error == (
        "Non-2XX response: 404 Variable Not Found: Provided variable was not found"
    )
    assert client.handlers == frozenset()  # the example closed its handler


async def test_the_demo_records_real_audio(client: ari_proxy.Client) -> None:
    """The demo's Local caller plays hello-world from its far end: its recording holds sound,
    not only a WAV header (44 bytes, what a silent leg gives)."""
    demo = load("demo")
    async with asyncio.timeout(40):
        async with client.listen() as calls:
            await client.channels.originate(demo.LOCAL_CALLER)
            call = await calls.next(timeout=15)
            handled = await demo.handle(call)
    assert handled.recording_bytes > 44 + 8000, handled  # beyond the header: > 0.25 s of audio
    assert handled.audio >= 0.5, handled


def test_the_demo_measures_sound_not_bytes() -> None:
    demo = load("demo")
    header = b"RIFF" + (36).to_bytes(4, "little") + b"WAVE"
    fmt = b"fmt " + (16).to_bytes(4, "little") + bytes.fromhex("01000100401f0000803e000002001000")
    silent = header + fmt + b"data" + (16000).to_bytes(4, "little") + bytes(16000)
    loud = header + fmt + b"data" + (16000).to_bytes(4, "little") + b"\x00\x10" * 8000
    assert demo.audio_seconds(header + fmt + b"data" + bytes(4)) == 0.0  # the 44-byte header
    assert demo.audio_seconds(silent) == 0.0
    assert demo.audio_seconds(loud) == 1.0
    assert demo.audio_seconds(b"not a wav") == 0.0


def test_the_demo_says_how_to_stop_what_keep_leaves() -> None:
    demo = load("demo")
    lines = demo.left_running(["demo-1", "demo-2"])
    assert lines[0] == "left running: the Asterisk sandboxes demo-1, demo-2"
    assert any(
        line.strip().startswith("stop them:")
        and line.endswith("-m ari_proxy.testing.asterisk down demo-1 demo-2")
        for line in lines
    )
    assert demo.left_running([]) == ["nothing left running"]


async def test_the_ivr_resumes_at_the_step_it_reached_after_a_drain(
    asterisk: Instance, app_name: str, nats_url: str
) -> None:
    """Two instances of the IVR; the first is drained after the call's first step: the second
    is handed the call and plays the remaining steps, none twice that was saved."""
    ivr_resume = load("ivr_resume")
    first, second = ivr_resume.Ivr(), ivr_resume.Ivr()
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    async with (
        running_proxy(asterisk, nats_url, app_name) as server,
        ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as one,
        ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as two,
        asyncio.timeout(60),
    ):
        running = asyncio.create_task(ivr_resume.run(one, ivr=first, stop=stop_first, signals=()))
        await wait_until(lambda: server.offers.listeners.live(app_name) == 1)
        await call_in(one)
        await wait_until(lambda: len(first.done) == 1, timeout=20)  # step 0 played and saved
        resuming = asyncio.create_task(
            ivr_resume.run(two, ivr=second, stop=stop_second, signals=())
        )
        await wait_until(lambda: server.offers.listeners.live(app_name) == 2)
        stop_first.set()
        await running  # drained: the call was handed over
        steps = len(ivr_resume.STEPS)
        await wait_until(lambda: [s for _, s in second.done][-1:] == [steps - 1], timeout=30)
        stop_second.set()
        await resuming
    (channel,) = {c for c, _ in first.done}
    assert second.resumed == {channel: len(first.done)}  # at the step the first one reached
    assert [s for _, s in first.done + second.done] == list(range(steps))
