"""The cluster map: which proxies (Asterisk node, application) are alive, from their announcements.

The client pings at start and periodically; every proxy answers with an announcement. A proxy
not heard from for `max_age` seconds is forgotten (Go keeps counting it for 5 minutes, so its
gathers wait the whole window), and one of ours that says it is leaving is forgotten at once.
Gathers use the map to stop as soon as every live proxy answered. An announcement with a new
epoch for a known proxy means its process was replaced: `restarted`; so does the return, with
another epoch, of one that left or was forgotten (a proxy stopped cleanly and started again).

Announcements are not authenticated (only the bus's permissions can keep others from
publishing them: docs/security.md), so the map assumes some are forged:

- **A cap per application**: at most `max_nodes` proxies (1,024 by default) per application,
  and `max_other_nodes` (4,096) for all the applications other than the client's own together.
  A proxy that would exceed it takes the place of, in this order: a proxy silent for `max_age`;
  a proxy gathers no longer wait for (see below), the longest-excluded first; the proxy that
  joined last. The proxies known longest are kept: under a flood of made-up nodes, the real
  servers (which announce only now and then) stay, rather than the stalest being dropped. A
  warning says so, at most once a minute.
- **Standing**: a gather waits only for the proxies in good standing. One that was waited for
  and did not answer by the end of the window is no longer waited for (it costs one window,
  not one per request) until it answers a gather (a reply that names its node: a list's keys,
  a get's key) or announces itself again at least `retry_after` seconds (10) after it missed,
  20 s after two misses in a row, at most `max_age`. A gather still takes the replies of the
  proxies it does not wait for when they come in time. Most replies do not name their node (an
  empty list, an error, data): when a window ends with fewer replies than proxies waited for,
  as many of the unnamed ones as are missing are blamed, those never named by a reply first,
  then those that announced themselves least often (a live server announces itself on every
  ping), the last joined first. When no proxy is in good standing, a gather waits for all.
- **Newcomers**: at most `max_new` proxies (64) per application join in good standing within
  `retry_after` seconds; beyond that (a flood of new node IDs) they join as if they had just
  missed a gather, so a sustained flood costs a gather at most one window per `retry_after`.
  A warning says so, at most once a minute.
- Node and application must be subject tokens of at most 255 characters; an epoch of at most
  255; at most 16 features of at most 64 characters each are kept. Other announcements are
  ignored.

The work per announcement is O(1): per-application maps ordered by last announcement, by
joining and by exclusion, and counts kept up to date, so `expected()`, `count()` and `get()`
cost O(1) (plus forgetting the proxies that fell silent since the last call, once each).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from ..protocol import MAX_TOKEN, valid_token

__all__ = [
    "DEFAULT_MAX_NEW",
    "DEFAULT_MAX_NODES",
    "DEFAULT_MAX_OTHER_NODES",
    "DEFAULT_RETRY_AFTER",
    "Cluster",
    "Node",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_NODES = 1024
"""Proxies kept per application."""
DEFAULT_MAX_OTHER_NODES = 4096
"""Proxies kept for all the applications other than the client's own, together."""
DEFAULT_RETRY_AFTER = 10.0
"""Seconds after a missed gather before an announcement puts a proxy back in good standing (the
client's default ping interval: a live server announces itself on every ping)."""
DEFAULT_MAX_NEW = 64
"""Proxies per application that join in good standing within `retry_after` seconds."""

_MAX_FEATURES = 16
_MAX_FEATURE = 64
_WARN_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Node:
    """One proxy: the Asterisk entity ID it serves and the application it serves it for."""

    node: str
    application: str
    last_seen: float
    """`time.monotonic()` of its latest announcement."""
    features: frozenset[str] = frozenset()
    """What the proxy offers beyond Go's protocol (`listen`); empty for a Go server."""
    good_standing: bool = True
    """Whether gathers wait for it (False after it missed one, until it answers or announces
    itself again: see `Cluster`)."""


NodeCallback = Callable[[str, Node], None]
"""Called with `"joined"`, `"left"` or `"restarted"` and the node."""


@dataclass(slots=True, eq=False)
class _Member:
    node: str
    application: str
    last_seen: float
    features: frozenset[str]
    epoch: str
    joined: int
    """The order of joining (the map's count of joins then)."""
    since: float
    """When it last entered good standing (a gather that started before does not count it)."""
    excluded: bool = False
    """Gathers do not wait for it."""
    excluded_at: float = 0.0
    missed: int = 0
    """Gathers in a row it was waited for and did not answer."""
    proven: bool = False
    """A gather reply named it at least once."""
    announced: int = 1
    """Its announcements (a live server announces itself on every ping; a forged one often
    once)."""

    def public(self) -> Node:
        return Node(self.node, self.application, self.last_seen, self.features, not self.excluded)


@dataclass(slots=True, eq=False)
class _App:
    """The proxies of one application, indexed so every update is O(1)."""

    name: str
    by_seen: OrderedDict[str, _Member] = field(default_factory=OrderedDict)
    """Ordered by latest announcement: the first is the stalest."""
    by_join: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Ordered by joining: the last joined last."""
    excluded: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Not waited for, ordered by exclusion."""
    features: Counter[str] = field(default_factory=Counter)
    """How many members offer each feature."""
    window_start: float = float("-inf")
    joined_in_window: int = 0

    def uncount(self, features: frozenset[str]) -> None:
        for feature in features:
            left = self.features[feature] - 1
            if left > 0:
                self.features[feature] = left
            else:
                del self.features[feature]


class Cluster:
    """Live proxies, by (node, application), kept fresh by announcements.

    Args:
        max_age: seconds of silence after which a proxy is forgotten.
        clock: the monotonic clock.
        application: the client's own application (`max_other_nodes` counts the others).
        max_nodes: proxies kept per application.
        max_other_nodes: proxies kept for every other application together.
        retry_after: seconds after a missed gather before an announcement puts a proxy back
            in good standing (doubling with each further miss, at most `max_age`); also the
            window of `max_new`.
        max_new: proxies per application that join in good standing within `retry_after`.
    """

    def __init__(
        self,
        *,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        application: str = "",
        max_nodes: int = DEFAULT_MAX_NODES,
        max_other_nodes: int = DEFAULT_MAX_OTHER_NODES,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_new: int = DEFAULT_MAX_NEW,
    ) -> None:
        if max_nodes < 1 or max_other_nodes < 1 or max_new < 0:
            raise ValueError("max_nodes and max_other_nodes must be positive, max_new not negative")
        self.max_age = max_age
        self.application = application
        self.max_nodes = max_nodes
        self.max_other_nodes = max_other_nodes
        self.retry_after = retry_after
        self.max_new = max_new
        self._clock = clock
        self._apps: dict[str, _App] = {}
        self._others: OrderedDict[tuple[str, str], None] = OrderedDict()
        """Members of other applications than ours, ordered by joining."""
        self._callbacks: list[NodeCallback] = []
        self.dropped = 0
        """Proxies dropped to keep a cap."""
        self.on_probation = 0
        """Proxies that joined beyond `max_new` (not waited for at first)."""
        self._warned: dict[str, tuple[float, int]] = {}
        self._joins = 0
        self._departed: OrderedDict[tuple[str, str], str] = OrderedDict()
        """(node, application) -> the epoch of a proxy forgotten (it left, went silent or was
        dropped), so that its return with another epoch reads as a restart: a proxy stopped
        cleanly and started again is still a process replaced."""

    # --- notifications -----------------------------------------------------------------------

    def on_change(self, callback: NodeCallback) -> None:
        """Call `callback("joined" | "left" | "restarted", node)` when a proxy appears, is
        forgotten, or announces a new epoch. Called synchronously, once per change: a callback
        must not block (under a flood of announcements it is called once per made-up node)."""
        self._callbacks.append(callback)

    def _notify(self, change: str, member: _Member) -> None:
        if not self._callbacks:
            return
        node = member.public()
        for callback in list(self._callbacks):
            try:
                callback(change, node)
            except Exception:
                logger.exception("cluster callback failed")

    def _warn(self, what: str, message: str, *args: object) -> None:
        """Log `message` at most once per `_WARN_EVERY` seconds per kind of warning `what`,
        with how many times it happened meanwhile."""
        now = self._clock()
        last, count = self._warned.get(what, (float("-inf"), 0))
        if now - last < _WARN_EVERY:
            self._warned[what] = (last, count + 1)
            return
        self._warned[what] = (now, 0)
        if count:
            logger.warning(message + " (and %d more times since the last warning)", *args, count)
        else:
            logger.warning(message, *args)

    # --- announcements -----------------------------------------------------------------------

    def seen(
        self,
        node: str,
        application: str,
        features: Collection[str] = frozenset(),
        epoch: str = "",
    ) -> None:
        """Record an announcement (ignored when its node, application or epoch are not what a
        proxy of ours or Go's sends)."""
        if not (_token(node) and _token(application) and len(epoch) <= MAX_TOKEN):
            return
        now = self._clock()
        app = self._apps.get(application)
        if app is not None:
            self._expire(app, now)
            member = app.by_seen.get(node)
            if member is not None:
                app.by_seen.move_to_end(node)  # now the freshest
                self._refresh(app, member, _features(features), epoch, now)
                return
        self._join(node, application, _features(features), epoch, now)

    def _refresh(
        self, app: _App, member: _Member, features: frozenset[str], epoch: str, now: float
    ) -> None:
        member.last_seen = now
        member.announced += 1
        if features != member.features:
            app.uncount(member.features)
            app.features.update(features)
            member.features = features
        if member.excluded and now - member.excluded_at >= self._backoff(member.missed):
            self._include(app, member, now)
        if epoch and epoch != member.epoch:
            previous, member.epoch = member.epoch, epoch
            if previous:
                logger.debug("proxy restarted: node %s application %s", member.node, app.name)
                self._notify("restarted", member)

    def _join(
        self, node: str, application: str, features: frozenset[str], epoch: str, now: float
    ) -> None:
        ours = application == self.application
        full = self._apps.get(application)
        if full is not None and len(full.by_seen) >= self.max_nodes:
            self._make_room(full)
        if not ours and len(self._others) >= self.max_other_nodes:
            self._make_room_for_others()
        app = self._apps.get(application)
        if app is None:
            app = self._apps[application] = _App(application)
        self._joins += 1
        member = _Member(node, application, now, features, epoch, joined=self._joins, since=now)
        previous = self._departed.pop((node, application), "")
        app.by_seen[node] = member
        app.by_join[node] = None
        app.features.update(features)
        if not ours:
            self._others[(node, application)] = None
        if now - app.window_start >= self.retry_after:
            app.window_start, app.joined_in_window = now, 0
        app.joined_in_window += 1
        if app.joined_in_window > self.max_new:
            # A flood of new node IDs: not waited for until it announces itself again later.
            member.excluded, member.excluded_at = True, now
            app.excluded[node] = None
            self.on_probation += 1
            self._warn(
                "new",
                "more than %d proxies of application %s announced themselves within %gs; "
                "gathers do not wait for the newest until they answer or announce again",
                self.max_new,
                application,
                self.retry_after,
            )
        logger.debug("proxy joined: node %s application %s", node, application)
        self._notify("joined", member)
        if previous and epoch and epoch != previous:
            logger.debug("proxy restarted: node %s application %s", node, application)
            self._notify("restarted", member)

    def _make_room(self, app: _App) -> None:
        """Drop one member of full `app` (its silent ones are gone already): the longest one
        gathers do not wait for, else the last joined."""
        if app.excluded:
            victim = app.by_seen[next(iter(app.excluded))]
        else:
            victim = app.by_seen[next(reversed(app.by_join))]
        self._drop(app, victim)
        self._warn(
            "cap",
            "application %s has %d proxies, the most the client keeps: dropped node %s",
            app.name,
            self.max_nodes,
            victim.node,
        )

    def _make_room_for_others(self) -> None:
        """Drop the member of the other applications that joined last."""
        node, application = next(reversed(self._others))
        app = self._apps[application]
        self._drop(app, app.by_seen[node])
        self._warn(
            "others",
            "the client keeps at most %d proxies of other applications: dropped node %s of %s",
            self.max_other_nodes,
            node,
            application,
        )

    def _drop(self, app: _App, member: _Member) -> None:
        self.dropped += 1
        self._remove(app, member)
        self._notify("left", member)

    def _remove(self, app: _App, member: _Member) -> None:
        if member.epoch:
            self._departed[(member.node, app.name)] = member.epoch
            self._departed.move_to_end((member.node, app.name))
            if len(self._departed) > self.max_nodes + self.max_other_nodes:
                self._departed.popitem(last=False)
        del app.by_seen[member.node]
        del app.by_join[member.node]
        app.excluded.pop(member.node, None)
        app.uncount(member.features)
        self._others.pop((member.node, app.name), None)
        if not app.by_seen and self._apps.get(app.name) is app:
            del self._apps[app.name]

    def _expire(self, app: _App, now: float) -> list[_Member]:
        """Forget the members of `app` silent for longer than `max_age` (the first ones of
        `by_seen`): amortised O(1)."""
        gone: list[_Member] = []
        limit = now - self.max_age
        while app.by_seen:
            member = next(iter(app.by_seen.values()))
            if member.last_seen >= limit:
                break
            self._remove(app, member)
            gone.append(member)
            logger.debug("proxy silent for %.0fs: node %s", now - member.last_seen, member.node)
            self._notify("left", member)
        return gone

    def _app(self, application: str) -> _App | None:
        """The live members of `application` (the silent ones forgotten first)."""
        app = self._apps.get(application)
        if app is not None:
            self._expire(app, self._clock())
        return self._apps.get(application)

    # --- leaving -----------------------------------------------------------------------------

    def leave(self, node: str, application: str, epoch: str = "") -> None:
        """A proxy said it is stopping: forget it now (unless it already restarted with a new
        epoch)."""
        app = self._apps.get(application)
        member = app.by_seen.get(node) if app is not None else None
        if app is None or member is None or (epoch and member.epoch and member.epoch != epoch):
            return
        self._remove(app, member)
        self._notify("left", member)

    def prune(self) -> list[Node]:
        """Forget proxies silent for longer than `max_age`; return them."""
        now = self._clock()
        return [m.public() for app in list(self._apps.values()) for m in self._expire(app, now)]

    def forget_node(self, node: str) -> None:
        """Drop every entry of `node` (it said it is gone, or requests to it fail)."""
        for app in list(self._apps.values()):
            member = app.by_seen.get(node)
            if member is not None:
                self._remove(app, member)
                self._notify("left", member)

    # --- queries -----------------------------------------------------------------------------

    def nodes(self, application: str = "", node: str = "") -> list[Node]:
        """Live proxies, optionally of one application and/or node, by node and application."""
        if application:
            app = self._app(application)
            if app is None:
                return []
            if node:
                member = app.by_seen.get(node)
                return [member.public()] if member is not None else []
            return [m.public() for _, m in sorted(app.by_seen.items())]
        self.prune()
        found = [
            m.public()
            for app in self._apps.values()
            for m in app.by_seen.values()
            if not node or m.node == node
        ]
        return sorted(found, key=lambda n: (n.node, n.application))

    def get(self, node: str, application: str) -> Node | None:
        """The live proxy `node` of `application`, if there is one."""
        app = self._app(application)
        member = app.by_seen.get(node) if app is not None else None
        return member.public() if member is not None else None

    def count(self, application: str, *, without: str = "") -> int:
        """How many live proxies serve `application` (only those not offering the feature
        `without`, when given)."""
        app = self._app(application)
        if app is None:
            return 0
        return len(app.by_seen) - (app.features[without] if without else 0)

    def expected(self, application: str = "", node: str = "") -> int:
        """How many proxies a broadcast for (application, node) waits for: the live ones in good
        standing."""
        if not application:
            return sum(self.expected(a, node) for a in list(self._apps))
        app = self._app(application)
        if app is None:
            return 0
        if node:
            member = app.by_seen.get(node)
            return int(member is not None and not member.excluded)
        return len(app.by_seen) - len(app.excluded)

    def waits_for(self, node: str, application: str) -> bool:
        """Whether a gather for `application` waits for `node` (live, in good standing)."""
        app = self._apps.get(application)
        member = app.by_seen.get(node) if app is not None else None
        return member is not None and not member.excluded

    @property
    def _epochs(self) -> Mapping[tuple[str, str], str]:
        """(node, application) -> the epoch of its process, live (for tests)."""
        return _Epochs(self._apps)

    def now(self) -> float:
        """The map's clock (for `gathered`)."""
        return self._clock()

    def held(self, application: str = "") -> int:
        """Proxies held, of `application` or of every one (those silent for longer than
        `max_age` and not yet forgotten included): never more than the caps."""
        if application:
            app = self._apps.get(application)
            return len(app.by_seen) if app is not None else 0
        return sum(len(app.by_seen) for app in self._apps.values())

    # --- standing ----------------------------------------------------------------------------

    def gathered(
        self,
        application: str,
        started: float,
        answered: Collection[str],
        anonymous: int,
        *,
        complete: bool,
    ) -> None:
        """Account for a gather of `application` that began at `started` (`now()`).

        Args:
            answered: the nodes its replies named: each is in good standing again.
            anonymous: replies that named no node.
            complete: whether it ended because every proxy waited for had answered (or the
                first good reply came); when not, the window ended, and as many of the proxies
                waited for that no reply named as `anonymous` does not account for are no
                longer waited for: those never named by a reply first, then those that
                announced themselves least often, the last joined first.
        """
        app = self._apps.get(application)
        if app is None:
            return
        now = self._clock()
        for name in answered:
            member = app.by_seen.get(name)
            if member is not None:
                member.proven = True
                member.missed = 0
                if member.excluded:
                    self._include(app, member, now)
        if complete:
            return
        silent = [
            m
            for m in app.by_seen.values()
            if not m.excluded and m.since <= started and m.node not in answered
        ]
        missing = len(silent) - anonymous
        if missing <= 0:
            return
        silent.sort(key=lambda m: (m.proven, m.announced, -m.joined))
        excluded = silent[:missing]
        for member in excluded:
            member.missed += 1
            member.excluded, member.excluded_at = True, now
            app.excluded[member.node] = None
        names = ", ".join(m.node for m in excluded[:3]) + (", ..." if len(excluded) > 3 else "")
        logger.warning(
            "%d prox%s of application %s did not answer a gather (node %s): not waited for until "
            "they answer or announce themselves again",
            len(excluded),
            "y" if len(excluded) == 1 else "ies",
            application,
            names,
        )

    def _include(self, app: _App, member: _Member, now: float) -> None:
        member.excluded = False
        member.since = now
        app.excluded.pop(member.node, None)

    def _backoff(self, missed: int) -> float:
        return min(self.max_age, self.retry_after * (1 << min(16, max(0, missed - 1))))


class _Epochs(Mapping[tuple[str, str], str]):
    """A live view of the members' epochs."""

    def __init__(self, apps: dict[str, _App]) -> None:
        self._apps = apps

    def __getitem__(self, key: tuple[str, str]) -> str:
        node, application = key
        app = self._apps.get(application)
        member = app.by_seen.get(node) if app is not None else None
        if member is None or not member.epoch:
            raise KeyError(key)
        return member.epoch

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for app in list(self._apps.values()):
            for member in list(app.by_seen.values()):
                if member.epoch:
                    yield member.node, app.name

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _token(value: str) -> bool:
    return valid_token(value)


def _features(features: Collection[str]) -> frozenset[str]:
    if (
        isinstance(features, frozenset)
        and len(features) <= _MAX_FEATURES
        and all(len(f) <= _MAX_FEATURE for f in features)
    ):
        return features
    kept: list[str] = []
    for feature in features:
        if len(feature) <= _MAX_FEATURE:
            kept.append(feature)
            if len(kept) == _MAX_FEATURES:
                break
    return frozenset(kept)
