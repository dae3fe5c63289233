"""Merge partials per run into final per-second rows on ``metrics.v1``, each emitted once.

The partials topic is keyed by run, so the owner of a partials partition owns its runs. For each
partition it holds :class:`~streams.merge.RunWindows` per run; a timer commits, per partition, one
Kafka transaction with the rows of the windows that closed, the late rows, any window-close
markers for idle runs, the provisional rows of the open seconds that changed (``live.v1``, for
live views: :mod:`wire.live`), and the partition's state record (the runs' cursors). Events are
acked once every window they touched is closed and committed. The pure rules live in
:mod:`streams.merge`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import msgspec
from faust.types import TP, EventT
from prometheus_client import CollectorRegistry, Counter

from streams.agents.owner import PartitionOwner
from streams.app import App
from streams.ledger import Ledger, Record
from streams.merge import RunCursor, RunWindows, decode
from streams.outcomes import Outcome
from streams.prom import RunSeries
from streams.settings import WorkerSettings
from streams.topics import FaustTopics
from wire import DecodeError, SecondMetrics, encode_message, encode_rows, run_key

log = logging.getLogger(__name__)

#: Open seconds further behind the clock get no provisional rows (a backlog being drained).
LIVE_HORIZON_S = 30


class MergeState(msgspec.Struct, kw_only=True):
    """The state record of one partials partition."""

    v: int = 1
    cursors: dict[str, RunCursor] = {}
    seen_ms: dict[str, int] = {}
    """When each run last had a partial (cursors of runs idle past the TTL are dropped)."""


_state_decoder = msgspec.json.Decoder(MergeState)
_state_encoder = msgspec.json.Encoder()


class MergeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.partials = Counter(
            "shibuya_merge_partials", "partials by outcome", ["outcome"], registry=registry
        )
        self.rows = Counter(
            "shibuya_merge_rows", "final per-second rows emitted", registry=registry
        )
        self.late = Counter(
            "shibuya_late_samples",
            "samples that reached a window after it closed (kept as late rows)",
            registry=registry,
        )
        for outcome in (Outcome.APPLIED, Outcome.MALFORMED):
            self.partials.labels(outcome.value)


@dataclass
class Held:
    event: EventT[bytes]
    run_id: str
    last_s: int
    """The newest second the message touched (acked once the run is closed past it)."""


@dataclass
class MergeWork:
    tp: TP
    ledger: Ledger
    state: MergeState
    runs: dict[str, RunWindows] = field(default_factory=dict)
    held: list[Held] = field(default_factory=list)
    out: list[Record] = field(default_factory=list)
    rows: list[SecondMetrics] = field(default_factory=list)
    late: int = 0
    dirty: bool = False
    """Partials applied since the last commit."""
    next_offset: int = 0


class Merge(PartitionOwner[MergeWork]):
    """The merge agent and its flush timer, over the partials partitions this worker owns."""

    name = "merge"
    flush_phase = 0.85  # after the aggregate agents' partials are committed

    def __init__(
        self,
        app: App,
        settings: WorkerSettings,
        topics: FaustTopics,
        metrics: MergeMetrics,
        series: RunSeries,
    ) -> None:
        super().__init__(app, settings)
        self.metrics = metrics
        self.series = series
        self._metrics_topic = topics.metrics.get_topic_name()
        self._live_topic = topics.live if settings.live_rows else None
        # A source (results partition) flushes every interval; silent for longer, it is idle.
        self._idle_s = settings.window_grace_s + 2 * settings.flush_interval_s

    def positions(self) -> dict[TP, int]:
        """The next offset to take in, per owned partition (for the lag gauge)."""
        return {w.tp: w.next_offset for w in self._work.values()}

    async def open(self, tp: TP) -> MergeWork:
        ledger = self.ledger(tp)
        raw = await ledger.open()
        state = _state_decoder.decode(raw) if raw else MergeState()
        log.info("took over %s (%d runs with cursors)", tp, len(state.cursors))
        return MergeWork(tp=tp, ledger=ledger, state=state)

    def apply(self, work: MergeWork, event: EventT[bytes]) -> None:
        """Apply one partials message; hold its event until its windows are committed."""
        m = event.message
        work.next_offset = m.offset + 1
        try:
            message = decode(event.value)
        except DecodeError as exc:
            log.warning(
                "skipped malformed partials message at %s[%d]@%d: %s",
                m.topic,
                m.partition,
                m.offset,
                exc.reason,
            )
            self.metrics.partials.labels(Outcome.MALFORMED.value).inc()
            work.held.append(Held(event, "", -1))
            return
        self.metrics.partials.labels(Outcome.APPLIED.value).inc()
        run_id = message.partial.run_id
        windows = work.runs.get(run_id)
        if windows is None:
            cursor = work.state.cursors.get(run_id)
            windows = work.runs[run_id] = RunWindows(
                run_id,
                self.settings.window_grace_s,
                self._idle_s,
                msgspec.structs.replace(cursor) if cursor else None,
                live=self._live_topic is not None,
            )
        closed = windows.apply(message, m.offset, f"{m.topic}/{m.partition}", time.monotonic())
        self._emit(work, run_id, closed.rows)
        if closed.late is not None:
            work.out.append(
                Record(self._metrics_topic, run_key(run_id), encode_message(closed.late))
            )
            work.late += closed.late_samples
        work.state.seen_ms[run_id] = int(time.time() * 1000)
        work.dirty = True
        last_s = int(message.seconds.max()) if len(message.seconds) else -1
        work.held.append(Held(event, run_id, last_s))

    def _emit(self, work: MergeWork, run_id: str, rows: list[SecondMetrics]) -> None:
        key = run_key(run_id)
        work.out.extend(Record(self._metrics_topic, key, v) for v in encode_rows(run_id, rows))
        work.rows.extend(rows)

    async def flush_one(self, work: MergeWork) -> None:
        now = time.monotonic()
        for run_id, windows in work.runs.items():
            self._emit(work, run_id, windows.tick(now))  # runs whose sources went quiet
            if self._live_topic is None:
                continue
            live = windows.provisional(since_s=int(time.time()) - LIVE_HORIZON_S)
            if live is not None:
                work.out.append(Record(self._live_topic, run_key(run_id), encode_message(live)))
        if not work.out and not work.dirty:
            return
        work.dirty = False
        out, work.out = work.out, []
        rows, work.rows = work.rows, []
        late, work.late = work.late, 0
        for run_id, windows in work.runs.items():
            work.state.cursors[run_id] = msgspec.structs.replace(
                windows.cursor, offset=windows.offset
            )
        self._expire(work)
        closed = {run_id: w.closed_s for run_id, w in work.runs.items()}
        await work.ledger.commit(out, _state_encoder.encode(work.state))
        self.metrics.rows.inc(len(rows))
        self.metrics.late.inc(late)
        self.series.observe(rows)
        # Ack in offset order, up to the first event with a window still open.
        done = 0
        while done < len(work.held) and work.held[done].last_s <= closed.get(
            work.held[done].run_id, -1
        ):
            done += 1
        acked, work.held = work.held[:done], work.held[done:]
        await self.ack([h.event for h in acked])

    def _expire(self, work: MergeWork) -> None:
        now_ms = int(time.time() * 1000)
        ttl_ms = self.settings.run_ttl_s * 1000
        for run_id, seen in list(work.state.seen_ms.items()):
            windows = work.runs.get(run_id)
            if now_ms - seen > ttl_ms and (windows is None or not windows.open_seconds):
                work.state.cursors.pop(run_id, None)
                work.state.seen_ms.pop(run_id, None)
                work.runs.pop(run_id, None)
                self.series.drop_run(run_id)

    def dropped(self, work: MergeWork) -> None:
        for run_id in work.runs:
            self.series.drop_run(run_id)


def register(
    app: App,
    settings: WorkerSettings,
    topics: FaustTopics,
    registry: CollectorRegistry,
    series: RunSeries,
) -> Merge:
    merge = Merge(app, settings, topics, MergeMetrics(registry), series)
    merge.register(topics.partials)
    return merge
