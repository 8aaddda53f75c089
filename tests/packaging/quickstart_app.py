"""The README's "Using it" example as a program that takes one call and reports on it.

    python -I quickstart_app.py BUS_URL APPLICATION

Through the proxies on the bus: listen, place one call into the application, answer it, play
hello-world, hang up; then print one JSON object saying what happened and which ari_proxy ran
it. The packaging tests run it with the interpreter under test (the wheel's fresh virtualenv,
or the checkout's against the container image). Lines between `# README begin` and
`# README end` are the README's, word for word (tests/packaging/test_wheel.py checks).
"""

import asyncio
import json
import sys

import ari_proxy


async def take_one_call(bus_url: str, application: str) -> dict[str, object]:
    report: dict[str, object] = {"ari_proxy": ari_proxy.__file__, "version": ari_proxy.__version__}
    async with ari_proxy.connect(bus_url, application=application, timeout=10.0) as ari:
        async with ari.listen() as calls:  # each call goes to one instance
            # Not in the README: the caller, a Local channel whose ;1 half enters the application.
            caller = await ari.channels.originate("Local/wait@default")
            # README begin
            async for call in calls:
                async with call:
                    await call.channel.answer()
                    staged = await call.channel.stage_play("sound:hello-world")
                    async with staged.subscribe("PlaybackFinished") as done:
                        await staged.execute()  # subscribed first: nothing is missed
                        await done.next(timeout=30)
                    await call.channel.hangup()
                    # README end
                    report["played"] = True  # done.next() raises unless PlaybackFinished came
                    report["call_is_the_caller"] = call.channel.id == caller.id
                break
        for _ in range(100):  # bounded poll: Asterisk drops the channel a moment after hangup
            try:
                await caller.data()
            except ari_proxy.NotFoundError:
                report["hung_up"] = True
                break
            await asyncio.sleep(0.05)
    return report


async def main(bus_url: str, application: str) -> None:
    async with asyncio.timeout(90):
        report = await take_one_call(bus_url, application)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
