"""The whole stack on one machine, taking real calls.

Two Asterisk 22 sandboxes, a message bus (NATS, or RabbitMQ with `--bus rabbitmq`), an
`ari-proxy` server process beside each Asterisk, and a demo application using the proxy client:
it discovers both nodes, takes every call of its application (`listen()`), answers, records
a couple of seconds of what the caller sends, plays a prompt, and hangs up. The demo places the
calls itself: a real SIP call (sipp) into each Asterisk, and a Local channel originated through
the proxy whose other end plays `hello-world`, so that its recording holds real audio.

    scripts/run                 # run once and tear everything down (Ctrl-C too)
    scripts/run --keep          # keep the stack up and take calls until Ctrl-C, then say
                                # how to stop the sandboxes it leaves running
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import ari_proxy
from ari_proxy.client import ProxyClient
from ari_proxy.testing import (
    Instance,
    SandboxError,
    ensure_nats,
    ensure_rabbitmq,
    make_spec,
    running,
    sipp_calls,
    start,
    stop,
)

APP = "demo"
SANDBOXES = ("demo-1", "demo-2")
# A Local channel whose other half answers and plays hello-world (the sandbox dialplan's
# `playback` extension): the half that enters the application receives that audio.
LOCAL_CALLER = "Local/playback@default"
log = logging.getLogger("demo")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def sandbox(index: int) -> Instance:
    """Asterisk instance `demo-<index>`, reused when it already runs."""
    name = SANDBOXES[index - 1]
    for inst in running():
        if inst.name == name:
            return inst
    # ARI on 8088/8089 and SIP on 5060/5061 when free, else any free port.
    try:
        return start(
            make_spec(name, http_port=8087 + index, sip_port=5059 + index, default_app=APP)
        )
    except SandboxError:
        return start(make_spec(name, default_app=APP))


def log_file(inst: Instance) -> IO[bytes]:
    """Where the proxy beside `inst` writes its (JSON) log."""
    return open(f"/tmp/ari-proxy-{inst.name}.log", "wb")


async def start_proxy(inst: Instance, bus_url: str) -> asyncio.subprocess.Process:
    """The real `ari-proxy` command beside `inst`, configured as the Go server is: environment.

    In its own session, so that a Ctrl-C reaches the demo alone, which then stops the proxy
    with one SIGTERM (a second signal would cut its graceful stop short)."""
    env = dict(
        os.environ,
        ARI_APPLICATION=APP,
        ARI_USERNAME=inst.username,
        ARI_PASSWORD=inst.password,
        ARI_HTTP_URL=inst.http_url,
        ARI_WEBSOCKET_URL=inst.ws_url,
        MESSAGEBUS_URL=bus_url,
    )
    command = str(Path(sys.executable).parent / "ari-proxy")
    out = log_file(inst)
    return await asyncio.create_subprocess_exec(
        command, env=env, stdout=out, stderr=out, start_new_session=True
    )


def audio_seconds(wav: bytes) -> float:
    """Seconds of sound in a 16-bit PCM WAV file: samples louder than near-silence, at the
    file's rate. A recording of a channel that sent no audio is a 44-byte header: 0.0."""
    if len(wav) < 44 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return 0.0
    rate, bits = 8000, 16
    offset = 12
    while offset + 8 <= len(wav):
        chunk, size = wav[offset : offset + 4], struct.unpack("<I", wav[offset + 4 : offset + 8])[0]
        body = wav[offset + 8 : offset + 8 + size]
        if chunk == b"fmt " and len(body) >= 16:
            rate, bits = struct.unpack("<I", body[4:8])[0], struct.unpack("<H", body[14:16])[0]
        elif chunk == b"data" and bits == 16:
            samples = struct.unpack(f"<{len(body) // 2}h", body[: len(body) // 2 * 2])
            return sum(1 for s in samples if abs(s) > 64) / rate
        offset += 8 + size + (size & 1)
    return 0.0


@dataclass
class Handled:
    """What the demo did with one call."""

    channel: str
    node: str
    recording_bytes: int = 0
    audio: float = 0.0
    """Seconds of sound in the recording."""


async def handle(call: ari_proxy.Call) -> Handled:
    """What the application does with each call: answer, record what the caller sends for up
    to 2 s, play a prompt, hang up."""
    async with call:
        channel = call.channel
        data = await channel.data()
        handled = Handled(data.name, channel.node)
        say(f"call {data.name} (node {channel.node}, caller {data.caller.number or '-'})")
        await channel.answer()
        staged_rec = await channel.stage_record(max_duration=2, if_exists="overwrite")
        async with staged_rec.subscribe("RecordingFinished", "RecordingFailed") as done:
            recording = await staged_rec.execute()
            event = await done.next(timeout=15)
        if ari_proxy.event_type(event) == "RecordingFinished":
            wav = await recording.stored().read()
            handled.recording_bytes, handled.audio = len(wav), audio_seconds(wav)
            heard = f"{handled.audio:.1f}s of sound" if handled.audio else "silence"
            say(f"  recorded {recording.id}.wav ({len(wav)} bytes, {heard}), fetched over the bus")
            await recording.stored().delete()
        staged = await channel.stage_play("sound:hello-world")
        async with staged.subscribe("PlaybackFinished") as finished:
            await staged.execute()
            await finished.next(timeout=15)
        say(f"  played hello-world to {data.name}")
        await channel.hangup()
        say(f"  hung up {data.name}")
        return handled


def left_running(names: list[str]) -> list[str]:
    """What `--keep` leaves behind, and how to stop each."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    if not names:
        return ["nothing left running"]
    lines = [f"left running: the Asterisk sandboxes {', '.join(names)}"]
    for inst in running():
        if inst.name in names:
            lines.append(
                f"  {inst.name}: ARI {inst.http_url} (user {inst.username}), "
                f"SIP 127.0.0.1:{inst.sip_port}"
            )
    lines += [
        f"  stop them:  {python} -m ari_proxy.testing.asterisk down {' '.join(names)}",
        f"  passwords:  {python} -m ari_proxy.testing.asterisk status --json",
        "  the bus (NATS on :4222, RabbitMQ on :5672) is the machine's service, left as "
        "scripts/bootstrap found or started it",
    ]
    return lines


@dataclass
class Control:
    """Between the demo and its signal handler."""

    starting: list[asyncio.Future[Instance]]
    """Sandboxes being started (in threads: a Ctrl-C must wait for them before stopping)."""
    idle: asyncio.Event
    """Set while the demo only waits for Ctrl-C (`--keep`): a Ctrl-C then ends it normally."""
    stopping: asyncio.Event


async def demo(bus: str, keep: bool, control: Control) -> int:
    say("starting two Asterisk 22 sandboxes")
    nodes = []
    for index in (1, 2):
        control.starting.append(asyncio.ensure_future(asyncio.to_thread(sandbox, index)))
        nodes.append(await asyncio.shield(control.starting[-1]))
    for inst in nodes:
        where = f"ARI {inst.http_url}, SIP 127.0.0.1:{inst.sip_port}"
        say(f"  {inst.name}: {where}, node {inst.entity_id}")
    bus_url = await asyncio.to_thread(ensure_rabbitmq if bus == "rabbitmq" else ensure_nats)
    shown = bus_url.replace("guest:guest@", "")
    say(f"message bus: {shown}")
    proxies: list[asyncio.subprocess.Process] = []
    handled: list[Handled] = []
    all_done = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    try:
        proxies += [await start_proxy(inst, bus_url) for inst in nodes]
        client = await ari_proxy.connect(bus_url, application=APP, timeout=5.0)
        assert isinstance(client, ProxyClient)
        async with client:
            deadline = time.monotonic() + 30
            while len(client.nodes()) < len(nodes) and time.monotonic() < deadline:
                await client.refresh()
                await asyncio.sleep(0.2)
            say("proxies discovered: " + ", ".join(n.node for n in client.nodes()))
            calls = await client.listen()

            async def run_one(call: ari_proxy.Call) -> None:
                handled.append(await handle(call))
                if len(handled) >= 3:
                    all_done.set()

            async def take() -> None:
                async for call in calls:
                    task = asyncio.create_task(run_one(call))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

            taker = asyncio.create_task(take())
            try:
                say("placing a SIP call into each Asterisk, and a Local call through the proxy")
                local = await client.channels.originate(LOCAL_CALLER, node=nodes[0].entity_id)
                say(f"  originated {local.id} ({LOCAL_CALLER}) on {local.node}")
                results = await asyncio.gather(
                    *(sipp_calls(inst, f"stasis-{APP}", calls=1, timeout=60) for inst in nodes)
                )
                for inst, result in zip(nodes, results, strict=True):
                    say(f"  sipp -> {inst.name}: {result.successful} call(s) completed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_done.wait(), 30)
                if tasks:
                    await asyncio.wait(tasks, timeout=30)
                heard = [h for h in handled if h.audio > 0]
                ok = len(handled) == 3 and all(r.successful == 1 for r in results) and bool(heard)
                say(
                    f"demo {'succeeded' if ok else 'FAILED'}: {len(handled)} calls handled, "
                    f"{len(heard)} recording(s) with sound"
                )
                if keep:
                    say(
                        f"stack is up: call it with `.venv/bin/ari-proxy call {LOCAL_CALLER} --app "
                        f"{APP}` or SIP to stasis-{APP}@127.0.0.1:{nodes[0].sip_port}; Ctrl-C stops"
                    )
                    control.idle.set()
                    await control.stopping.wait()
                return 0 if ok else 1
            finally:  # also on Ctrl-C: calls in progress stop before the client closes
                calls.close()
                for task in [taker, *tasks]:
                    task.cancel()
                await asyncio.gather(taker, *tasks, return_exceptions=True)
    finally:
        for proc in proxies:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
        if proxies:
            say(f"proxies stopped (exit codes {[p.returncode for p in proxies]})")


async def main(bus: str, keep: bool) -> int:
    """Run the demo; Ctrl-C (or SIGTERM) stops it at any point, and then stops the sandboxes
    too unless `keep`, in which case it says how to stop them."""
    loop = asyncio.get_running_loop()
    control = Control([], asyncio.Event(), asyncio.Event())
    task = asyncio.create_task(demo(bus, keep, control))

    def on_signal() -> None:
        if control.idle.is_set():
            control.stopping.set()  # --keep, done and waiting: end normally
        else:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await task
    except asyncio.CancelledError:
        say("interrupted")
        return 130
    finally:
        # A sandbox still starting in its thread is stopped (or kept) like the others.
        await asyncio.gather(*control.starting, return_exceptions=True)
        names = [inst.name for inst in running() if inst.name in SANDBOXES]
        if keep:
            for line in left_running(names):
                say(line)
        else:
            for name in names:
                await asyncio.to_thread(stop, name)
            say(f"sandboxes stopped: {', '.join(names) or 'none were running'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bus", choices=["nats", "rabbitmq"], default="nats")
    parser.add_argument(
        "--keep", action="store_true", help="keep the stack up until Ctrl-C, sandboxes after it"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(args.bus, args.keep)))
