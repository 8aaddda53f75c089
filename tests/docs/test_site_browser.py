"""The built site in a real browser: Debian's headless Chromium, driven over the DevTools
protocol (a WebSocket, with aiohttp), opens pages served over HTTP. Each page renders (title,
main content), search finds "originate", and no page logs a console error. Screenshots of the
home page, of an API page and of the search results go to $ARI_PROXY_DOCS_SHOTS when set."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from docsite import Build

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]
# (path, words the title must hold, words the main content must hold)
PAGES = [
    ("", "ari-proxy", "Where to start"),
    ("tutorial/", "Tutorial", "Collect DTMF"),
    ("cookbook/", "Cookbook", "Recipe"),
    ("cookbook/external-media/", "External media", "external_media"),
    ("migration/", "Migrating", "From the Go client to the Python client"),
    ("reference/ari_proxy/", "ari_proxy", "Raises"),
    ("reference/resources/", "Resources", "originate"),
    ("reference/exceptions/", "Exceptions", "AriProxyError"),
]
SHOTS = {"": "docs-home.png", "reference/ari_proxy/": "docs-api-ari_proxy.png"}


class Page:
    """One browser tab, over its DevTools WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[str] = []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = message.json()
            if "id" in data:
                self.replies.pop(data["id"]).set_result(data)
                continue
            method, params = data["method"], data.get("params", {})
            if method == "Runtime.exceptionThrown":
                self.errors.append(str(params["exceptionDetails"]))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                self.errors.append(str(params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append(str(params["entry"]))
            self.events.put_nowait(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        reply = self.replies[ident] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        data = await asyncio.wait_for(reply, 30)
        assert "error" not in data, (method, data)
        return dict(data["result"])

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        """Navigate to `url` and return once its load event fired."""
        while not self.events.empty():
            self.events.get_nowait()
        await self.send("Page.navigate", url=url)
        async with asyncio.timeout(30):
            while (await self.events.get())["method"] != "Page.loadEventFired":
                pass

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def serving(site: Path) -> AsyncIterator[str]:
    """The built site over HTTP on a free loopback port (directories serve index.html)."""

    root = await asyncio.to_thread(site.resolve)

    def locate(relative: str) -> Path | None:
        target = (root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_relative_to(root) and target.is_file() else None

    async def page(request: web.Request) -> web.StreamResponse:
        target = await asyncio.to_thread(locate, request.match_info["path"])
        if target is None:
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    app = web.Application()
    app.router.add_get("/{path:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile, and one tab of it."""
    binary = shutil.which("chromium")
    assert binary is not None, "chromium is not installed (scripts/bootstrap installs it)"
    with tempfile.TemporaryDirectory(prefix="ari-proxy-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        try:
            async with asyncio.timeout(30):  # it says where DevTools listens, then keeps talking
                while True:
                    line = (await process.stderr.readline()).decode()
                    assert line, "chromium exited before DevTools listened"
                    found = re.search(r"DevTools listening on (ws://\S+)", line)
                    if found:
                        break
            drain = asyncio.get_running_loop().create_task(process.stderr.read())
            http = "http://" + found.group(1).split("/")[2]
            async with aiohttp.ClientSession() as session:
                async with session.put(f"{http}/json/new?about:blank") as response:
                    target = await response.json(content_type=None)
                async with session.ws_connect(
                    target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
                ) as ws:
                    tab = Page(ws)
                    for domain in ("Page", "Runtime", "Log"):
                        await tab.send(f"{domain}.enable")
                    await tab.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=1280,
                        height=900,
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    yield tab
                    tab.reader.cancel()
            drain.cancel()
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()


async def test_pages_render_search_works_and_nothing_logs_an_error(built_site: Build) -> None:
    assert built_site.returncode == 0, built_site.output
    shots = os.environ.get("ARI_PROXY_DOCS_SHOTS")
    async with serving(built_site.site) as base, chromium() as tab:
        for path, title, content in PAGES:
            await tab.open(base + path)
            seen = await tab.evaluate(
                "({title: document.title,"
                " main: document.querySelector('article.md-content__inner')?.innerText ?? '',"
                " h1: document.querySelector('article h1')?.innerText ?? ''})"
            )
            assert title in seen["title"], (path, seen["title"])
            assert seen["h1"], path
            assert content in seen["main"], (path, content)
            if shots and path in SHOTS:
                await asyncio.to_thread(Path(shots).mkdir, parents=True, exist_ok=True)
                await tab.screenshot(Path(shots) / SHOTS[path])

        # Search runs in a web worker over search/search_index.json: type, then wait for hits.
        await tab.open(base)
        await tab.evaluate("document.querySelector('input.md-search__input').focus()")
        await tab.send("Input.insertText", text="originate")
        hits = await tab.evaluate(
            """new Promise(resolve => {
                const look = () => {
                  const items = [...document.querySelectorAll('.md-search-result__item')];
                  if (items.length) resolve(items.map(i => i.innerText));
                  else setTimeout(look, 50);
                };
                look();
            })"""
        )
        assert hits and any("originate" in hit.lower() for hit in hits), hits
        if shots:
            await tab.screenshot(Path(shots) / "docs-search-originate.png")
        assert tab.errors == []
