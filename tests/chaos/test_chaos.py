"""Every chaos scenario (`ari_proxy.testing.chaos`, docs/reliability.md), short: two Asterisk
nodes, a proxy process beside each, four instance processes in `listen()`, Local and SIP calls
and a probe request every 100 ms through the fault. Each must end back to normal (no call left
in Asterisk, no dialog binding left, the probe answered) having lost nothing the page says is
kept: every call Asterisk put in Stasis taken by one instance and completed, no request run
after its caller gave up, no event lost without a `ConnectionGap` telling the call.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ari_proxy.ari import connect as ari_connect
from ari_proxy.testing import Instance
from ari_proxy.testing.chaos import SCENARIOS, Pace, Probe, _ran_late, run_scenario

SHORT = Pace(local_rate=2.0, sip_per_node=4, before=2.0, outage=3.0, after=2.0, hold=2.5)

# Calls on the restarted Asterisk die with it, taken or not yet: Asterisk's promise, not ours.
DROPS_CALLS = {"asterisk-restart"}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_the_system_is_back_to_normal_and_lost_nothing_it_keeps(
    scenario: str, asterisk: Instance, asterisk2: Instance, tmp_path: Path
) -> None:
    pace = SHORT
    if scenario == "rabbitmq-kill":
        # The broker takes 5-10 s to start again: within the default listen deadline (10 s)
        # only by luck. With more, the calls that arrived meanwhile are kept; with the
        # default, they get the fallback (docs/reliability.md).
        pace = Pace(**{**SHORT.__dict__, "listen_deadline": "30s"})
    o = await run_scenario(scenario, [asterisk, asterisk2], tmp_path, pace)
    summary = f"{scenario}: {o} (logs in {tmp_path})"

    assert o.started >= 10, summary
    assert (o.left_in_asterisk, o.bindings_left, o.probe_ok_at_end) == (0, 0, True), summary
    assert (o.taken_twice, o.ran_late) == (0, 0), summary
    if scenario not in DROPS_CALLS:
        assert (o.never_taken, o.dropped) == (0, 0), summary
        assert o.completed + o.refused == o.started, summary
    assert o.events_acked > 0, summary
    assert o.events_lost_untold == 0, summary
    if scenario in ("instance-kill", "instance-stop"):
        assert o.handed_over > 0, summary
    if scenario == "ari-cut":
        assert o.refused > 0, summary  # calls while no one held the application: Asterisk's


async def test_a_failed_request_counts_as_run_late_only_if_asterisk_ran_it_after_the_caller_gave_up(
    asterisk: Instance, app_name: str
) -> None:
    # Two bridges as a probe would have made them, both failed for their caller: one whose
    # caller gave up before Asterisk created it, one after (its answer lost, say).
    async with await ari_connect(
        asterisk.http_url, asterisk.username, asterisk.password, app_name
    ) as native:
        probe = Probe(native, asterisk.entity_id, app_name)
        before = time.time()
        for bridge in (f"{app_name}-late", f"{app_name}-unanswered"):
            await native.bridges.create(bridge_id=bridge)
            probe.made.append(bridge)
            probe.failed.append(bridge)
        probe.gave_up_at = {
            f"{app_name}-late": before - 1.0,
            f"{app_name}-unanswered": time.time() + 1.0,
        }
        in_doubt = f"{app_name}-in-doubt"  # its caller was told it may have run
        await native.bridges.create(bridge_id=in_doubt)
        probe.made.append(in_doubt)
        probe.failed.append(in_doubt)
        probe.gave_up_at[in_doubt] = before - 1.0
        probe.in_doubt.add(in_doubt)
        probe.made.append(f"{app_name}-never-ran")
        probe.failed.append(f"{app_name}-never-ran")
        probe.gave_up_at[f"{app_name}-never-ran"] = before
        assert await _ran_late(native, probe) == (1, 2)
        assert not {h.id for h in await native.bridges.list()} & set(probe.made)  # cleaned up
