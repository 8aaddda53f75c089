"""Channels through the native ARI client, against the real Asterisk 22 sandbox.

Local channels stand in for phones: `Local/<exten>@default` originated into the test's
application puts the `;1` half in Stasis while the `;2` half runs the dialplan extension
(`wait`, `echo`, `dtmf`, `busy`, ...). `Local/stasis-<app>@default` puts both halves in Stasis,
so what one half sends, the other receives.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from ari_proxy._exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableEntityError,
)
from ari_proxy.api import ChannelHandle, event_type, raw_event
from ari_proxy.ari import AriClient
from ari_proxy.spec._models import (
    ApplicationMoveFailed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelUserevent,
    ChannelVarset,
    Dial,
    StasisStart,
)

pytestmark = pytest.mark.integration


async def both_halves(
    client: AriClient, expect, *, answer: bool = True
) -> tuple[ChannelHandle, ChannelHandle]:
    """Originate `Local/stasis-<app>@default`: both halves enter the application."""
    async with client.subscribe("StasisStart") as events:
        first = await client.channels.originate(f"Local/stasis-{client.application}@default")
        ev = await expect(events, "StasisStart")
        assert ev.channel.id == f"{first.id};2"
        second = client.channels.handle(ev.channel.id)
        if answer:
            await second.answer()  # answers the pair: the ;1 half then enters Stasis too
            ev = await expect(events, "StasisStart", where=lambda e: e.channel.id == first.id)
    return first, second


async def test_originate_get_list_data(client: AriClient, expect, until_gone) -> None:
    async with asyncio.timeout(15):
        staged = await client.channels.stage_originate(
            "Local/wait@default", variables={"ORIGIN": "test"}
        )
        with pytest.raises(NotFoundError):  # staged: the ID is reserved, nothing created yet
            await staged.handle.data()
        async with staged.subscribe("StasisStart") as events:
            channel = await staged.execute()
            event = await expect(events)
        assert isinstance(event, StasisStart)
        assert channel.id == staged.id == event.channel.id
        assert channel.node == client.node == event.asterisk_id

        data = await channel.data()
        assert data.id == channel.id
        assert data.name.startswith("Local/wait@default-") and data.name.endswith(";1")
        assert data.state == "Up"
        assert data.dialplan is not None
        assert (data.dialplan.app_name, data.dialplan.app_data) == ("Stasis", client.application)
        assert await channel.get_variable("ORIGIN") == "test"

        assert channel in await client.channels.list()
        assert f"{channel.id};2" in {c.id for c in await client.channels.list()}
        found = await client.channels.get(channel.id)
        assert found == channel and found.key.app == client.application
        async with channel.subscribe("ChannelDestroyed") as destroyed:
            await channel.hangup()
            await expect(destroyed)
        await until_gone(lambda: client.channels.get(channel.id))
        assert channel not in await client.channels.list()


async def test_create_then_dial(client: AriClient, expect) -> None:
    async with asyncio.timeout(15), client.subscribe() as events:
        channel = await client.channels.create("Local/wait@default", app_args=["a", "b"])
        start = await expect(events, "StasisStart")
        assert isinstance(start, StasisStart)
        assert start.channel.id == channel.id and start.args == ["a", "b"]
        assert (await channel.data()).state == "Down"  # created, not dialed

        await channel.dial(timeout=5)
        dial = await expect(events, "Dial", where=lambda e: e.dialstatus == "ANSWER")
        assert isinstance(dial, Dial) and dial.peer.id == channel.id
        assert (await channel.data()).state == "Up"  # (ChannelStateChange came before)


@pytest.mark.parametrize(
    ("how", "cause", "cause_txt"),
    [
        ({"reason": "normal"}, 16, "Normal Clearing"),
        ({"reason": "busy"}, 17, "User busy"),
        ({"reason": "congestion"}, 34, "Circuit/channel congestion"),
        ({"reason": "no_answer"}, 19, "User alerting, no answer"),
        ({"reason_code": "21"}, 21, "Call Rejected"),
        ("busy", 17, "User busy"),
        ("congestion", 34, "Circuit/channel congestion"),
    ],
    ids=["normal", "busy", "congestion", "no_answer", "code-21", "busy()", "congestion()"],
)
async def test_hangup_with_reasons(
    client: AriClient,
    stasis_channel,
    expect,
    how: dict[str, str] | str,
    cause: int,
    cause_txt: str,
) -> None:
    async with asyncio.timeout(15):
        channel = await stasis_channel()
        async with channel.subscribe("StasisEnd", "ChannelDestroyed") as events:
            if isinstance(how, str):
                await getattr(channel, how)()
            else:
                await channel.hangup(**how)
            await expect(events, "StasisEnd")
            destroyed = await expect(events, "ChannelDestroyed")
        assert isinstance(destroyed, ChannelDestroyed)
        assert (destroyed.cause, destroyed.cause_txt) == (cause, cause_txt)


async def test_hangup_errors_keep_status_and_message(client: AriClient, stasis_channel) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(NotFoundError) as missing:
            await client.channels.handle("no-such-channel").hangup()
        assert missing.value.status == 404
        assert missing.value.reason == "Not Found"
        assert missing.value.message == "Channel not found"
        assert missing.value.text == "Non-2XX response: 404 Not Found"  # worded as Go words it
        assert str(missing.value) == "Non-2XX response: 404 Not Found: Channel not found"

        channel = await stasis_channel()
        with pytest.raises(BadRequestError) as invalid:
            await channel.hangup("bogus")
        assert invalid.value.status == 400
        assert invalid.value.reason == "Invalid Reason"
        assert invalid.value.message == "Invalid reason for hangup reason provided"
        await channel.data()  # still up


@pytest.mark.parametrize(
    ("extension", "status", "cause"), [("busy", "BUSY", 17), ("congestion", "CONGESTION", 34)]
)
async def test_busy_and_congestion_extensions(
    client: AriClient,
    expect,
    until_gone,
    extension: str,
    status: str,
    cause: int,
) -> None:
    """The far end refuses: the originated channel never enters Stasis."""
    async with asyncio.timeout(15), client.subscribe() as events:
        channel = await client.channels.originate(f"Local/{extension}@default")
        dial = await expect(events, "Dial", where=lambda e: e.dialstatus not in ("", "PROGRESS"))
        assert isinstance(dial, Dial) and (dial.peer.id, dial.dialstatus) == (channel.id, status)
        causes: dict[str, int] = {}
        while len(causes) < 2:  # both halves go, in no fixed order
            gone = await expect(events, "ChannelDestroyed")
            causes[gone.channel.id] = gone.cause
        # The refusing half carries the cause; the originated half was never answered (0).
        assert causes == {f"{channel.id};2": cause, channel.id: 0}
        await until_gone(channel.data)


async def test_channel_variables(client: AriClient, stasis_channel, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        with pytest.raises(NotFoundError) as unset:
            await channel.get_variable("NEVER_SET")
        assert (unset.value.status, unset.value.reason) == (404, "Variable Not Found")
        assert unset.value.message == "Provided variable was not found"

        await channel.set_variable("COLOUR", "blue")
        assert await channel.get_variable("COLOUR") == "blue"
        await channel.set_variables({"A": "1", "B": "two words", "C": ""})
        assert await channel.get_variables(["A", "B", "COLOUR"]) == {
            "A": "1",
            "B": "two words",
            "COLOUR": "blue",
        }
        with pytest.raises(NotFoundError):  # one missing name fails the whole bulk read
            await channel.get_variables(["A", "NEVER_SET"])
        # Dialplan functions read and write through the same calls.
        assert await channel.get_variable("CHANNEL(state)") == "Up"
        await channel.set_variable("CALLERID(num)", "5551234")
        assert (await channel.data()).caller.number == "5551234"

        async with channel.subscribe("ChannelVarset") as events:
            await channel.set_variable("REPORTED", "yes", report_events=True)
            varset = await expect(events, where=lambda e: e.variable == "REPORTED")
        assert isinstance(varset, ChannelVarset) and varset.value == "yes"


async def test_send_dtmf_between_halves(client: AriClient, expect) -> None:
    async with asyncio.timeout(15):
        first, second = await both_halves(client, expect)
        async with second.subscribe("ChannelDtmfReceived") as events:
            await first.send_dtmf("12#", between=0.05, duration=0.08)
            digits = [(await expect(events)) for _ in range(3)]
        assert all(isinstance(d, ChannelDtmfReceived) for d in digits)
        assert [d.digit for d in digits] == ["1", "2", "#"]
        assert all(d.channel.id == second.id and d.duration_ms > 0 for d in digits)
        with pytest.raises(NotFoundError):
            await client.channels.handle("no-such-channel").send_dtmf("1")


async def test_dtmf_from_the_dialplan(client: AriClient, expect) -> None:
    """The `dtmf` extension answers, waits 1 s and sends 1234# to the Stasis half."""
    async with asyncio.timeout(15):
        staged = await client.channels.stage_originate("Local/dtmf@default")
        async with staged.subscribe("ChannelDtmfReceived") as events:
            await staged.execute()
            digits = "".join([(await expect(events)).digit for _ in range(5)])
        assert digits == "1234#"


async def test_hold_and_unhold_raise_events(client: AriClient, stasis_channel, expect) -> None:
    """With HOLD_INTERCEPT set, the channel's hold indications become ChannelHold/Unhold."""
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        await channel.set_variable("HOLD_INTERCEPT(set)", "")
        async with channel.subscribe("ChannelHold", "ChannelUnhold") as events:
            await channel.hold()
            held = await expect(events)
            await channel.unhold()
            unheld = await expect(events)
        assert (event_type(held), event_type(unheld)) == ("ChannelHold", "ChannelUnhold")
        assert held.channel.id == unheld.channel.id == channel.id
        with pytest.raises(NotFoundError):
            await client.channels.handle("no-such-channel").hold()


def _wav_samples(wav: bytes) -> list[int]:
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    data = wav[44:]
    return list(struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2]))


async def _heard(listener: ChannelHandle, seconds: float = 0.6) -> list[int]:
    """Record what `listener` receives for a moment; return the samples."""
    live = await listener.record(max_duration=5)
    await asyncio.sleep(seconds)  # pacing: the listening window
    stored = await live.stop()
    try:
        return _wav_samples(await stored.read())
    finally:
        await stored.delete()


async def test_moh_silence_and_mute_change_what_the_far_end_hears(
    client: AriClient,
    expect,
) -> None:
    """Music on hold, silence and mute, checked by recording the other half of the pair:
    MOH is non-silent audio, silence is audio frames of zeros, and nothing sends no frames."""
    async with asyncio.timeout(20):
        first, second = await both_halves(client, expect)
        assert await _heard(second, 0.2) == []  # nothing is sent yet

        await first.start_moh("default")
        music = await _heard(second)
        assert len(music) > 2000 and max(abs(s) for s in music) > 1000
        await second.mute("in")
        assert await _heard(second, 0.3) == []  # muted: the music no longer comes in
        await second.unmute("in")
        await first.stop_moh()
        assert await _heard(second, 0.3) == []

        await first.start_silence()
        silence = await _heard(second)
        assert len(silence) > 2000 and set(silence) == {0}
        await first.stop_silence()
        assert await _heard(second, 0.3) == []

        with pytest.raises(BadRequestError) as bad:
            await first.mute("sideways")
        assert bad.value.message == "Invalid direction specified"


async def test_ring_and_progress_on_a_local_channel(client: AriClient, stasis_channel) -> None:
    """Indications succeed on a channel in Stasis and fail on a missing one (the SIP test
    checks that the caller really receives 180 and 183)."""
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        await channel.ring()
        await channel.stop_ring()
        await channel.progress()
        for operation in ("ring", "stop_ring", "progress", "start_moh", "start_silence"):
            with pytest.raises(NotFoundError):
                await getattr(client.channels.handle("no-such-channel"), operation)()


async def test_continue_in_dialplan_leaves_stasis(
    client: AriClient, stasis_channel, expect
) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        async with channel.subscribe("StasisEnd", "ChannelDialplan") as events:
            await channel.continue_in_dialplan("default", "echo", 1)
            await expect(events, "StasisEnd")
            plan = await expect(events, "ChannelDialplan")
        assert (plan.dialplan_app, plan.channel.dialplan.exten) == ("Answer", "echo")  # echo,1
        with pytest.raises(ConflictError) as conflict:  # no longer ours to command
            await channel.answer()
        assert conflict.value.message == "Channel not in Stasis application"
        await channel.hangup()  # hangup works outside Stasis too


async def test_move_to_another_application(
    client: AriClient,
    stasis_channel,
    connect_client,
    expect,
) -> None:
    async with asyncio.timeout(15):
        other_app = f"{client.application}-other"
        other = await connect_client(other_app)
        channel = await stasis_channel()
        async with channel.subscribe("StasisEnd") as left, other.subscribe("StasisStart") as came:
            await channel.move(other_app, ["x", "y"])
            await expect(left)
            arrived = await expect(came)
        assert arrived.channel.id == channel.id and arrived.args == ["x", "y"]
        assert arrived.application == other_app
        # The new application is subscribed to the channel now (its dialplan app_data still
        # says "Stasis(<ours>)", and our subscription from the originate stays too).
        assert channel.id in (await other.applications.handle().data()).channel_ids
        await other.channels.handle(channel.id).hangup()


async def test_move_to_an_unregistered_application_fails(
    client: AriClient,
    stasis_channel,
    expect,
) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        async with channel.subscribe("ApplicationMoveFailed") as events:
            await channel.move(f"{client.application}-nobody", "arg")
            failed = await expect(events)
        assert isinstance(failed, ApplicationMoveFailed)
        assert failed.destination == f"{client.application}-nobody" and failed.args == ["arg"]
        assert (await channel.data()).dialplan.app_data == client.application  # still ours


async def test_redirect_is_validated_by_asterisk(client: AriClient, stasis_channel) -> None:
    """A real redirect needs a SIP peer that follows 302/REFER (the sipp scenario does not);
    these are Asterisk's own refusals, which prove the request reaches the redirect handler."""
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        with pytest.raises(BadRequestError) as empty:
            await channel.redirect("")
        # Asterisk 22 words this 400 with the reason phrase "Not Found".
        assert (empty.value.status, empty.value.reason) == (400, "Not Found")
        assert empty.value.message == "Required parameter 'endpoint' not provided."
        with pytest.raises(UnprocessableEntityError) as no_tech:
            await channel.redirect("nowhere")
        assert (
            no_tech.value.message == "Endpoint parameter 'nowhere' does not contain tech/resource"
        )
        with pytest.raises(UnprocessableEntityError) as other_tech:
            await channel.redirect("PJSIP/sipp")
        assert other_tech.value.message == (
            "Endpoint technology 'PJSIP' does not match channel technology 'Local'"
        )


async def test_user_event_from_a_channel(client: AriClient, stasis_channel, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        async with channel.subscribe("ChannelUserevent") as events:
            await channel.user_event("Knock", {"who": "tester"})
            event = await expect(events)
        assert isinstance(event, ChannelUserevent)
        assert event.eventname == "Knock" and event.channel.id == channel.id
        assert event.userevent["who"] == "tester"
        assert raw_event(event)["userevent"]["eventname"] == "Knock"


async def test_snoop_channel(client: AriClient, stasis_channel, expect) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel("echo")
        staged = await channel.stage_snoop(spy="both", app_args="spying")
        async with staged.subscribe("StasisStart") as events:
            snoop = await staged.execute()
            start = await expect(events)
        assert start.args == ["spying"] and snoop.id == staged.id
        data = await snoop.data()
        assert data.name.startswith(f"Snoop/{channel.id}-")
        plain = await channel.snoop(whisper="out")
        assert (await plain.data()).name.startswith("Snoop/")
        with pytest.raises(BadRequestError) as bad:
            await channel.snoop(spy="sideways")
        assert bad.value.message == "Invalid direction specified for spy"
        with pytest.raises(BadRequestError) as neither:
            await channel.snoop()
        assert neither.value.message == "Direction must be specified for at least spy or whisper"
        await snoop.hangup()
        await plain.hangup()


async def test_external_media_to_a_local_udp_socket(client: AriClient, expect) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        async with asyncio.timeout(10), client.subscribe() as events:
            channel = await client.channels.external_media(
                external_host=f"127.0.0.1:{port}", format="ulaw"
            )
            start = await expect(events, "StasisStart")
            assert start.channel.id == channel.id
            data = await channel.data()
            assert data.name.startswith(f"UnicastRTP/127.0.0.1:{port}-")
            local_port = int(await channel.get_variable("UNICASTRTP_LOCAL_PORT"))
            assert local_port > 0
            with pytest.raises(NotFoundError) as no_stats:
                await channel.rtp_statistics()
            assert no_stats.value.message == "RTP info not found"
            await channel.hangup()
            await expect(events, "ChannelDestroyed", where=lambda e: e.channel.id == channel.id)
    finally:
        transport.close()


async def test_rtp_statistics_without_rtp(stasis_channel) -> None:
    async with asyncio.timeout(10):
        channel = await stasis_channel()
        with pytest.raises(ForbiddenError) as forbidden:
            await channel.rtp_statistics()
        assert (forbidden.value.status, forbidden.value.message) == (
            403,
            "Unsupported channel type",
        )
