"""Generated hostile traffic against a server process: `python -m bench fuzz [-n N]` (100,000 by
default).

The server (`python -m ari_proxy.server`, logging to a file) serves one application beside the
Asterisk sandbox; `ari_proxy.testing.BusFuzzer` messages go to it raw on NATS, 64 requests in
flight. The report: what was sent and what came back, how many log lines of each level the
server wrote (an error-level line is a failure), its memory before and after, whether it still
answers, and what the generated requests left in Asterisk (every such resource must carry the
generator's prefix; they are removed afterwards).
"""

from __future__ import annotations

import collections
import json
import tempfile
import time
from pathlib import Path

import nats

import ari_proxy
from ari_proxy.testing import (
    BusFuzzer,
    Instance,
    asterisk_resources,
    ensure_nats,
    remove_resources,
    send_fuzz,
)
from ari_proxy.testing._fuzz import PREFIX

from ._servers import OurServer
from ._stats import table

APP = "bench-fuzz"


def _levels(log: Path) -> collections.Counter[str]:
    """How many lines of each level the server wrote (the log is removed)."""
    lines = log.read_text().splitlines()
    log.unlink()
    return collections.Counter(json.loads(line).get("level", "?") for line in lines if line)


async def run(inst: Instance, *, n: int = 100_000, seed: int = 7) -> str:
    url = ensure_nats()
    log = Path(tempfile.mkstemp(prefix="ari-proxy-fuzz-", suffix=".log")[1])
    native = await ari_proxy.ari.connect(inst.http_url, inst.username, inst.password, APP)
    server = OurServer(inst, url, APP, log=log).start()
    try:
        await server.ready(timeout=30)
        before = await asterisk_resources(native)
        rss_before = server.rss()
        nc = await nats.connect(url)
        started = time.perf_counter()
        try:
            report = await send_fuzz(nc, BusFuzzer(seed).messages(n, APP, inst.entity_id))
        finally:
            await nc.close()
        elapsed = time.perf_counter() - started
        async with ari_proxy.connect(url, application=APP) as client:
            info = await client.asterisk.info()
        serving = info.system is not None and info.system.entity_id == inst.entity_id
        rss_after = server.rss()
        made = await asterisk_resources(native) - before
        await remove_resources(native, made)
        remaining = await asterisk_resources(native) - before
    finally:
        server.stop()
        await native.close()
    levels = _levels(log)
    foreign = sorted(ident for _, ident in made if not ident.startswith(PREFIX))
    rows = [
        ["messages sent", f"{report.total:,} in {elapsed:.1f} s ({report.total / elapsed:,.0f}/s)"],
        ["by family", ", ".join(f"{k} {v:,}" for k, v in sorted(report.sent.items()))],
        ["replies", ", ".join(f"{k} {v:,}" for k, v in report.replies.most_common())],
        ["server log lines", ", ".join(f"{k} {v:,}" for k, v in sorted(levels.items()))],
        ["error-level lines", str(levels["error"] + levels["critical"])],
        ["server RSS", f"{rss_before / 2**20:.1f} MB before, {rss_after / 2**20:.1f} MB after"],
        ["still serving", "yes" if serving else "NO"],
        ["made in Asterisk", f"{len(made)}; without the prefix: {foreign or 'none'}"],
        ["left after removal", str(len(remaining))],
    ]
    return table(f"Fuzz: {n:,} generated messages, seed {seed}", rows, ["", ""])
