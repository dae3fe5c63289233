"""The runs' series as text: what Prometheus' parser reads back, and re-rendered on change only."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from streams import histogram
from streams.prom import RunSeries
from wire import Histogram, SecondMetrics


def row(run: str, label: str | None, elapsed_ms: list[int], failures: int = 0) -> SecondMetrics:
    buckets = histogram.buckets(elapsed_ms).tolist()
    h = Histogram(
        scheme=histogram.SCHEME,
        buckets=sorted(set(buckets)),
        counts=[buckets.count(b) for b in sorted(set(buckets))],
    )
    return SecondMetrics(
        run_id=run, plan_id=None if label is None else "p1", label=label, second_s=1,
        count=len(elapsed_ms), failures=failures, codes={}, bytes_recv=100 * len(elapsed_ms),
        bytes_sent=0, elapsed_min_ms=min(elapsed_ms), elapsed_max_ms=max(elapsed_ms),
        elapsed_sum_ms=sum(elapsed_ms), threads_max=1, elapsed=h, latency=h, connect=h,
    )  # fmt: skip


def parsed(series: RunSeries) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(series.exposition().decode())
        for s in family.samples
    }


def test_the_text_parses_to_the_rows_observed() -> None:
    series = RunSeries()
    series.set_collection("r1", "c1")
    series.observe([row("r1", 'say "hi"\\', [3, 40, 700]), row("r1", None, [3, 40, 700])])
    series.observe([row("r1", 'say "hi"\\', [9], failures=1)])
    got = parsed(series)
    labels = (("collection", "c1"), ("label", 'say "hi"\\'), ("plan", "p1"), ("run", "r1"))
    assert got[("shibuya_samples_total", labels)] == 4  # the run-total row is left out
    assert got[("shibuya_failures_total", labels)] == 1
    assert got[("shibuya_received_bytes_total", labels)] == 400
    assert got[("shibuya_response_time_seconds_sum", labels)] == 0.752
    assert got[("shibuya_response_time_seconds_count", labels)] == 4
    buckets = {dict(k[1])["le"]: v for k, v in got.items() if k[0].endswith("_bucket")}
    assert buckets == {
        "0.005": 1, "0.01": 2, "0.025": 2, "0.05": 3, "0.1": 3, "0.25": 3, "0.5": 3,
        "1.0": 4, "2.5": 4, "5.0": 4, "10.0": 4, "30.0": 4, "60.0": 4, "+Inf": 4,
    }  # fmt: skip
    assert len(got) == 3 + 14 + 2


def test_a_change_renders_anew_and_a_dropped_run_goes() -> None:
    series = RunSeries()
    series.observe([row("r1", "a", [5]), row("r2", "a", [5])])
    first = series.exposition()
    assert series.exposition() is first  # nothing changed: the same bytes
    series.set_collection("r2", "c2")
    second = series.exposition()
    assert 'collection="c2",plan="p1",run="r2"' in second.decode()
    series.drop_run("r1")
    assert 'run="r1"' not in series.exposition().decode()
    assert series.runs() == ["r2"]


def test_labels_past_the_cap_count_as_others() -> None:
    series = RunSeries(max_labels=2)
    series.observe([row("r1", name, [5]) for name in ("a", "b", "c", "d")])
    got = parsed(series)
    per_label = {dict(k[1])["label"]: v for k, v in got.items() if k[0] == "shibuya_samples_total"}
    assert per_label == {"a": 1, "b": 1, "(other labels)": 2}
