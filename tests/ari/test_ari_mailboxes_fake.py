"""Mailbox operations against the fake ARI server.

Debian's Asterisk 22 lacks res_ari_mailboxes (the real sandbox answers 404 `Resource not found`
for every mailbox route: see test_ari_applications.py), so the operations themselves run
against `ari_proxy.testing._fake_ari.FakeAri`, which keeps mailboxes in a dict.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import ari_proxy.ari as ari
from ari_proxy._exceptions import BadRequestError, NotFoundError
from ari_proxy.ari import AriClient
from ari_proxy.testing._fake_ari import FakeAri


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def fake_client(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with ari.connect(fake.http_url, fake.username, fake.password, "mailbox-app") as c:
        yield c


async def test_mailbox_round_trip(fake: FakeAri, fake_client: AriClient) -> None:
    async with asyncio.timeout(10):
        assert await fake_client.mailboxes.list() == []
        mailbox = fake_client.mailboxes.handle("1000@default")
        await mailbox.update(old_messages=1, new_messages=2)
        (put,) = fake.seen("PUT", "/mailboxes/1000@default")
        assert put.query == {"oldMessages": "1", "newMessages": "2"}
        assert fake.mailboxes == {"1000@default": (1, 2)}

        assert await fake_client.mailboxes.list() == [mailbox]
        data = await mailbox.data()
        assert (data.name, data.old_messages, data.new_messages) == ("1000@default", 1, 2)
        await mailbox.update(0, 5)
        assert (await mailbox.data()).new_messages == 5

        other = fake_client.mailboxes.handle("2000@other")
        await other.update(3, 0)
        assert {m.id for m in await fake_client.mailboxes.list()} == {"1000@default", "2000@other"}

        await mailbox.delete()
        assert await fake_client.mailboxes.list() == [other]
        with pytest.raises(NotFoundError) as gone:
            await mailbox.delete()
        assert (gone.value.status, gone.value.message) == (404, "Mailbox not found")
        with pytest.raises(NotFoundError) as missing:
            await mailbox.data()
        assert missing.value.text == (
            "failed to get data: Error getting data for mailbox '1000@default': "
            "Non-2XX response: 404 Not Found"
        )


async def test_mailbox_update_refused(fake: FakeAri, fake_client: AriClient) -> None:
    async with asyncio.timeout(10):
        fake.answer("PUT", "/mailboxes/1000@default", 400, {"message": "Invalid counts"})
        with pytest.raises(BadRequestError) as refused:
            await fake_client.mailboxes.handle("1000@default").update(1, 1)
        assert (refused.value.status, refused.value.message) == (400, "Invalid counts")
        assert fake.mailboxes == {}


@pytest.mark.parametrize("name", ["a/b", "../x", "a?b=c", "a b", "%2e%2e", "1000@default#x"])
async def test_hostile_mailbox_names_stay_whole(
    fake: FakeAri, fake_client: AriClient, name: str
) -> None:
    async with asyncio.timeout(10):
        mailbox = fake_client.mailboxes.handle(name)
        await mailbox.update(4, 2)
        assert fake.mailboxes == {name: (4, 2)}
        (put,) = fake.seen("PUT", f"/mailboxes/{name}")
        assert put.match == {"name": name}
        assert "/" not in put.raw_path.removeprefix("/ari/mailboxes/")  # one encoded segment
        assert (await mailbox.data()).name == name
        assert [m.id for m in await fake_client.mailboxes.list()] == [name]
        await mailbox.delete()
        assert fake.mailboxes == {}


@pytest.mark.parametrize("name", [".", "..", ""])
async def test_unusable_mailbox_names_send_nothing(
    fake: FakeAri, fake_client: AriClient, name: str
) -> None:
    async with asyncio.timeout(10):
        before = len(fake.requests)
        mailbox = fake_client.mailboxes.handle(name)
        for operation in (mailbox.data, mailbox.delete, lambda: mailbox.update(1, 1)):
            # "." and ".." are refused by the path builder; "" by the kind table.
            with pytest.raises((ValueError, BadRequestError)):
                await operation()
        assert len(fake.requests) == before
