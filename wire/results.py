"""Raw result batches: many JMeter samples per Kafka message, columnar.

Frame, version 1 (all integers little-endian)::

    offset  size  field
    0       4     magic b"SHRB"
    4       1     frame version (1)
    5       3     zero
    8       4     header length H (bytes of JSON, padded with spaces to a multiple of 8)
    12      4     sample count N
    16      H     header: JSON object, see ``_Header``
    16+H    ...   columns, in ``COLUMNS`` order, each N values of its dtype, no gaps

Columns are ordered by item size (8, 4, 2, 1 bytes) so every column starts aligned.
Strings (labels, response codes, failure messages) are dictionary-encoded: the header holds the
distinct values of the batch, the column holds their indexes. Timestamps are offsets from the
header's ``ts_base_ms``. Decoding is ``numpy.frombuffer`` on slices of the message — no copy,
no per-sample Python work (docs/wire-format.md has the measurements behind this choice).
Compression is left to the Kafka producer (zstd by default), which the broker keeps as it is.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from wire.errors import DecodeError
from wire.routing import check_id

MAGIC: Final = b"SHRB"
FRAME_VERSION: Final = 1
_PREFIX = struct.Struct("<4sB3xII")

#: ``(name, dtype)`` in frame order. Units are in the names.
COLUMNS: Final[tuple[tuple[str, np.dtype[np.generic]], ...]] = (
    ("bytes_recv", np.dtype(np.int64)),  # response size incl. headers (JMeter "bytes")
    ("bytes_sent", np.dtype(np.int64)),  # request size (JMeter "sentBytes")
    ("ts_off_ms", np.dtype(np.int32)),  # sample start time minus ts_base_ms
    ("elapsed_ms", np.dtype(np.int32)),  # JMeter "elapsed": full response time
    ("latency_ms", np.dtype(np.int32)),  # JMeter "Latency": time to first byte
    ("connect_ms", np.dtype(np.int32)),  # JMeter "Connect"
    ("grp_threads", np.dtype(np.int32)),  # active threads in the sample's thread group
    ("all_threads", np.dtype(np.int32)),  # active threads in the engine
    ("label_idx", np.dtype(np.uint16)),  # index into header.labels
    ("code_idx", np.dtype(np.uint16)),  # index into header.codes
    ("message_idx", np.dtype(np.uint16)),  # index into header.messages ("" when none)
    ("success", np.dtype(np.uint8)),  # 1 = success, 0 = failure
)
BYTES_PER_SAMPLE: Final = sum(dt.itemsize for _, dt in COLUMNS)
# The frame is little-endian. On little-endian hosts decode with the native dtype objects: an
# equal but distinct little-endian dtype pushes ``ufunc.at`` onto a slow path downstream.
_WIRE_DTYPES: Final = tuple(
    (name, dt if sys.byteorder == "little" else dt.newbyteorder("<")) for name, dt in COLUMNS
)
MAX_DISTINCT: Final = 65_535
#: A batch spans at most this many milliseconds of sample time (``ts_off_ms`` is an int32).
MAX_SPAN_MS: Final = 2**31 - 1

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
UInt16Array = npt.NDArray[np.uint16]
UInt8Array = npt.NDArray[np.uint8]


class _Header(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    run: str
    plan: str
    engine: str
    seq: int
    ts_base_ms: int
    labels: list[str]
    codes: list[str]
    messages: list[str]
    last: bool = False


_header_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(_Header)


@dataclass(frozen=True, slots=True, eq=False)
class ResultBatch:
    """Samples of one engine in one run, as columns.

    ``(engine_id, seq)`` identifies the batch: a sidecar numbers its batches 0, 1, 2 … and keeps
    counting across restarts, so consumers drop redeliveries by that pair. ``last``: the engine
    has finished, no batch of its run follows (a sidecar sends it empty, after the last sample;
    the stream then closes the engine's seconds without waiting for its silence).
    """

    run_id: str
    plan_id: str
    engine_id: str
    seq: int
    ts_base_ms: int
    labels: tuple[str, ...]
    codes: tuple[str, ...]
    messages: tuple[str, ...]
    bytes_recv: Int64Array
    bytes_sent: Int64Array
    ts_off_ms: Int32Array
    elapsed_ms: Int32Array
    latency_ms: Int32Array
    connect_ms: Int32Array
    grp_threads: Int32Array
    all_threads: Int32Array
    label_idx: UInt16Array
    code_idx: UInt16Array
    message_idx: UInt16Array
    success: UInt8Array
    last: bool = False

    def __len__(self) -> int:
        return int(self.ts_off_ms.shape[0])

    @property
    def ts_ms(self) -> Int64Array:
        """Absolute sample start times (epoch milliseconds)."""
        return self.ts_off_ms.astype(np.int64) + self.ts_base_ms

    def column(self, name: str) -> npt.NDArray[np.generic]:
        value: npt.NDArray[np.generic] = getattr(self, name)
        return value


def encode_batch(batch: ResultBatch) -> bytes:
    """The version-1 frame of ``batch``."""
    n = len(batch)
    header = _header_encoder.encode(
        _Header(
            run=batch.run_id,
            plan=batch.plan_id,
            engine=batch.engine_id,
            seq=batch.seq,
            ts_base_ms=batch.ts_base_ms,
            labels=list(batch.labels),
            codes=list(batch.codes),
            messages=list(batch.messages),
            last=batch.last,
        )
    )
    header += b" " * (-len(header) % 8)
    parts = [_PREFIX.pack(MAGIC, FRAME_VERSION, len(header), n), header]
    for name, dtype in _WIRE_DTYPES:
        col = batch.column(name)
        if col.shape != (n,):
            raise ValueError(f"column {name} has shape {col.shape}, expected ({n},)")
        parts.append(np.ascontiguousarray(col, dtype=dtype).tobytes())
    return b"".join(parts)


def decode_batch(data: bytes) -> ResultBatch:
    """Parse a frame; raise :class:`DecodeError` with the reason if it is not a valid one.

    The columns are read-only views into ``data``.
    """
    if len(data) < _PREFIX.size:
        raise DecodeError("result batch", f"{len(data)} bytes is shorter than the frame prefix")
    magic, version, header_len, n = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("result batch", f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != FRAME_VERSION:
        raise DecodeError("result batch", f"unsupported frame version {version}")
    start = _PREFIX.size + header_len
    if len(data) != start + n * BYTES_PER_SAMPLE:
        raise DecodeError(
            "result batch",
            f"length {len(data)} does not match header of {header_len} bytes and {n} samples",
        )
    try:
        header = _header_decoder.decode(data[_PREFIX.size : start])
        for kind, value in (("run id", header.run), ("plan id", header.plan)):
            check_id(kind, value)
        check_id("engine id", header.engine)
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError("result batch", f"bad header: {exc}") from exc
    cols: dict[str, npt.NDArray[np.generic]] = {}
    offset = start
    for name, dtype in _WIRE_DTYPES:
        cols[name] = np.frombuffer(data, dtype, n, offset)
        offset += n * dtype.itemsize
    for name, values in (
        ("label_idx", header.labels),
        ("code_idx", header.codes),
        ("message_idx", header.messages),
    ):
        if n and int(cols[name].max()) >= len(values):
            raise DecodeError("result batch", f"{name} out of range of {len(values)} values")
    return ResultBatch(
        run_id=header.run,
        plan_id=header.plan,
        engine_id=header.engine,
        seq=header.seq,
        ts_base_ms=header.ts_base_ms,
        labels=tuple(header.labels),
        codes=tuple(header.codes),
        messages=tuple(header.messages),
        **cols,  # type: ignore[arg-type]
        last=header.last,
    )


class BatchBuilder:
    """Collects samples and cuts them into :class:`ResultBatch` es.

    Pure bookkeeping for producers (the sidecar, tests, the demo): it interns strings, keeps
    samples added one at a time in Python lists and samples added as columns in arrays, and
    concatenates them, in order, in :meth:`build`.
    """

    __slots__ = ("_cols", "_dicts", "_n_parts", "_parts")

    def __init__(self) -> None:
        self._cols: dict[str, list[int]] = {}  # bools count as ints
        self._parts: dict[str, list[npt.NDArray[np.generic]]] = {}
        self._n_parts = 0
        self._dicts: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
        self._reset()

    def _reset(self) -> None:
        self._cols = {name: [] for name, _ in COLUMNS}
        self._parts = {name: [] for name, _ in COLUMNS}
        self._n_parts = 0
        self._dicts = ({}, {}, {})

    def __len__(self) -> int:
        return len(self._cols["elapsed_ms"]) + self._n_parts

    def add(
        self,
        *,
        ts_ms: int,
        elapsed_ms: int,
        label: str,
        code: str,
        success: bool,
        latency_ms: int = 0,
        connect_ms: int = 0,
        bytes_recv: int = 0,
        bytes_sent: int = 0,
        grp_threads: int = 0,
        all_threads: int = 0,
        message: str = "",
    ) -> None:
        c = self._cols
        labels, codes, messages = self._dicts
        c["ts_off_ms"].append(ts_ms)  # absolute until build()
        c["elapsed_ms"].append(elapsed_ms)
        c["latency_ms"].append(latency_ms)
        c["connect_ms"].append(connect_ms)
        c["bytes_recv"].append(bytes_recv)
        c["bytes_sent"].append(bytes_sent)
        c["grp_threads"].append(grp_threads)
        c["all_threads"].append(all_threads)
        c["success"].append(1 if success else 0)
        c["label_idx"].append(_intern(labels, label))
        c["code_idx"].append(_intern(codes, code))
        c["message_idx"].append(_intern(messages, message))

    def add_many(
        self,
        *,
        ts_ms: ArrayLike,
        elapsed_ms: ArrayLike,
        latency_ms: ArrayLike,
        connect_ms: ArrayLike,
        bytes_recv: ArrayLike,
        bytes_sent: ArrayLike,
        grp_threads: ArrayLike,
        all_threads: ArrayLike,
        labels: Strings,
        codes: Strings,
        success: ArrayLike,
        messages: Strings,
    ) -> None:
        """Add samples given as columns of equal length: what a block parser produces.

        String columns come as one string per sample, or encoded: ``(distinct values, each
        sample's index into them)``.
        """
        self._move_lists_to_parts()
        p = self._parts
        ldict, cdict, mdict = self._dicts
        n = len(np.asarray(elapsed_ms))
        for name, values in (
            ("ts_off_ms", ts_ms),
            ("elapsed_ms", elapsed_ms),
            ("latency_ms", latency_ms),
            ("connect_ms", connect_ms),
            ("bytes_recv", bytes_recv),
            ("bytes_sent", bytes_sent),
            ("grp_threads", grp_threads),
            ("all_threads", all_threads),
            ("success", success),
        ):
            arr = np.asarray(values, dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
            p[name].append(arr)
        for name, table, strings in (
            ("label_idx", ldict, labels),
            ("code_idx", cdict, codes),
            ("message_idx", mdict, messages),
        ):
            indexes = _indexes(table, strings, n)
            if indexes.shape != (n,):
                raise ValueError(f"{name} has shape {indexes.shape}, expected ({n},)")
            p[name].append(indexes)
        self._n_parts += n

    def _move_lists_to_parts(self) -> None:
        c = self._cols
        if c["elapsed_ms"]:
            self._n_parts += len(c["elapsed_ms"])
            for name, values in c.items():
                self._parts[name].append(np.asarray(values, dtype=np.int64))
                c[name] = []

    def build(self, *, run_id: str, plan_id: str, engine_id: str, seq: int) -> ResultBatch:
        """Everything added so far as one batch; the builder starts empty again."""
        self._move_lists_to_parts()
        parts = self._parts
        whole = {
            name: np.concatenate(parts[name]) if parts[name] else np.zeros(0, np.int64)
            for name, _ in COLUMNS
        }
        ts = whole["ts_off_ms"]
        base = int(ts.min()) if ts.size else 0
        if ts.size and int(ts.max()) - base > MAX_SPAN_MS:
            raise ValueError("samples of one batch span more than 24 days")
        arrays = {name: whole[name].astype(dt) for name, dt in COLUMNS if name != "ts_off_ms"}
        arrays["ts_off_ms"] = (ts - base).astype(np.int32)
        labels, codes, messages = (tuple(d) for d in self._dicts)
        self._reset()
        return ResultBatch(run_id=run_id, plan_id=plan_id, engine_id=engine_id, seq=seq,
                           ts_base_ms=base, labels=labels, codes=codes, messages=messages,
                           **arrays)  # type: ignore[arg-type]  # fmt: skip


Strings = Sequence[str] | tuple[Sequence[str], ArrayLike]


def _indexes(table: dict[str, int], strings: Strings, n: int) -> npt.NDArray[np.int64]:
    """Dictionary indexes of ``strings``, interned in order of first appearance, so that the
    same samples always give the same bytes (a re-sent batch must be identical)."""
    if isinstance(strings, tuple):
        distinct, rows = strings
        mapping = np.fromiter((_intern(table, v) for v in distinct), np.int64, len(distinct))
        return mapping[np.asarray(rows, dtype=np.int64)]
    for v in dict.fromkeys(strings):
        _intern(table, v)
    return np.fromiter(map(table.__getitem__, strings), np.int64, n)


def _intern(table: dict[str, int], value: str) -> int:
    index = table.get(value)
    if index is None:
        if len(table) >= MAX_DISTINCT:
            raise ValueError(f"more than {MAX_DISTINCT} distinct strings in one batch")
        index = table[value] = len(table)
    return index
