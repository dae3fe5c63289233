"""Per-second aggregation against a brute-force reference, merging, and the label cap."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from streams import columns, histogram
from streams.aggregate import (
    MAX_MESSAGE_CHARS,
    NO_MESSAGE,
    OVERFLOW_CODE,
    OVERFLOW_LABEL,
    OVERFLOW_MESSAGE,
    Aggregator,
)
from wire import BatchBuilder, ResultBatch

T0 = 1_764_288_000_000


def _batches(seed: int, n_batches: int = 12, per_batch: int = 700) -> list[ResultBatch]:
    rng = np.random.default_rng(seed)
    out = []
    for seq in range(n_batches):
        b = BatchBuilder()
        run = f"run-{seq % 2}"
        for _ in range(per_batch):
            failed = rng.random() < 0.05
            elapsed = int(rng.lognormal(4, 1))
            b.add(
                ts_ms=T0 + int(rng.integers(0, 4_000)),
                elapsed_ms=elapsed,
                latency_ms=elapsed // 2,
                connect_ms=int(rng.integers(0, 5)),
                label=f'L{int(rng.integers(0, 6))}, "x"',
                code="500" if failed else "200",
                success=not failed,
                message=f"boom {int(rng.integers(0, 3))}" if failed and rng.random() < 0.9 else "",
                bytes_recv=int(rng.integers(0, 10_000)),
                bytes_sent=int(rng.integers(0, 500)),
                all_threads=int(rng.integers(1, 50)),
            )
        out.append(b.build(run_id=run, plan_id="p", engine_id=f"e{seq % 3}", seq=seq))
    return out


def _reference(batches: list[ResultBatch]) -> dict[Any, dict[str, Any]]:
    ref: dict[Any, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    for batch in batches:
        for i in range(len(batch)):
            key = (
                batch.run_id,
                batch.plan_id,
                batch.labels[batch.label_idx[i]],
                int(batch.ts_ms[i]) // 1000,
            )
            r = ref[key]
            r["elapsed"].append(int(batch.elapsed_ms[i]))
            r["latency"].append(int(batch.latency_ms[i]))
            r["connect"].append(int(batch.connect_ms[i]))
            r["codes"].append(batch.codes[batch.code_idx[i]])
            r["success"].append(int(batch.success[i]))
            r["recv"].append(int(batch.bytes_recv[i]))
            r["sent"].append(int(batch.bytes_sent[i]))
            r["threads"].append(int(batch.all_threads[i]))
            if not batch.success[i]:
                r["messages"].append(batch.messages[batch.message_idx[i]] or NO_MESSAGE)
    return ref


def _from_sparse(buckets: list[int], counts: list[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    dense = np.zeros(histogram.MAX_BUCKET + 1, np.int64)
    dense[buckets] = counts
    return dense


def _dense(values: list[int]) -> np.ndarray:
    return np.bincount(histogram.buckets(values), minlength=histogram.MAX_BUCKET + 1)


@pytest.mark.parametrize("dense_limit", [columns._DENSE_LIMIT, 0])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cells_equal_a_brute_force_reference(
    seed: int, dense_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both ways of counting histogram entries at drain: dense (few cells) and by sorting.
    monkeypatch.setattr(columns, "_DENSE_LIMIT", dense_limit)
    batches = _batches(seed)
    agg = Aggregator()
    for b in batches:
        agg.add(b)
    cells = agg.drain()
    ref = _reference(batches)
    assert set(cells) == set(ref)
    for key, cell in cells.items():
        r = ref[key]
        assert cell.count == len(r["elapsed"])
        assert cell.failures == r["success"].count(0)
        assert cell.codes == Counter(r["codes"])
        assert cell.failure_messages == Counter(r["messages"])
        assert (cell.bytes_recv, cell.bytes_sent) == (sum(r["recv"]), sum(r["sent"]))
        assert (cell.elapsed_min_ms, cell.elapsed_max_ms, cell.elapsed_sum_ms) == (
            min(r["elapsed"]),
            max(r["elapsed"]),
            sum(r["elapsed"]),
        )
        assert cell.threads_max == max(r["threads"])
        for name in ("elapsed", "latency", "connect"):
            h = getattr(cell, name)
            assert h.buckets == sorted(h.buckets)
            assert (_from_sparse(h.buckets, h.counts) == _dense(r[name])).all(), name
    assert agg.drain() == {}
    assert agg.samples == sum(len(b) for b in batches)


def test_partials_from_two_aggregators_merge_to_the_whole() -> None:
    batches = _batches(7)
    whole, left, right = Aggregator(), Aggregator(), Aggregator()
    for i, b in enumerate(batches):
        whole.add(b)
        (left if i % 2 else right).add(b)
    # Both halves, per run, added up with the merge agent's grouping: equal to the whole.
    halves = [left.drain_columns(), right.drain_columns()]
    whole_runs = whole.drain_columns()
    for run_id, cells in whole_runs.items():
        parts = [h[run_id] for h in halves if run_id in h]
        keys = sorted({k for p in parts for k in p.keys})
        index = {k: i for i, k in enumerate(keys)}
        ids = [np.array([index[k] for k in p.keys], np.int64) for p in parts]
        merged = columns.rows(run_id, columns.group(parts, keys, ids, total=None))
        expected = sorted(
            columns.rows(run_id, cells), key=lambda r: (r.plan_id, r.label, r.second_s)
        )
        assert merged == expected


def test_labels_past_the_cap_count_under_the_overflow_label() -> None:
    b = BatchBuilder()
    for i in range(10):
        b.add(ts_ms=T0, elapsed_ms=10, label=f"/item/{i}", code="200", success=True)
    agg = Aggregator(max_labels=3)
    agg.add(b.build(run_id="r", plan_id="p", engine_id="e", seq=0))
    cells = agg.drain()
    by_label = {label: cell.count for (_, _, label, _), cell in cells.items()}
    assert by_label == {"/item/0": 1, "/item/1": 1, "/item/2": 1, OVERFLOW_LABEL: 7}


def test_metrics_message_carries_sparse_histograms() -> None:
    agg = Aggregator()
    agg.add(_batches(4, n_batches=1, per_batch=50)[0])
    m = next(iter(agg.drain().values()))
    assert sum(m.elapsed.counts) == m.count > 0
    assert m.elapsed.scheme == "log2pct"
    assert m.elapsed.buckets == sorted(m.elapsed.buckets)


def test_codes_past_the_cap_count_under_the_overflow_code() -> None:
    b = BatchBuilder()
    for i in range(6):
        b.add(
            ts_ms=T0, elapsed_ms=10, label="l", code=f"Non HTTP response code: {i}", success=False
        )
    agg = Aggregator(max_codes=2)
    agg.add(b.build(run_id="r", plan_id="p", engine_id="e", seq=0))
    [cell] = agg.drain().values()
    assert cell.codes == {
        "Non HTTP response code: 0": 1,
        "Non HTTP response code: 1": 1,
        OVERFLOW_CODE: 4,
    }


def test_failure_messages_are_capped_per_label_and_run_cut_and_add_up_to_the_failures() -> None:
    b = BatchBuilder()
    for i in range(30):  # 6 labels × 5 messages each, one of them long
        label = f"L{i % 6}"
        b.add(ts_ms=T0, elapsed_ms=10, label=label, code="500", success=False,
              message=f"assertion {i // 6} failed" if i // 6 < 4 else "x" * 500)  # fmt: skip
        b.add(ts_ms=T0, elapsed_ms=10, label=label, code="200", success=True, message="fine")
    batch = b.build(run_id="r", plan_id="p", engine_id="e", seq=0)

    def messages(agg: Aggregator) -> dict[str, dict[str, int]]:
        agg.add(batch)
        cells = agg.drain()
        for cell in cells.values():
            assert sum(cell.failure_messages.values()) == cell.failures == 5  # exactly, always
            assert "fine" not in cell.failure_messages  # a success has no failure message
        return {label: cell.failure_messages for (_, _, label, _), cell in cells.items()}

    per_label = messages(Aggregator(max_messages=4))  # three messages and the overflow
    assert per_label["L0"] == {"assertion 0 failed": 1, "assertion 1 failed": 1,
                               "assertion 2 failed": 1, OVERFLOW_MESSAGE: 2}  # fmt: skip
    per_run = messages(Aggregator(max_run_messages=2))  # the run's first two, then the overflow
    assert per_run["L5"] == {"assertion 0 failed": 1, "assertion 1 failed": 1, OVERFLOW_MESSAGE: 3}
    whole = messages(Aggregator())
    long = "x" * (MAX_MESSAGE_CHARS - 1) + "…"
    assert whole["L3"] == {**{f"assertion {i} failed": 1 for i in range(4)}, long: 1}


def test_a_row_keeps_its_most_frequent_messages_and_the_rest_as_other() -> None:
    many = {f"m{i}": i + 1 for i in range(30)}
    kept = columns.capped(many)
    assert len(kept) == columns.MAX_MESSAGES
    assert sum(kept.values()) == sum(many.values())
    assert kept["m29"] == 30
    assert "m0" not in kept


@pytest.mark.parametrize(("cells", "entries"), [(50, 100_000), (2000, 300), (3, 5)])
def test_histogram_entries_count_the_same_dense_or_sparse(cells: int, entries: int) -> None:
    """Entries filling the cells' block are counted densely, sparse ones sorted: same triples."""
    rng = np.random.default_rng(cells)
    keys = rng.integers(0, cells, entries) * columns.SLOTS + rng.integers(0, 40, entries) * 7
    weights = rng.integers(1, 5, entries).astype(np.float64)
    for w in (None, weights):
        got = columns.count_entries(keys, w, cells)
        expected: Counter[int] = Counter()
        for i, k in enumerate(keys.tolist()):
            expected[k] += 1 if w is None else int(w[i])
        order = sorted(expected)
        assert [a.tolist() for a in got] == [
            [k // columns.SLOTS for k in order],
            [k % columns.SLOTS for k in order],
            [expected[k] for k in order],
        ]


def test_a_run_is_finished_on_a_partition_once_each_of_its_engines_there_sent_its_last() -> None:
    from streams.agents.aggregate import EngineMark, finished_runs

    engines = {
        "r1/e1": EngineMark(3, 10, 0, last=True),
        "r1/e2": EngineMark(1, 5, 0),
        "r2/e1": EngineMark(0, 0, 0, last=True),
    }
    assert finished_runs(engines, {"r1", "r2"}) == {"r2"}
    engines["r1/e2"] = EngineMark(2, 5, 0, last=True)
    assert finished_runs(engines, {"r1"}) == {"r1"}
    assert finished_runs(engines, set()) == set()
