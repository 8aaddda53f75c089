"""Run the interoperation tests and write their matrix into docs/interop.md.

Every test marked `interop(client=..., server=..., bus=...)` is run (the conformance scenarios
through our server and through the real Go server, the Go client against our server, mixed
clusters); the bus comes from the marker or from the test's `bus_url` parameter. The results
replace the part of docs/interop.md between its two `matrix` comment lines, so the table is
produced by this command, never typed.

    scripts/interop            # run, print the matrix, update docs/interop.md
    scripts/interop --print    # run and print only

The Go binaries come from ARI_PROXY_GOREF (default ../shared/goref/bin): without them the Go
rows cannot be produced, and the command fails.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "interop.md"
START = "<!-- matrix:start (written by scripts/interop; do not edit by hand) -->"
END = "<!-- matrix:end -->"
TESTS = ["tests/conformance", "tests/interop"]
WHO = {"ours": "ours", "go": "Go", "go+ours": "Go + ours"}
BUSES = {"nats": "NATS", "rabbitmq": "RabbitMQ"}


@dataclass(frozen=True)
class Outcome:
    client: str
    server: str
    bus: str
    scenario: str
    passed: bool


class Recorder:
    """A pytest plugin that keeps the outcome of each interop test."""

    def __init__(self) -> None:
        self.cells: dict[str, tuple[str, str, str, str]] = {}
        self.outcomes: list[Outcome] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("interop")
            if marker is None:
                continue
            callspec = getattr(item, "callspec", None)
            params: dict[str, Any] = dict(callspec.params) if callspec else {}
            bus = marker.kwargs.get("bus") or _bus_of(params.get("bus_url", ""))
            name = getattr(item, "originalname", item.name)
            module = Path(str(item.path)).stem.removeprefix("test_")
            scenario = f"{module}: {name.removeprefix('test_').replace('_', ' ')}"
            self.cells[item.nodeid] = (
                marker.kwargs["client"],
                marker.kwargs["server"],
                bus,
                scenario,
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self.cells.get(report.nodeid)
        if cell is None:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes.append(Outcome(*cell, passed=report.passed))


def _bus_of(param: object) -> str:
    """The bus of a `bus_url` parameter: its id (`nats`, `rabbitmq`) or a URL."""
    text = str(param)
    if text in BUSES:
        return text
    return "rabbitmq" if text.startswith("amqp") else "nats"


def _versions() -> list[str]:
    from ari_proxy.testing import DEFAULT_ROOT, GoReference

    lines = []
    ref = GoReference.find(ROOT.parent / "shared/goref/bin")
    if ref is not None:
        lines.append(f"Go reference: `ari-proxy-go` {ref.version()} and `ari-goclient`")
    status = DEFAULT_ROOT / "var/lib/dpkg/status"
    if status.exists():
        found = re.search(r"Package: asterisk\n(?:.+\n)*?Version: (\S+)", status.read_text())
        if found:
            lines.append(f"Asterisk: {found.group(1)} (Debian sid, the test sandbox)")
    for what, argv in (
        ("NATS", ["nats-server", "--version"]),
        ("RabbitMQ", ["rabbitmqctl", "version"]),
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            lines.append(f"{what}: {done.stdout.strip().removeprefix('nats-server: ')}")
        except (OSError, subprocess.TimeoutExpired):
            pass
    lines.append(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )
    return lines


def render(outcomes: list[Outcome], versions: list[str]) -> str:
    """The generated part of docs/interop.md."""
    cells = collections.defaultdict(list)
    for outcome in outcomes:
        cells[(outcome.client, outcome.server, outcome.bus)].append(outcome)
    order = sorted(cells, key=lambda c: (list(WHO).index(c[0]), list(WHO).index(c[1]), c[2]))
    today = datetime.date.today().isoformat()
    lines = [
        START,
        f"Run by `scripts/interop` on {today}.",
        "",
        *[f"- {v}" for v in versions],
        "",
        "| client | server | bus | tests run | passed | failed |",
        "|---|---|---|---|---|---|",
    ]
    for cell in order:
        runs = cells[cell]
        passed = sum(o.passed for o in runs)
        lines.append(
            f"| {WHO[cell[0]]} | {WHO[cell[1]]} | {BUSES[cell[2]]} | {len(runs)} "
            f"| {passed} | {len(runs) - passed} |"
        )
    scenarios = sorted({o.scenario for o in outcomes})
    header = [f"{WHO[c[0]]} → {WHO[c[1]]}, {BUSES[c[2]]}" for c in order]
    lines += [
        "",
        "Each scenario, by client → server and bus (✓ passed, ✗ failed, blank: not run there):",
        "",
        "| scenario | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for scenario in scenarios:
        marks = []
        for cell in order:
            runs = [o for o in cells[cell] if o.scenario == scenario]
            marks.append("" if not runs else "✓" if all(o.passed for o in runs) else "✗")
        lines.append(f"| {scenario} | " + " | ".join(marks) + " |")
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print only; leave docs alone")
    args = parser.parse_args()
    os.environ.setdefault("ARI_PROXY_REQUIRE_GOREF", "1")
    recorder = Recorder()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-m", "interop", *[str(ROOT / t) for t in TESTS]],
        plugins=[recorder],
    )
    if not recorder.outcomes:
        print("scripts/interop: no interop test ran", file=sys.stderr)
        return 1
    block = render(recorder.outcomes, _versions())
    print(block)
    if not args.print:
        text = DOC.read_text()
        if START not in text or END not in text:
            print(f"scripts/interop: {DOC} lacks the matrix markers", file=sys.stderr)
            return 1
        head, rest = text.split(START, 1)
        DOC.write_text(head + block + rest.split(END, 1)[1])
        print(f"scripts/interop: wrote {DOC.relative_to(ROOT)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
