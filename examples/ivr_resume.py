"""An IVR that outlives its instance: each step it completes is saved beside the call, and the
instance a call is handed to (after a crash, or a deploy's drain) resumes at the step it
reached (docs/handover.md). Run several instances; stop one with SIGTERM mid-call.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field

import ari_proxy

log = logging.getLogger("ivr_resume")

STEPS = ("sound:hello-world", "sound:beep", "sound:hello-world")
"""The IVR's prompts, played in order; then the call is hung up."""


@dataclass
class Ivr:
    """One instance of the IVR.

    Attributes:
        done: (channel, step) for each step this instance completed, in order.
        resumed: channel -> the step a handed-over call resumed at.
    """

    steps: tuple[str, ...] = STEPS
    done: list[tuple[str, int]] = field(default_factory=list)
    resumed: dict[str, int] = field(default_factory=dict)

    async def handle(self, call: ari_proxy.Call) -> None:
        """Play the steps from the one the call reached, saving each as it completes."""
        step = int(call.state or b"0")
        if call.handed_over:
            assert call.handover is not None
            log.info(
                "call %s handed over (%s), resuming at step %d",
                call.channel.id,
                call.handover.reason,
                step,
            )
            self.resumed[call.channel.id] = step
        else:
            await call.channel.answer()
        while step < len(self.steps):
            if not await self.play(call, self.steps[step]):
                return  # the caller hung up, or the call is no longer this instance's
            step += 1
            await call.save_state(str(step).encode())  # a new owner starts after this step
            self.done.append((call.channel.id, step - 1))
        await call.channel.hangup()

    async def play(self, call: ari_proxy.Call, media: str) -> bool:
        """Play `media`: True once it finished, False if the call left first."""
        async with call.client.subscribe("PlaybackFinished", "StasisEnd") as events:
            playback = await call.channel.play(media)
            async for event in events:
                if ari_proxy.event_type(event) == "StasisEnd":
                    return False
                if event.playback.id == playback.id:  # type: ignore[attr-defined]
                    return True
        return False  # the subscription ended: the call was handed over (a drain)


async def run(
    client: ari_proxy.Client,
    calls: int | None = None,
    *,
    ivr: Ivr | None = None,
    stop: asyncio.Event | None = None,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Ivr:
    """Serve calls until SIGTERM/SIGINT (or `stop`), then hand the live ones over; `calls`
    is accepted for the examples' command line and not used (an IVR runs until stopped)."""
    ivr = ivr or Ivr()
    handed = await ari_proxy.serve(client, ivr.handle, stop=stop, signals=signals)
    log.info("stopped; %d calls handed over", handed)
    return ivr


if __name__ == "__main__":
    from _common import main

    main(run, __doc__)
