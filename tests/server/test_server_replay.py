"""Replay of the recorded Go traffic (tests/vectors/go-v5-nats.jsonl) against our server.

Every recorded request is sent, in order and at the recorded pace, as raw NATS in Go's exact
JSON to the same subject form, with the recorded app `test` and node replaced by ours (and the
few server-generated IDs mapped as our replies reveal them). Each reply is compared with Go's
for shape: the same top-level fields (ours may add the extensions `status`, `code`, `message`
and `node`, which Go ignores), the same `error` text, the same key fields, and in `data` the
same entity with every field Go sent present in ours with the same JSON type (ours carry
Asterisk's whole object, a superset; a Go `null` stands for "absent" and may be left out).

`DIFFERENCES` lists every deliberate departure from Go (docs/protocol.md, "Go defects fixed",
and tests/vectors/README.md), with the check that applies instead.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from server_helpers import Collector, collect, gather, request

from ari_proxy import __version__
from ari_proxy.protocol import Response
from ari_proxy.testing import Instance, running_proxy, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`

VECTORS = Path(os.environ["ARI_PROXY_VECTORS"]) / "go-v5-nats.jsonl"
GO_APP = "test"
GO_NODE = "02:fc:00:00:00:01"
# Our extensions (docs/protocol.md): every field of ours beyond Go's four.
EXTRA_REPLY_FIELDS = set(Response.__struct_fields__) - {"error", "data", "key", "keys"}


@dataclass(frozen=True)
class Record:
    seq: int
    t: float
    subject: str
    role: str
    body: Any
    reply: Any = None  # Go's reply body, if there was one
    reply_to: str = ""  # "inbox" (unicast request), "rp" (gather) or "" (none)
    note: str = ""


def load() -> list[Record]:
    lines = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    replies = {r["for_seq"]: r for r in lines if r["role"] == "reply"}
    out = []
    for r in lines:
        if r["role"] not in ("request", "ping"):
            continue
        reply = replies.get(r["seq"])
        kind = ""
        if reply is not None:
            kind = "inbox" if reply["subject"].startswith("_INBOX.") else "rp"
        elif r["reply_to"]:
            kind = "inbox"
        out.append(
            Record(
                seq=r["seq"],
                t=r["t"],
                subject=r["subject"],
                role=r["role"],
                body=r["body"],
                reply=reply["body"] if reply else None,
                reply_to=kind,
                note=r.get("note", ""),
            )
        )
    return out


# --- deliberate differences ------------------------------------------------------------------

Check = Callable[[Any, Any], None]


def _error_is(prefix: str) -> Check:
    def check(go: Any, ours: Any) -> None:
        assert ours["error"].startswith(prefix), ours

    return check


def _list_error(go: Any, ours: Any) -> None:
    # Go's ARI library decodes the body before it checks the status, so an error answer to a
    # list call reads as a JSON decode error (vectors README, observation 2); ours says what
    # Asterisk said.
    assert go["error"].startswith(("failed to decode response", "failed to get data")), go
    assert "Non-2XX response: " in ours["error"], ours
    assert ours["status"] >= 400


def _keys_with_ids(go: Any, ours: Any) -> None:
    # SoundList: Go's keys carry no id (its client reads `name`, Asterisk sends `id`), so the
    # key filter cannot work; ours carry the sound id and the filter applies (docs/protocol.md).
    assert all("id" not in k for k in go["keys"])
    assert ours["keys"] and all(k["kind"] == "sound" and k["id"] for k in ours["keys"])


def _sound_filtered(go: Any, ours: Any) -> None:
    _keys_with_ids(go, ours)
    assert [k["id"] for k in ours["keys"]] == ["hello-world"], ours["keys"][:3]


def _mailbox_list(go: Any, ours: Any) -> None:
    # Asterisk without res_ari_mailboxes: Go's list call reports a decode error; ours reports
    # the 404 (MailboxList is otherwise never empty in ours: Go defect 18).
    _list_error(go, ours)


def _bridge_key_kind(go: Any, ours: Any) -> None:
    # BridgeCreate with a key that has no kind: Go copies the empty kind (README obs. 12); ours
    # names the entity.
    assert "kind" not in go["key"] and ours["key"]["kind"] == "bridge"
    assert ours["key"]["id"].endswith("-br")


def _non_json_reply(go: Any, ours: Any) -> None:
    # Go sends no reply to a body that is not JSON (observation 13); ours says why.
    assert go is None
    assert ours["error"].startswith("invalid request: not JSON"), ours
    assert ours["code"] == "bad_request"


def _snoop_null_options(go: Any, ours: Any) -> None:
    # Asterisk refuses a snoop without spy/whisper (observation 7), as for Go.
    assert ours["error"] == go["error"]


def _device_path(go: Any, ours: Any) -> None:
    # DeviceStateUpdate of `PJSIP/golden-nonexistent`: Go puts the ID in the path unescaped,
    # so the slash selects a route that does not exist (404); ours escapes it and gets
    # Asterisk's answer for that device: 409, not a Stasis-controlled device.
    assert go["error"] == "Non-2XX response: 404 Not Found"
    assert ours["error"] == "Non-2XX response: 409 Conflict" and ours["status"] == 409


DIFFERENCES: dict[int, tuple[str, Check]] = {
    69: ("AsteriskConfigData of a missing object: the 404, not a decode error", _list_error),
    123: ("DeviceStateUpdate: the ID is escaped in the path", _device_path),
    81: ("EndpointListByTech of an unknown tech: Asterisk's 404, not a decode error", _list_error),
    127: ("MailboxList: the 404 of a missing resource, not a decode error", _mailbox_list),
    137: ("SoundList keys carry the sound id", _keys_with_ids),
    139: ("SoundList keys carry the sound id", _keys_with_ids),
    141: ("SoundList: the key filter works because keys carry ids", _sound_filtered),
    607: ("BridgeCreate with a kind-less key: ours names the kind", _bridge_key_kind),
    673: ("a non-JSON body gets an error reply", _non_json_reply),
}
"""Requests whose replies differ from Go's on purpose, by `seq`: why, and the check instead."""


RETRIED = frozenset(
    {305, 307, 310, 318, 320, 324, 326, 328, 334, 355, 357, 359, 361, 363, 365, 840}
)
"""Requests about a playback or recording in progress, whose outcome depends on how far the
media got, and the channel list at the end, which Asterisk may answer while the channels hung
up just before are still going away (Asterisk's pace, not the proxy's): retried for a few
seconds until the reply has Go's shape. All are reads or idempotent controls."""


# --- comparison ------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _superset(go: Any, ours: Any, where: str, problems: list[str]) -> None:
    """Every member Go sent is in ours with the same JSON type (Go's null: may be absent)."""
    if isinstance(go, dict):
        if not isinstance(ours, dict):
            problems.append(f"{where}: {_json_type(go)} vs {_json_type(ours)}")
            return
        for name, value in go.items():
            if name not in ours:
                if value is not None:
                    problems.append(f"{where}.{name}: missing")
                continue
            _superset(value, ours[name], f"{where}.{name}", problems)
    elif isinstance(go, list):
        if not isinstance(ours, list):
            problems.append(f"{where}: list vs {_json_type(ours)}")
        elif go and ours:
            _superset(go[0], ours[0], f"{where}[0]", problems)
    elif go is not None and _json_type(go) != _json_type(ours):
        problems.append(f"{where}: {_json_type(go)} vs {_json_type(ours)}")


def compare(go: Any, ours: Any, subst: Callable[[Any], Any]) -> list[str]:
    """The shape differences between Go's reply and ours (empty when compatible)."""
    go = subst(go)
    problems: list[str] = []
    fields = set(ours) - EXTRA_REPLY_FIELDS
    if set(go) != fields:
        problems.append(f"top-level fields {sorted(go)} vs {sorted(fields)}")
    if go.get("error") != ours.get("error"):
        problems.append(f"error {go.get('error')!r} vs {ours.get('error')!r}")
    if ours.get("error") and not ours.get("code"):
        problems.append("error without a code")
    if "key" in go and "key" in ours and set(go["key"]) != set(ours["key"]):
        problems.append(f"key fields {sorted(go['key'])} vs {sorted(ours['key'])}")
    if go.get("keys") and ours.get("keys"):
        go_fields = set().union(*(set(k) for k in go["keys"]))
        our_fields = set().union(*(set(k) for k in ours["keys"]))
        if go_fields != our_fields:
            problems.append(f"keys fields {sorted(go_fields)} vs {sorted(our_fields)}")
    if "data" in go and "data" in ours:
        if set(go["data"]) != set(ours["data"]):
            problems.append(f"data fields {sorted(go['data'])} vs {sorted(ours['data'])}")
        else:
            _superset(go["data"], ours["data"], "data", problems)
    return problems


# --- the replay --------------------------------------------------------------------------------


class Substitution:
    """Go's app, node, log directory and generated IDs -> ours, in any JSON value."""

    def __init__(self, app: str, node: str, log_dir: str) -> None:
        self.prefix = f"{app}."
        self.app = app
        self.node = node
        self.log_dir = log_dir
        self.ids: dict[str, str] = {}

    def text(self, value: str) -> str:
        if value == GO_APP:
            return self.app
        value = value.replace(GO_NODE, self.node).replace("/var/log/asterisk/", self.log_dir)
        value = value.replace("Local/stasis@default", f"Local/stasis-{self.app}@default")
        value = value.replace(f"'{GO_APP}'", f"'{self.app}'")
        for old, new in self.ids.items():
            value = value.replace(old, new)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value

    def subject(self, subject: str) -> str:
        # Our own prefix instead of `ari.`: other servers on the shared test NATS (other
        # suites run beside this one) must not answer the broadcasts.
        subject = self.prefix + subject.removeprefix("ari.")
        tokens = subject.split(".")
        if len(tokens) >= 3 and tokens[2] == GO_APP:
            tokens[2] = self.app
        return ".".join(tokens).replace(GO_NODE, self.node)

    def learn(self, go: Any, ours: Any) -> None:
        """IDs our server generated where Go's did (a different ULID): map Go's to ours."""
        if not (isinstance(go, dict) and isinstance(ours, dict)):
            return
        go_id = (go.get("key") or {}).get("id", "")
        our_id = (ours.get("key") or {}).get("id", "")
        if go_id and our_id and self.text(go_id) != our_id:
            self.ids[go_id] = our_id


async def test_replay_of_the_go_vectors(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    records = load()
    assert len(records) == 251
    node = asterisk.entity_id
    subst = Substitution(app_name, node, asterisk.spec.log_dir + "/")
    mismatches: list[str] = []
    differences_seen: set[int] = set()
    prefix = subst.prefix
    # Go serves any application a request names; ours refuses by default (docs/security.md).
    async with running_proxy(
        asterisk, nats_url, app_name, prefix=prefix, isolate_applications=False
    ) as server:
        async with collect(
            nc, f"{prefix}announce", f"{prefix}event.{app_name}.>", f"{prefix}dialogevent.>"
        ) as announcements:
            counters = server.counters
            published = counters.events_published, counters.dialog_events_published
            loop = asyncio.get_running_loop()
            start = loop.time()
            for record in records:
                # Pacing: each request at its recorded time.
                await asyncio.sleep(max(0.0, start + record.t - loop.time()))
                subject = subst.subject(record.subject)
                data = record.body if isinstance(record.body, str) else subst(record.body)
                if record.role == "ping":

                    def announced(got: Collector = announcements) -> list[Any]:
                        return got.json(f"{prefix}announce")

                    before = len(announced())
                    await nc.publish(subject, json.dumps(data, separators=(",", ":")).encode())
                    await announcements.wait_for(lambda b=before: len(announced()) > b)
                    assert announced()[-1] == {
                        "node": node,
                        "application": app_name,
                        "features": ["listen", "handover"],
                        "epoch": server.epoch,
                        "version": __version__,
                    }
                    continue
                if record.reply_to == "rp":
                    replies = await gather(nc, subject, data, expected=1, timeout=3.0)
                    assert len(replies) == 1, f"seq {record.seq}: {len(replies)} replies"
                    ours = replies[0]
                else:
                    ours = await request(nc, subject, data, timeout=10.0)
                if record.seq in DIFFERENCES:
                    differences_seen.add(record.seq)
                    DIFFERENCES[record.seq][1](subst(record.reply), ours)
                else:
                    problems = compare(record.reply, ours, subst)
                    for _ in range(15 if record.seq in RETRIED else 0):  # bounded retries
                        if not problems:
                            break
                        await asyncio.sleep(0.2)
                        ours = await request(nc, subject, data, timeout=10.0)
                        problems = compare(record.reply, ours, subst)
                    if problems:
                        mismatches.append(f"seq {record.seq} ({record.note}): {problems}")
                subst.learn(record.reply, ours)

            def all_events_here() -> bool:
                # The last events: every one the server took is published and has reached us.
                subjects = [s for s, _ in announcements.messages]
                events = sum(s.startswith(f"{prefix}event.") for s in subjects)
                copies = sum(s.startswith(f"{prefix}dialogevent.") for s in subjects)
                return (
                    server.publisher.queued == 0
                    and events >= counters.events_published - published[0]
                    and copies >= counters.dialog_events_published - published[1]
                )

            await wait_until(all_events_here)
        stats = server.stats()
    assert not mismatches, "\n".join(mismatches)
    assert differences_seen == set(DIFFERENCES)
    check_events(announcements.messages, prefix, app_name, node, stats)


def check_events(
    messages: list[tuple[str, bytes]], prefix: str, app: str, node: str, stats: dict[str, Any]
) -> None:
    """The events of the drive: stamped, and each dialog copy sent once per dialog."""
    events = [json.loads(d) for s, d in messages if s.startswith(f"{prefix}event.")]
    copies = [(s, json.loads(d)) for s, d in messages if s.startswith(f"{prefix}dialogevent.")]
    assert len(events) > 100
    assert all(e["application"] == app and e["asterisk_id"] == node for e in events)
    seen = set()
    for subject, copy in copies:
        assert subject == f"{prefix}dialogevent.{copy['dialog']}"
        identity = (
            copy["dialog"],
            copy["type"],
            copy["timestamp"],
            json.dumps(copy, sort_keys=True),
        )
        assert identity not in seen, f"duplicate dialog copy: {identity[:3]}"  # Go: Go defect 11
        seen.add(identity)
    types = {c["type"] for _, c in copies}
    # The binding types Go gets wrong (Go defect 10) fire in ours: recordings reach dialogs.
    assert {"RecordingStarted", "RecordingFinished"} <= types, sorted(types)
    assert stats["events_dropped"] == 0 and stats["bad_frames"] == 0
