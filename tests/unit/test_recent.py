"""What the API remembers for a moment: answers (control/results/recent.py) — one query for
concurrent callers, a new one after the time to live, failures not remembered — and callers of
valid tokens (control/services/auth.py)."""

from __future__ import annotations

import asyncio

import pytest

from control.results.recent import Recent
from control.services.auth import Caller, KnownCallers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_callers_share_one_query_until_it_expires() -> None:
    clock = Clock()
    recent = Recent(1.0, clock)
    calls = 0
    gate = asyncio.Event()

    async def query() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    async def main() -> None:
        waiting = [asyncio.create_task(recent.get("k", query)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*waiting) == [1] * 5
        assert await recent.get("k", query) == 1  # still fresh
        assert await recent.get("other", query) == 2  # another key, another query
        clock.now += 1.0
        assert await recent.get("k", query) == 3  # expired: asked again

    asyncio.run(main())
    assert calls == 3


def test_a_failure_is_not_remembered() -> None:
    recent = Recent(10.0, Clock())
    answers: list[int | Exception] = [RuntimeError("ClickHouse away"), 7]

    async def query() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await recent.get("k", query)
        assert await recent.get("k", query) == 7

    asyncio.run(main())


def test_known_callers_are_remembered_for_their_time_only() -> None:
    clock = Clock()
    known = KnownCallers(5.0, max_entries=2, clock=clock)
    alice = Caller(user_id=1, name="alice", groups=frozenset({1}), is_admin=False)
    known.remember("shb_a", alice)
    assert known.get("shb_a") == alice
    assert known.get("shb_other") is None
    clock.now += 5.0
    assert known.get("shb_a") is None  # asked again after ttl_s: a revocation takes effect
    for token in ("shb_1", "shb_2", "shb_3"):  # bounded
        known.remember(token, alice)
    assert known.get("shb_3") == alice
    assert sum(known.get(t) is not None for t in ("shb_1", "shb_2", "shb_3")) <= 2
    off = KnownCallers(0.0, clock=clock)
    off.remember("shb_a", alice)
    assert off.get("shb_a") is None


def test_with_serve_stale_nobody_waits_for_the_rebuild_and_forget_still_drops() -> None:
    clock = Clock()
    recent = Recent(1.0, clock, serve_stale=True)
    gate = asyncio.Event()
    calls = 0

    async def query() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()
        return calls

    async def main() -> None:
        assert await recent.get("k", query) == 1  # nothing to serve yet: waited for
        clock.now += 1.5  # expired half a time to live ago: the previous answer meanwhile
        assert await recent.get("k", query) == 1
        assert await recent.get("k", query) == 1  # still being made: still the previous
        gate.set()
        await asyncio.sleep(0)
        assert await recent.get("k", query) == 2
        clock.now += 2.5  # expired longer ago than a time to live: too old to serve
        assert await waited_for() == 3
        recent.forget("k")  # a write of this replica: the next caller waits for a new answer
        assert await waited_for() == 4

    async def waited_for() -> int:
        """The next answer, checked to be one the caller had to wait for."""
        gate.clear()
        waiting = asyncio.create_task(recent.get("k", query))
        await asyncio.sleep(0)
        assert not waiting.done()
        gate.set()
        return await waiting

    asyncio.run(main())
