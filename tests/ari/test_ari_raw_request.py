"""`client.request(method, path)`: any ARI operation as raw JSON, under the generated
operations' rules (encoding, deadlines, errors, retries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import ari_proxy.ari as ari
from ari_proxy import (
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    RequestTimeout,
)
from ari_proxy.ari import AriClient
from ari_proxy.ari._http import HttpTransport
from ari_proxy.ari._raw import raw_operation
from ari_proxy.spec import OPERATIONS
from ari_proxy.testing._fake_ari import FakeAri

# --- the operation row -------------------------------------------------------------------------


def test_a_known_method_and_path_use_the_tables_row() -> None:
    assert raw_operation("GET", "/asterisk/info", {}) is OPERATIONS["asterisk.getInfo"]
    answer = raw_operation("POST", "/channels/{channelId}/answer", {})
    assert answer is OPERATIONS["channels.answer"]


def test_an_unknown_path_gets_a_row_typed_by_its_values() -> None:
    op = raw_operation("GET", "/future/{thingId}/state", {"deep": True, "n": 3, "tags": ["a"]})
    assert op.path_params == ("thingId",)
    assert [(p.name, p.type, p.allow_multiple) for p in op.query] == [
        ("deep", "boolean", False),
        ("n", "long", False),
        ("tags", "string", True),
    ]


@pytest.mark.parametrize(
    ("method", "path", "words"),
    [
        ("PATCH", "/channels", "not an ARI method"),
        ("GET", "channels", "must start with '/'"),
        ("GET", "/", "must start with '/'"),
        ("GET", "/channels/../asterisk", "not plain"),
        ("GET", "/channels/a b", "not plain"),
        ("GET", "/channels//x", "not plain"),
        ("GET", "/channels?x=1", "not plain"),
        ("GET", "/channels/%2e%2e", "not plain"),
        ("GET", "/a/{x}/{x}", "repeats a placeholder"),
    ],
)
def test_paths_that_are_not_plain_templates_are_refused(method: str, path: str, words: str) -> None:
    with pytest.raises(InvalidRequestError, match=words):
        raw_operation(method, path, {})


def test_query_values_of_other_types_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="'x' takes a bool"):
        raw_operation("GET", "/future", {"x": 1.5})
    with pytest.raises(InvalidRequestError, match="'x' takes a bool"):
        raw_operation("GET", "/future", {"x": [1, "a"]})


def test_values_are_encoded_as_the_generated_operations_encode_them() -> None:
    http = HttpTransport("http://127.0.0.1:8088/ari", "u", "p")
    op = raw_operation("GET", "/future/{thingId}", {"q": "a b&c", "tags": ["x", "y"]})
    url = http.url(op, {"thingId": "../a/b?c"}, {"q": "a b&c", "tags": ["x", "y"]})
    assert str(url) == ("http://127.0.0.1:8088/ari/future/..%2Fa%2Fb%3Fc?q=a%20b%26c&tags=x%2Cy")


# --- against a fake ARI: what a real Asterisk will not do on demand ------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def fake_client(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with ari.connect(fake.http_url, fake.username, fake.password, "raw-app") as c:
        yield c


async def test_a_timed_out_get_is_retried_and_nothing_else_is(
    fake: FakeAri, fake_client: AriClient
) -> None:
    fake.stall("GET", "/future/slow")
    fake.stall("POST", "/future/slow")
    patient = fake_client.with_options(timeout=0.2, retries=2)
    async with asyncio.timeout(10):
        with pytest.raises(RequestTimeout):
            await patient.request("GET", "/future/slow")
        with pytest.raises(RequestTimeout):
            await patient.request("POST", "/future/slow")
    assert len(fake.seen("GET", "/future/slow")) == 3
    assert len(fake.seen("POST", "/future/slow")) == 1


async def test_an_answer_that_is_not_json_is_a_protocol_error(
    fake: FakeAri, fake_client: AriClient
) -> None:
    fake.answer("GET", "/future/text", 200, "not json")
    fake.answer("GET", "/future/empty", 204)
    async with asyncio.timeout(10):
        with pytest.raises(ProtocolError, match="not JSON"):
            await fake_client.request("GET", "/future/text")
        assert await fake_client.request("GET", "/future/empty") is None


async def test_errors_are_worded_as_the_generated_operations_word_them(
    fake: FakeAri, fake_client: AriClient
) -> None:
    fake.answer("PUT", "/future/x", 400, {"message": "Bad thing"})
    async with asyncio.timeout(10):
        with pytest.raises(BadRequestError) as refused:
            await fake_client.request("PUT", "/future/x", body={"a": 1})
    assert (refused.value.status, refused.value.message) == (400, "Bad thing")
    assert str(refused.value) == "Non-2XX response: 400 Bad Request: Bad thing"


async def test_bad_values_are_refused_before_sending(fake: FakeAri, fake_client: AriClient) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(InvalidRequestError, match="control character"):
            await fake_client.request("GET", "/future/{id}", path_params={"id": "a\nb"})
        with pytest.raises(InvalidRequestError, match="missing path parameter"):
            await fake_client.request("GET", "/future/{id}")
        with pytest.raises(InvalidRequestError, match="unknown query parameter"):
            await fake_client.request("GET", "/asterisk/info", query={"bogus": "x"})
        with pytest.raises(InvalidRequestError):
            await fake_client.request("POST", "/future", body={"x": object()})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="path must be a str"):
            await fake_client.request("GET", None)  # type: ignore[call-overload]
    assert [r for r in fake.requests if r.path.startswith("/future")] == []


# --- against the real Asterisk -------------------------------------------------------------------


async def test_asterisk_info_raw(client: AriClient) -> None:
    async with asyncio.timeout(10):
        info = await client.request("GET", "/asterisk/info")
        assert isinstance(info, dict)
        typed = await client.asterisk.info()
        system = info["system"]
        assert isinstance(system, dict) and typed.system is not None
        assert system["entity_id"] == client.node == typed.system.entity_id
        build = await client.request("GET", "/asterisk/info", query={"only": "build"})
        assert isinstance(build, dict) and set(build) == {"build"}
        # A template the table does not have reaches the same resource.
        same = await client.request("GET", "/asterisk/{what}", path_params={"what": "info"})
        assert isinstance(same, dict) and same["system"] == info["system"]


async def test_missing_resources_give_asterisks_errors(client: AriClient) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(NotFoundError) as missing:
            await client.request(
                "POST", "/channels/{channelId}/answer", path_params={"channelId": "no-such"}
            )
        assert missing.value.message == "Channel not found"
        assert "Channel not found" in str(missing.value)
        with pytest.raises(NotFoundError) as unknown:
            await client.request("GET", "/no-such-resource")
        assert unknown.value.status == 404
        assert unknown.value.message == "Resource not found"
        assert str(unknown.value) == "Non-2XX response: 404 Not Found: Resource not found"


async def test_originate_with_a_body_and_act_on_it_raw(client: AriClient, janitor) -> None:
    async with asyncio.timeout(15):
        async with client.subscribe("StasisStart") as started:
            created = await client.request(
                "POST",
                "/channels",
                query={"endpoint": "Local/wait@default", "app": client.application},
                body={"variables": {"RAW_VAR": "from the body"}},
            )
            assert isinstance(created, dict)
            channel_id = created["id"]
            assert isinstance(channel_id, str)
            janitor.add(client.channels.handle(channel_id).hangup)
            await started.next(timeout=10)
        value = await client.request(
            "GET",
            "/channels/{channelId}/variable",
            path_params={"channelId": channel_id},
            query={"variable": "RAW_VAR"},
        )
        assert value == {"value": "from the body"}
        assert (
            await client.request(
                "DELETE", "/channels/{channelId}", path_params={"channelId": channel_id}
            )
            is None
        )
