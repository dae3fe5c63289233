"""The idle-collection GC's table without Faust: purged once per idle period, never while busy."""

from __future__ import annotations

from streams.gc import Collections
from wire import EngineState, EngineStatus, PurgeEngines, StartEngines

T0 = 1_764_288_000_000
IDLE_S, SETTLE_S, FORGET_S = 900, 60, 3600


def _beat(
    collection: str, at_s: float, state: EngineState = EngineState.IDLE, *, exiting: bool = False
) -> EngineStatus:
    return EngineStatus(
        engine_id=f"{collection}-e0", collection_id=collection, plan_id="p", engine_index=0,
        state=state, ts_ms=T0 + int(at_s * 1000), exiting=exiting,
    )  # fmt: skip


def _due(table: Collections, at_s: float) -> list[str]:
    purges, _ = table.due(T0 + int(at_s * 1000), IDLE_S, FORGET_S)
    return [p.command_id for p in purges]


def test_an_idle_collection_is_purged_once_after_the_idle_period() -> None:
    table = Collections()
    for t in range(0, 905, 5):  # heartbeats until the engines are purged
        assert table.on_status(_beat("c1", t), SETTLE_S)
        expected = ["c1.gc.1764288000000"] if t == 900 else []
        assert _due(table, t) == expected, t
    assert _due(table, 5000) == []
    assert table.deployed() == 0


def test_busy_engines_and_run_starts_keep_a_collection() -> None:
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    table.on_status(_beat("c1", 800, EngineState.RUNNING), SETTLE_S)
    assert _due(table, 1699) == []  # idle since 800 s
    table.on_command(StartEngines(command_id="s", collection_id="c1", run_id="r", plan_id="p",
                                  engine_count=1, threads_per_engine=1, duration_s=60,
                                  issued_ms=T0 + 1_600_000))  # fmt: skip
    assert table.deadlines(IDLE_S) == {"c1": T0 + 2_500_000}  # what the live views are told
    assert _due(table, 2499) == []
    assert _due(table, 2500) == ["c1.gc.1764289600000"]
    assert table.deadlines(IDLE_S) == {}  # purged: nothing to count down


def test_after_a_purge_old_heartbeats_are_ignored_and_a_new_deployment_is_tracked() -> None:
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    assert _due(table, 900) == ["c1.gc.1764288000000"]
    assert not table.on_status(_beat("c1", 930), SETTLE_S)  # an engine going away
    assert _due(table, 2000) == []
    assert table.on_status(_beat("c1", 2000), SETTLE_S)  # deployed again
    assert _due(table, 2899) == []
    assert _due(table, 2900) == ["c1.gc.1764290000000"]


def test_a_user_purge_counts_and_purged_collections_are_forgotten() -> None:
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    table.on_command(PurgeEngines(command_id="u", collection_id="c1", reason="user",
                                  issued_ms=T0 + 10_000))  # fmt: skip
    assert _due(table, 900) == []
    purges, forgot = table.due(T0 + 10_000 + FORGET_S * 1000 + 1, IDLE_S, FORGET_S)
    assert (purges, forgot, table.collections) == ([], True, {})


def test_engines_heard_again_after_a_silence_are_a_new_deployment() -> None:
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    table.on_status(_beat("c1", 5), SETTLE_S)
    assert table.deadlines(IDLE_S) == {"c1": T0 + IDLE_S * 1000}
    # The engines vanished without a purge (killed, a node lost); deployed again 10 min later.
    table.on_status(_beat("c1", 605), SETTLE_S)
    assert table.deadlines(IDLE_S) == {"c1": T0 + (605 + IDLE_S) * 1000}
    assert _due(table, 900) == []
    table.on_status(_beat("c1", 610), SETTLE_S)  # heartbeats as usual: no new start
    assert _due(table, 605 + IDLE_S) == [f"c1.gc.{T0 + 605_000}"]


def test_a_sidecars_last_heartbeat_never_counts_as_a_deployment() -> None:
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    assert _due(table, 900) == ["c1.gc.1764288000000"]
    # A sidecar slow to stop says its last word after the settle time: not deployed again.
    assert not table.on_status(_beat("c1", 900 + SETTLE_S + 30, exiting=True), SETTLE_S)
    assert (table.deployed(), table.deadlines(IDLE_S)) == (0, {})
    # Nor does one heard after a silence start a new idle period, busy state or not.
    table = Collections()
    table.on_status(_beat("c1", 0), SETTLE_S)
    assert not table.on_status(_beat("c1", 600, EngineState.STOPPING, exiting=True), SETTLE_S)
    assert _due(table, 900) == ["c1.gc.1764288000000"]
