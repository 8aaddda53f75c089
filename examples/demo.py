"""The whole stack on one machine, taking real calls.

Two Asterisk 22 sandboxes, a message bus (NATS, or RabbitMQ with `--bus rabbitmq`), an
`ari-proxy` server process beside each Asterisk, and a demo application using the proxy client:
it discovers both nodes, takes every call of its application (`listen()`), answers, plays a
prompt, records a few seconds, and hangs up. The demo places the calls itself: a real SIP call
(sipp) into each Asterisk, and a Local channel originated through the proxy.

    scripts/run                 # run once and tear everything down
    scripts/run --keep          # keep the stack up and take calls until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
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
log = logging.getLogger("demo")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def sandbox(index: int) -> Instance:
    """Asterisk instance `demo-<index>`, reused when it already runs."""
    name = f"demo-{index}"
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
    """The real `ari-proxy` command beside `inst`, configured as the Go server is: environment."""
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
    return await asyncio.create_subprocess_exec(command, env=env, stdout=out, stderr=out)


async def handle(call: ari_proxy.Call, transcript: list[str], all_done: asyncio.Event) -> None:
    """What the application does with each call."""
    async with call:
        channel = call.channel
        data = await channel.data()
        transcript.append(f"{data.name} on node {channel.node}")
        say(f"call {data.name} (node {channel.node}, caller {data.caller.number or '-'})")
        await channel.answer()
        staged = await channel.stage_play("sound:hello-world")
        async with staged.subscribe("PlaybackFinished") as finished:
            await staged.execute()
            await finished.next(timeout=15)
        say(f"  played hello-world to {data.name}")
        staged_rec = await channel.stage_record(max_duration=2, if_exists="overwrite")
        async with staged_rec.subscribe("RecordingFinished", "RecordingFailed") as done:
            recording = await staged_rec.execute()
            event = await done.next(timeout=15)
        if ari_proxy.event_type(event) == "RecordingFinished":
            size = len(await recording.stored().read())
            say(f"  recorded {recording.id}.wav ({size} bytes), fetched over the bus")
            await recording.stored().delete()
        await channel.hangup()
        say(f"  hung up {data.name}")
        if len(transcript) >= 3:
            all_done.set()


async def main(bus: str, keep: bool) -> int:
    say("starting two Asterisk 22 sandboxes")
    nodes = [sandbox(1), sandbox(2)]
    for inst in nodes:
        where = f"ARI {inst.http_url}, SIP 127.0.0.1:{inst.sip_port}"
        say(f"  {inst.name}: {where}, node {inst.entity_id}")
    bus_url = ensure_rabbitmq() if bus == "rabbitmq" else ensure_nats()
    shown = bus_url.replace("guest:guest@", "")
    say(f"message bus: {shown}")
    proxies = [await start_proxy(inst, bus_url) for inst in nodes]
    transcript: list[str] = []
    all_done = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    try:
        client = await ari_proxy.connect(bus_url, application=APP, timeout=5.0)
        assert isinstance(client, ProxyClient)
        async with client:
            deadline = time.monotonic() + 30
            while len(client.nodes()) < len(nodes) and time.monotonic() < deadline:
                await client.refresh()
                await asyncio.sleep(0.2)
            say("proxies discovered: " + ", ".join(n.node for n in client.nodes()))
            calls = await client.listen()

            async def take() -> None:
                async for call in calls:
                    task = asyncio.create_task(handle(call, transcript, all_done))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

            taker = asyncio.create_task(take())
            say("placing a SIP call into each Asterisk, and a Local call through the proxy")
            local = await client.channels.originate("Local/wait@default", node=nodes[0].entity_id)
            say(f"  originated {local.id} on {local.node}")
            results = await asyncio.gather(
                *(sipp_calls(inst, f"stasis-{APP}", calls=1, timeout=60) for inst in nodes)
            )
            for inst, result in zip(nodes, results, strict=True):
                say(f"  sipp -> {inst.name}: {result.successful} call(s) completed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done.wait(), 30)
            if tasks:
                await asyncio.wait(tasks, timeout=30)
            ok = len(transcript) == 3 and all(r.successful == 1 for r in results)
            say(f"demo {'succeeded' if ok else 'FAILED'}: {len(transcript)} calls handled")
            if keep:
                say(f"stack is up; call stasis-{APP}@127.0.0.1:{nodes[0].sip_port}; Ctrl-C stops")
                stop_event = asyncio.Event()
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop_event.set)
                await stop_event.wait()
            calls.close()
            taker.cancel()
            return 0 if ok else 1
    finally:
        for proc in proxies:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
        say(f"proxies stopped (exit codes {[p.returncode for p in proxies]})")
        if not keep:
            for inst in nodes:
                stop(inst.name)
            say("sandboxes stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bus", choices=["nats", "rabbitmq"], default="nats")
    parser.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(args.bus, args.keep)))
