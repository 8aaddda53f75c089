"""Applications, Asterisk itself (info, variables, modules, logging, dynamic configuration),
device states, endpoints, mailboxes and user events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from .. import protocol as p
from ..protocol import Key
from ..spec import decode_model
from ..spec.models import (
    Application,
    AsteriskInfo,
    AsteriskPing,
    ConfigTuple,
    DeviceState,
    Endpoint,
    LogChannel,
    Mailbox,
    Module,
)
from ._handles import Handle, Namespace

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "ApplicationHandle",
    "Applications",
    "Asterisk",
    "DeviceStateHandle",
    "DeviceStates",
    "EndpointHandle",
    "Endpoints",
    "Events",
    "LogChannelHandle",
    "Logging",
    "MailboxHandle",
    "Mailboxes",
    "ModuleHandle",
    "Modules",
]


# --- applications -----------------------------------------------------------------------------


class Applications(Namespace):
    """`client.applications`: the Stasis applications registered on Asterisk."""

    __slots__ = ()

    def handle(self, name: str | None = None, *, node: str | None = None) -> ApplicationHandle:
        """A handle for application `name` (default: this client's)."""
        key = self._client.key("application", name or self._client.application, node)
        return ApplicationHandle(self._client, key)

    async def get(self, name: str | None = None) -> ApplicationHandle:
        """Find an application (a round trip). Raises NotFoundError when none has that name."""
        return await self._find(
            "ApplicationGet", ApplicationHandle, name or self._client.application
        )

    async def list(self) -> list[ApplicationHandle]:
        """Every registered application."""
        return await self._all("ApplicationList", ApplicationHandle)


class ApplicationHandle(Handle):
    """A Stasis application."""

    __slots__ = ()
    kind = "application"

    async def data(self) -> Application:
        """What the application is subscribed to, and its event filter."""
        return decode_model((await self._request("ApplicationData")).data, Application)

    async def subscribe_to(self, event_source: str) -> None:
        """Receive the events of `event_source`: `channel:<id>`, `bridge:<id>`,
        `endpoint:<tech>/<resource>` (or `endpoint:<tech>` for all), `deviceState:<name>`.

        Raises:
            BadRequestError: malformed source; UnprocessableEntityError: no such entity.
        """
        await self._request(
            "ApplicationSubscribe", p.ApplicationSubscribe(event_source=event_source)
        )

    async def unsubscribe_from(self, event_source: str) -> None:
        """Stop receiving the events of `event_source`."""
        await self._request(
            "ApplicationUnsubscribe", p.ApplicationSubscribe(event_source=event_source)
        )

    async def set_event_filter(
        self, *, allowed: Sequence[str] = (), disallowed: Sequence[str] = ()
    ) -> Application:
        """Receive only the `allowed` event types (all when empty), minus `disallowed`."""
        payload = p.ApplicationEventFilter(
            allowed=tuple({"type": t} for t in allowed),
            disallowed=tuple({"type": t} for t in disallowed),
        )
        result = await self._request("ApplicationEventFilter", payload)
        return decode_model(result.data, Application)


# --- asterisk ---------------------------------------------------------------------------------


class Asterisk(Namespace):
    """`client.asterisk`: the Asterisk system, global variables, modules, logging, config."""

    __slots__ = ("config", "logging", "modules")

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.modules = Modules(client)
        self.logging = Logging(client)
        self.config = Config(client)

    async def info(self, *only: str, node: str | None = None) -> AsteriskInfo:
        """Build, system, configuration and status information (or `only` those parts)."""
        payload = p.AsteriskInfoQuery(only=only) if only else None
        result = await self._client.request("AsteriskInfo", self._client.key("", "", node), payload)
        return decode_model(result.data, AsteriskInfo)

    async def ping(self, *, node: str | None = None) -> AsteriskPing:
        """Ping Asterisk (entity ID, time)."""
        result = await self._client.request("AsteriskPing", self._client.key("", "", node))
        return decode_model(result.data, AsteriskPing)

    async def get_variable(self, name: str, *, node: str | None = None) -> str:
        """A global variable (or the result of a dialplan function); `""` when unset."""
        key = self._client.key("variable", name, node)
        return (await self._client.request("AsteriskVariableGet", key)).variable or ""

    async def set_variable(self, name: str, value: str, *, node: str | None = None) -> None:
        """Set a global variable."""
        key = self._client.key("variable", name, node)
        await self._client.request("AsteriskVariableSet", key, p.AsteriskVariableSet(value=value))


class Modules(Namespace):
    """`client.asterisk.modules`."""

    __slots__ = ()

    def handle(self, name: str, *, node: str | None = None) -> ModuleHandle:
        """A handle for a module such as `res_stasis.so` (no I/O)."""
        return ModuleHandle(self._client, self._client.key("module", name, node))

    async def get(self, name: str) -> ModuleHandle:
        """Find a loaded module (a round trip). Raises NotFoundError when it is not loaded."""
        return await self._find("AsteriskModuleGet", ModuleHandle, name)

    async def list(self) -> list[ModuleHandle]:
        """Every loaded module."""
        return await self._all("AsteriskModuleList", ModuleHandle)


class ModuleHandle(Handle):
    """An Asterisk module."""

    __slots__ = ()
    kind = "module"

    async def data(self) -> Module:
        """Description, status, use count, support level."""
        return decode_model((await self._request("AsteriskModuleData")).data, Module)

    async def load(self) -> None:
        """Load the module. Raises ConflictError when it is loaded already."""
        await self._request("AsteriskModuleLoad")

    async def unload(self) -> None:
        """Unload the module."""
        await self._request("AsteriskModuleUnload")

    async def reload(self) -> None:
        """Reload the module's configuration."""
        await self._request("AsteriskModuleReload")


class Logging(Namespace):
    """`client.asterisk.logging`: log channels."""

    __slots__ = ()

    def handle(self, name: str, *, node: str | None = None) -> LogChannelHandle:
        """A handle for a log channel (no I/O)."""
        return LogChannelHandle(self._client, self._client.key("logging", name, node))

    async def get(self, name: str) -> LogChannelHandle:
        """Find a log channel by the name Asterisk lists (files by full path). Raises
        NotFoundError when there is none."""
        return await self._find("AsteriskLoggingGet", LogChannelHandle, name)

    async def list(self) -> list[LogChannelHandle]:
        """Every log channel."""
        return await self._all("AsteriskLoggingList", LogChannelHandle)

    async def create(
        self, name: str, levels: str | Sequence[str], *, node: str | None = None
    ) -> LogChannelHandle:
        """Create log channel `name` logging `levels` (such as `notice,warning`).

        Asterisk places a relative `name` in its log directory and from then on knows the
        channel only by that full path, so the returned handle carries the path as listed.

        Raises:
            ConflictError: a log channel of that name exists.
        """
        joined = levels if isinstance(levels, str) else ",".join(levels)
        key = self._client.key("logging", name, node)
        payload = p.AsteriskLoggingChannel(levels=joined)
        result = await self._client.request("AsteriskLoggingCreate", key, payload)
        created = self._client.adopt(result.key or key)
        # Look the path up: with the bare name, data(), rotate() and delete() would miss it.
        listed = await self._client.request("AsteriskLoggingList", created.new("", ""))
        for listed_key in listed.keys:
            if listed_key.id == name or listed_key.id.endswith("/" + name):
                return LogChannelHandle(self._client, created.new("logging", listed_key.id))
        return LogChannelHandle(self._client, created)


class LogChannelHandle(Handle):
    """A log channel (its ID is the channel as Asterisk lists it; files by full path)."""

    __slots__ = ()
    kind = "logging"

    async def data(self) -> LogChannel:
        """Type, status and levels. Raises NotFoundError when no channel has this name."""
        return decode_model((await self._request("AsteriskLoggingData")).data, LogChannel)

    async def rotate(self) -> None:
        """Rotate the log file."""
        await self._request("AsteriskLoggingRotate")

    async def delete(self) -> None:
        """Delete the log channel."""
        await self._request("AsteriskLoggingDelete")


_tuples = msgspec.json.Decoder(list[ConfigTuple])


class Config(Namespace):
    """`client.asterisk.config`: dynamic (sorcery) configuration objects."""

    __slots__ = ()

    def _key(self, config_class: str, object_type: str, object_id: str, node: str | None) -> Key:
        return self._client.key("config", f"{config_class}/{object_type}/{object_id}", node)

    async def get(
        self, config_class: str, object_type: str, object_id: str, *, node: str | None = None
    ) -> list[ConfigTuple]:
        """The fields of an object, e.g. `get("res_pjsip", "endpoint", "alice")`.

        Raises:
            NotFoundError: no such object.
        """
        key = self._key(config_class, object_type, object_id, node)
        result = await self._client.request("AsteriskConfigData", key)
        return _tuples.decode(result.data or b"[]")

    async def update(
        self,
        config_class: str,
        object_type: str,
        object_id: str,
        fields: Mapping[str, str],
        *,
        node: str | None = None,
    ) -> None:
        """Create or update an object with `fields`.

        Raises:
            ForbiddenError: the object's backend cannot be written (e.g. it comes from a file).
        """
        key = self._key(config_class, object_type, object_id, node)
        tuples = tuple(p.ConfigTuple(attribute=k, value=v) for k, v in fields.items())
        await self._client.request("AsteriskConfigUpdate", key, p.AsteriskConfig(tuples=tuples))

    async def delete(
        self, config_class: str, object_type: str, object_id: str, *, node: str | None = None
    ) -> None:
        """Delete an object."""
        await self._client.request(
            "AsteriskConfigDelete", self._key(config_class, object_type, object_id, node)
        )


# --- device states, endpoints, mailboxes --------------------------------------------------------


class DeviceStates(Namespace):
    """`client.device_states`: device states the application controls (`Stasis:<name>`)."""

    __slots__ = ()

    def handle(self, name: str, *, node: str | None = None) -> DeviceStateHandle:
        """A handle for a device such as `Stasis:agent-1` (no I/O)."""
        return DeviceStateHandle(self._client, self._client.key("devicestate", name, node))

    async def get(self, name: str) -> DeviceStateHandle:
        """Find a device state (a round trip)."""
        return await self._find("DeviceStateGet", DeviceStateHandle, name)

    async def list(self) -> list[DeviceStateHandle]:
        """Every device state Asterisk knows."""
        return await self._all("DeviceStateList", DeviceStateHandle)


class DeviceStateHandle(Handle):
    """A device state."""

    __slots__ = ()
    kind = "devicestate"

    async def data(self) -> DeviceState:
        """The device's state (NOT_INUSE, INUSE, BUSY, ...)."""
        return decode_model((await self._request("DeviceStateData")).data, DeviceState)

    async def update(self, state: str) -> None:
        """Set the state (Stasis devices only)."""
        await self._request("DeviceStateUpdate", p.DeviceStateUpdate(state=state))

    async def delete(self) -> None:
        """Delete the device state."""
        await self._request("DeviceStateDelete")


class Endpoints(Namespace):
    """`client.endpoints`: SIP peers and other endpoints; text messages and REFERs."""

    __slots__ = ()

    def handle(self, tech: str, resource: str, *, node: str | None = None) -> EndpointHandle:
        """A handle for endpoint `tech/resource` (no I/O)."""
        return EndpointHandle(
            self._client, self._client.key("endpoint", f"{tech}/{resource}", node)
        )

    async def get(self, tech: str, resource: str) -> EndpointHandle:
        """Find an endpoint (a round trip). Raises NotFoundError when there is none."""
        return await self._find("EndpointGet", EndpointHandle, f"{tech}/{resource}")

    async def list(self, tech: str | None = None) -> list[EndpointHandle]:
        """Every endpoint, or those of one technology.

        Raises:
            NotFoundError: unknown technology.
        """
        if tech is None:
            return await self._all("EndpointList", EndpointHandle)
        return await self._all(
            "EndpointListByTech", EndpointHandle, p.EndpointListByTech(tech=tech)
        )

    async def send_message(
        self, to: str, from_: str, body: str = "", *, variables: Mapping[str, str] | None = None
    ) -> None:
        """Send a text message to `to` (such as `pjsip:alice`) from `from_`."""
        payload = p.EndpointSendMessage(
            to=to, from_=from_, body=body, variables=dict(variables or {})
        )
        await self._client.request("EndpointSendMessage", self._client.key("", ""), payload)

    async def refer(
        self,
        to: str,
        from_: str,
        refer_to: str,
        *,
        to_self: bool = False,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """Send a SIP REFER to `to`, asking it to contact `refer_to`."""
        payload = p.EndpointRefer(
            to=to, from_=from_, refer_to=refer_to, to_self=to_self, variables=dict(variables or {})
        )
        await self._client.request("EndpointRefer", self._client.key("", ""), payload)


class EndpointHandle(Handle):
    """An endpoint (`tech/resource`)."""

    __slots__ = ()
    kind = "endpoint"

    async def data(self) -> Endpoint:
        """State and channels of the endpoint."""
        return decode_model((await self._request("EndpointData")).data, Endpoint)

    async def send_message(
        self, from_: str, body: str = "", *, variables: Mapping[str, str] | None = None
    ) -> None:
        """Send a text message to this endpoint from `from_`."""
        payload = p.EndpointSendMessage(from_=from_, body=body, variables=dict(variables or {}))
        await self._request("EndpointSendMessageToEndpoint", payload)

    async def refer(
        self,
        from_: str,
        refer_to: str,
        *,
        to_self: bool = False,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """Send this endpoint a SIP REFER, asking it to contact `refer_to`."""
        payload = p.EndpointRefer(
            from_=from_, refer_to=refer_to, to_self=to_self, variables=dict(variables or {})
        )
        await self._request("EndpointReferToEndpoint", payload)


class Mailboxes(Namespace):
    """`client.mailboxes`: mailboxes for message-waiting indication (needs res_ari_mailboxes)."""

    __slots__ = ()

    def handle(self, name: str, *, node: str | None = None) -> MailboxHandle:
        """A handle for a mailbox such as `1000@default` (no I/O)."""
        return MailboxHandle(self._client, self._client.key("mailbox", name, node))

    async def get(self, name: str) -> MailboxHandle:
        """Find a mailbox (a round trip). Raises NotFoundError when there is none."""
        return await self._find("MailboxGet", MailboxHandle, name)

    async def list(self) -> list[MailboxHandle]:
        """Every mailbox."""
        return await self._all("MailboxList", MailboxHandle)


class MailboxHandle(Handle):
    """A mailbox."""

    __slots__ = ()
    kind = "mailbox"

    async def data(self) -> Mailbox:
        """Message counts."""
        return decode_model((await self._request("MailboxData")).data, Mailbox)

    async def update(self, old_messages: int, new_messages: int) -> None:
        """Set the message counts (creating the mailbox)."""
        await self._request("MailboxUpdate", p.MailboxUpdate(new=new_messages, old=old_messages))

    async def delete(self) -> None:
        """Delete the mailbox."""
        await self._request("MailboxDelete")


class Events(Namespace):
    """`client.events`: user events."""

    __slots__ = ()

    async def user_event(
        self,
        name: str,
        *,
        sources: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
        application: str | None = None,
        node: str | None = None,
    ) -> None:
        """Raise `ChannelUserevent` `name` for `application` (default: this client's), with
        `sources` such as `channel:<id>`, `bridge:<id>`, `endpoint:<tech>/<res>`."""
        payload = p.UserEvent(
            application=application or self._client.application,
            source=",".join(sources),
            variables=dict(variables or {}),
        )
        await self._client.request("UserEvent", self._client.key("userevent", name, node), payload)
