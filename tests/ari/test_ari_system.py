"""Asterisk itself through the native client: info, ping, global variables, modules, log channels
and dynamic configuration, against the real Asterisk 22 sandbox."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from ari_proxy._exceptions import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from ari_proxy.ari import AriClient
from ari_proxy.testing import Instance

pytestmark = pytest.mark.integration


async def test_info_and_ping(client: AriClient, asterisk: Instance) -> None:
    async with asyncio.timeout(10):
        info = await client.asterisk.info()
        assert info.system is not None and info.build is not None and info.config is not None
        assert info.system.entity_id == asterisk.entity_id == client.node
        assert info.system.version.startswith("22.")
        assert info.config.default_language == "en"
        only = await client.asterisk.info("build")
        assert only.build is not None and only.system is None and only.config is None
        assert client.info is not None and client.info.system == info.system

        ping = await client.asterisk.ping()
        assert (ping.asterisk_id, ping.ping) == (asterisk.entity_id, "pong")
        assert ping.timestamp


async def test_global_variables(client: AriClient) -> None:
    async with asyncio.timeout(10):
        name = f"T_{secrets.token_hex(4)}"
        assert await client.asterisk.get_variable(name) == ""  # unset reads as empty
        await client.asterisk.set_variable(name, "first value")
        assert await client.asterisk.get_variable(name) == "first value"
        await client.asterisk.set_variable(name, "")
        assert await client.asterisk.get_variable(name) == ""
        # A dialplan function as the name: GLOBAL() writes the global itself.
        await client.asterisk.set_variable(f"GLOBAL({name})", "via function")
        assert await client.asterisk.get_variable(name) == "via function"


async def test_modules(client: AriClient) -> None:
    async with asyncio.timeout(15):
        names = {m.id for m in await client.asterisk.modules.list()}
        assert len(names) > 100 and {"res_ari.so", "res_stasis.so", "app_echo.so"} <= names
        stasis = await client.asterisk.modules.handle("res_stasis.so").data()
        assert (stasis.name, stasis.status, stasis.support_level) == (
            "res_stasis.so",
            "Running",
            "core",
        )
        assert stasis.description == "Stasis application support" and stasis.use_count > 0

        with pytest.raises(ConflictError) as loaded:
            await client.asterisk.modules.handle("res_stasis.so").load()
        assert (loaded.value.status, loaded.value.message) == (409, "Module is already loaded")

        missing = client.asterisk.modules.handle("res_no_such_module.so")
        with pytest.raises(NotFoundError) as no_data:
            await missing.data()
        assert no_data.value.message == "Module could not be found in running modules"
        for operation in (missing.reload, missing.unload):
            with pytest.raises(NotFoundError) as absent:
                await operation()
            assert absent.value.message == "Module not found in running modules"
        with pytest.raises(ConflictError) as declined:
            await missing.load()
        assert declined.value.message == "Module load declined"

        await client.asterisk.modules.handle("res_musiconhold.so").reload()

        # A round trip on a module nothing here uses.
        rand = client.asterisk.modules.handle("func_rand.so")
        await rand.unload()
        try:
            with pytest.raises(NotFoundError):
                await rand.data()
            assert rand not in await client.asterisk.modules.list()
        finally:
            await rand.load()
        assert (await rand.data()).status == "Running"


async def test_log_channels(client: AriClient, asterisk: Instance, janitor) -> None:
    async with asyncio.timeout(15):
        logging = client.asterisk.logging
        name = f"ari-test-{secrets.token_hex(3)}"
        channel = await logging.create(name, ["notice", "warning"])
        janitor.add(channel.delete)
        # Asterisk keeps a relative name in its log directory and lists it by full path.
        path = f"{asterisk.spec.log_dir}/{name}"
        assert channel.id == path
        listed = {c.id for c in await logging.list()}
        assert {path, f"{asterisk.spec.log_dir}/messages.log"} <= listed
        assert "" in listed  # the console channel is listed without a path
        data = await channel.data()
        assert (data.channel, data.type, data.status) == (path, "File", "Enabled")
        assert data.configuration.split() == ["NOTICE", "WARNING"]
        with pytest.raises(NotFoundError):  # by its bare name Asterisk does not know it
            await logging.handle(name).data()

        with pytest.raises(ConflictError) as exists:
            await logging.create(name, "notice")
        assert exists.value.message == "Log channel already exists"

        await channel.delete()
        assert path not in {c.id for c in await logging.list()}
        with pytest.raises(NotFoundError) as gone:
            await channel.delete()
        assert gone.value.message == "Log channel does not exist"
        with pytest.raises(NotFoundError):
            await logging.handle("no-such-log").rotate()


async def test_log_rotation_reloads_the_logger(client: AriClient, asterisk: Instance) -> None:
    """Rotating reloads Asterisk's logger from logger.conf: the file channels it configures
    are rotated and the channels created over ARI are dropped (Asterisk 22 behaviour)."""
    async with asyncio.timeout(15):
        logging = client.asterisk.logging
        channel = await logging.create(f"ari-rotate-{secrets.token_hex(3)}", "error")
        await channel.rotate()
        assert channel.id not in {c.id for c in await logging.list()}
        with pytest.raises(NotFoundError):
            await channel.delete()
        messages = logging.handle(f"{asterisk.spec.log_dir}/messages.log")
        await messages.rotate()
        assert (await messages.data()).status == "Enabled"


async def test_dynamic_configuration(client: AriClient) -> None:
    """Objects of the sandbox come from pjsip.conf: readable, never writable over ARI."""
    async with asyncio.timeout(10):
        config = client.asterisk.config
        fields = {t.attribute: t.value for t in await config.get("res_pjsip", "endpoint", "sipp")}
        assert (fields["aors"], fields["context"], fields["allow"]) == (
            "sipp",
            "default",
            "(ulaw|alaw|gsm)",
        )

        with pytest.raises(NotFoundError) as missing:
            await config.get("res_pjsip", "endpoint", "no-such-endpoint")
        assert missing.value.message == "Object with id 'no-such-endpoint' not found"
        with pytest.raises(NotFoundError) as no_class:
            await config.get("res_no_such_class", "endpoint", "x")
        assert no_class.value.message == "configClass 'res_no_such_class' not found"
        with pytest.raises(NotFoundError) as no_type:
            await config.get("res_pjsip", "no_such_type", "x")
        assert no_type.value.message == "objectType 'no_such_type' not found"

        with pytest.raises(ForbiddenError) as update:
            await config.update("res_pjsip", "endpoint", "sipp", {"allow": "ulaw"})
        assert (update.value.status, update.value.message) == (
            403,
            "Cannot update sorcery objects of type 'endpoint'",
        )
        with pytest.raises(ForbiddenError) as create:
            await config.update("res_pjsip", "aor", "ari-test-new", {"max_contacts": "2"})
        assert create.value.message == "Cannot create sorcery objects of type 'aor'"
        with pytest.raises(NotFoundError):  # and nothing was created
            await config.get("res_pjsip", "aor", "ari-test-new")
        with pytest.raises(ForbiddenError) as delete:
            await config.delete("res_pjsip", "endpoint", "sipp")
        assert delete.value.message == "Could not delete object with id 'sipp'"
        with pytest.raises(NotFoundError):
            await config.delete("res_pjsip", "endpoint", "no-such-endpoint")
        assert await config.get("res_pjsip", "endpoint", "sipp")  # untouched

        with pytest.raises(BadRequestError) as bad_key:  # refused before any request
            await client.request("AsteriskConfigData", client.key("config", "res_pjsip/endpoint"))
        assert str(bad_key.value) == "failed to parse configuration key: invalid input ID"
