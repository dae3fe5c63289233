"""JMeter result files (JTL) in CSV form, parsed incrementally into result batches.

Pure: bytes in, samples and errors out, no I/O. Understood:

* JMeter CSV with a header row: any ``jmeter.save.saveservice.*`` column set, in any order, any
  one-character delimiter; fields quoted with ``"`` may hold the delimiter, quotes (doubled) and
  newlines;
* Shibuya's engine format: 12 ``|``-separated columns, no header;
* JMeter's default 17 columns when the file has no header.

Records are cut at a newline outside quotes, on bytes, so every record has an exact byte offset
and the file position after the last complete record can be checkpointed. A partial last record
waits for more bytes. A record that is malformed (wrong field count, a number that is not one,
undecodable bytes, longer than ``max_record_bytes``) is counted with its line number and reason,
and parsing goes on with the next one.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from engine_sidecar.jtl_arrow import INT_COLUMNS, ArrowBlockParser
from engine_sidecar.jtl_format import JtlFormat
from wire import BatchBuilder

ERROR_SAMPLES: Final = 20


@dataclass
class ErrorReport:
    """Malformed records: counted exactly by reason, the first few kept with their line numbers
    (the samples are an illustration; the counts are the truth)."""

    count: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[int, str]] = field(default_factory=list)
    unreadable: str | None = None
    """Why a file could not be read as results at all (its lines are counted, as malformed)."""

    def summary(self) -> str:
        """``""`` or e.g. ``"3 malformed lines (wrong field count: 2, not a number: 1); first:
        line 17: wrong field count: 3 fields, expected 17"``."""
        if not self.count and self.unreadable is None:
            return ""
        if self.unreadable is not None:
            return f"results file unreadable, {self.count} lines not counted: {self.unreadable}"
        kinds = ", ".join(f"{k}: {n}" for k, n in self.by_reason.most_common())
        line_no, reason = self.samples[0]
        return f"{self.count} malformed lines ({kinds}); first: line {line_no}: {reason}"

    def add(self, line_no: int, reason: str, lines: int = 1, *, sample: bool = True) -> None:
        """``lines`` malformed lines from ``line_no`` on, for one reason (kept as a sample
        unless ``sample`` is false, or there are enough)."""
        self.count += lines
        self.by_reason[reason.split(":")[0]] += lines
        if sample and len(self.samples) < ERROR_SAMPLES:
            self.samples.append((line_no, reason))


@dataclass
class Progress:
    """Where parsing stands in the file."""

    offset: int = 0
    """Byte offset just after the last complete record consumed."""
    line_no: int = 1
    """Line number (1-based) at which the next record starts."""


class Split:
    """Records completed by one :meth:`RecordSplitter.split` call: as parallel lists, or — the
    fast path, most chunks of most files — as one block of one-line records, the bytes as the
    file holds them, whose lists are made only if asked for."""

    def __init__(
        self, records: Sequence[bytes | None] = (), sizes: Sequence[int] = (),
        lines: Sequence[int] = (), *, block: bytes | None = None,
        ends: npt.NDArray[np.int64] | None = None,
    ) -> None:  # fmt: skip
        self.block = block
        """One-line records, each ending in a newline (``None``: see ``records``)."""
        self.ends = ends if ends is not None else np.zeros(0, np.int64)
        """The block's records' end offsets in it, newline included."""
        self._records, self._sizes, self._lines = records, sizes, lines

    @property
    def count(self) -> int:
        return len(self.ends) if self.block is not None else len(self._records)

    @property
    def size(self) -> int:
        """Bytes the records took in the file."""
        return len(self.block) if self.block is not None else sum(self._sizes)

    @property
    def line_count(self) -> int:
        return len(self.ends) if self.block is not None else sum(self._lines)

    @property
    def records(self) -> Sequence[bytes | None]:
        """Each record without its final newline; ``None`` for an overlong record (dropped)."""
        return self.block[:-1].split(b"\n") if self.block else self._records

    @property
    def sizes(self) -> Sequence[int]:
        """Bytes each record took in the file, newline included."""
        return np.diff(self.ends, prepend=0).tolist() if self.block is not None else self._sizes

    @property
    def lines(self) -> Sequence[int]:
        """Lines each record spans (more than one when a quoted field holds newlines)."""
        return [1] * len(self.ends) if self.block is not None else self._lines

    def after(self, n: int) -> tuple[bytes, int]:
        """The block from its record ``n`` on, and how many records that is."""
        assert self.block is not None
        return self.block[int(self.ends[n - 1]) if n else 0 :], len(self.ends) - n


class RecordSplitter:
    """Cuts a byte stream into complete records: newline-terminated, quotes balanced.

    A record longer than ``max_record_bytes`` is not kept in memory: its bytes are dropped up to
    the next newline, and it comes out as ``None`` with the number of bytes it had.
    """

    def __init__(self, max_record_bytes: int) -> None:
        self.max_record_bytes = max_record_bytes
        self._pending = b""
        self._skipped: int | None = None  # bytes dropped so far of an overlong record

    def keep_after(self, split: Split, n: int) -> Split:
        """The first ``n`` records of ``split``; the rest go back in front of what is pending.

        Only whole records go back; a record dropped as overlong stays taken (its bytes are gone).
        """
        if split.block is not None:
            cut = int(split.ends[n - 1]) if n else 0
            self._pending = split.block[cut:] + self._pending
            return Split(block=split.block[:cut], ends=split.ends[:n])
        records = split.records
        cut = n
        while cut < len(records) and records[cut] is None:
            cut += 1
        rest = records[cut:]
        self._pending = b"".join(r + b"\n" for r in rest if r is not None) + self._pending
        return Split(records[:cut], split.sizes[:cut], split.lines[:cut])

    def split(self, data: bytes) -> Split:
        buf = self._pending + data
        last = buf.rfind(b"\n")
        if self._skipped is None and last >= 0:
            # Fast path: every line holds an even number of quotes and fits the limit, so every
            # line is a record; found with numpy, kept as one block of bytes.
            b = np.frombuffer(buf, np.uint8, last + 1)
            newlines = np.flatnonzero(b == 10)
            ends = newlines + 1
            if (
                (b'"' not in buf or _quotes_balanced_per_line(b, newlines))
                and int(np.diff(ends, prepend=0).max()) <= self.max_record_bytes
                and len(buf) - last - 1 <= self.max_record_bytes
            ):
                self._pending = buf[last + 1 :]
                return Split(block=buf[: last + 1], ends=ends)
        return self._split_slowly(buf)

    def _split_slowly(self, buf: bytes) -> Split:
        records: list[bytes | None] = []
        sizes: list[int] = []
        lines_of: list[int] = []
        out = Split(records, sizes, lines_of)
        start = scan = quotes = lines = 0
        while (nl := buf.find(b"\n", scan)) >= 0:
            lines += 1
            if self._skipped is not None:
                records.append(None)
                sizes.append(self._skipped + nl + 1 - start)
                lines_of.append(lines)
                self._skipped = None
                start = scan = nl + 1
                quotes = lines = 0
                continue
            quotes += buf.count(b'"', scan, nl)
            scan = nl + 1
            if quotes % 2 == 0:  # a record; one longer than the limit is dropped, as above
                records.append(buf[start:nl] if scan - start <= self.max_record_bytes else None)
                sizes.append(scan - start)
                lines_of.append(lines)
                start, quotes, lines = scan, 0, 0
        rest = buf[start:]
        if self._skipped is not None:
            self._skipped += len(rest)
            self._pending = b""
        elif len(rest) > self.max_record_bytes:
            self._skipped = len(rest)
            self._pending = b""
        else:
            self._pending = rest
        return out


class JtlParser:
    """Feed it bytes as the file grows; it adds complete samples to a :class:`BatchBuilder`."""

    def __init__(
        self, fmt: JtlFormat, *, max_record_bytes: int = 64 * 1024,
        errors: ErrorReport | None = None,
    ) -> None:  # fmt: skip
        self.format = fmt
        self.errors = errors if errors is not None else ErrorReport()
        """Where malformed records are counted (its reader's, shared by every file it reads)."""
        self.progress = Progress()
        self._splitter = RecordSplitter(max_record_bytes)
        self._header_pending = fmt.has_header
        cols = {name: i for i, name in enumerate(fmt.columns)}
        self._n = len(fmt.columns)
        self._arrow = ArrowBlockParser(fmt.delimiter, fmt.columns)
        self._ix = {
            name: cols.get(name)
            for name in (
                *INT_COLUMNS,
                "label",
                "responseCode",
                "success",
                "failureMessage",
                "responseMessage",
            )
        }

    def feed(self, data: bytes, out: BatchBuilder, limit: int | None = None) -> int:
        """Parse the complete records in ``data`` (after what came before); return samples added.

        With ``limit``, at most that many records (so samples) are taken; the rest wait for the
        next call (``feed(b"", …)`` goes on with them). ``progress`` then points just after the
        last record taken.
        """
        split = self._splitter.split(data)
        skip = 1 if self._header_pending and split.count else 0
        if limit is not None and split.count - skip > limit:
            split = self._splitter.keep_after(split, skip + limit)
        first_line = self.progress.line_no
        self.progress.offset += split.size
        self.progress.line_no += split.line_count
        if skip:
            self._header_pending = False
        added = -1
        if split.block is not None:
            block, rows = split.after(skip)
            if rows and not (np.diff(split.ends, prepend=0)[skip:] == 1).any():  # no empty line
                added = self._parse_block(block, rows, out)
        elif (body := split.records[skip:]) and None not in body and b"" not in body:
            added = self._parse_block(b"\n".join(body) + b"\n", len(body), out)  # type: ignore[arg-type]
        if added < 0:  # something in the block is odd: record by record, to say what
            added = self._parse_each(split, skip, first_line, out)
        return added

    def _parse_each(self, split: Split, skip: int, first_line: int, out: BatchBuilder) -> int:
        added = 0
        line_no = first_line
        limit = self._splitter.max_record_bytes
        for i, (raw, size, lines) in enumerate(
            zip(split.records, split.sizes, split.lines, strict=True)
        ):
            if i < skip:
                pass
            elif raw is None:
                self.errors.add(line_no, f"record longer than {limit} bytes: {size} bytes")
            elif raw.strip():
                reason = self._parse_one(raw, out)
                if reason is None:
                    added += 1
                else:
                    self.errors.add(line_no, reason)
            line_no += lines
        return added

    def _parse_block(self, data: bytes, rows: int, out: BatchBuilder) -> int:
        """All ``rows`` records of ``data`` at once (Arrow); -1 (nothing added) if any one is
        malformed."""
        block = self._arrow.parse(data, rows)
        if block is None:
            return -1
        i = block.ints
        out.add_many(
            ts_ms=i["timeStamp"],
            elapsed_ms=i["elapsed"],
            latency_ms=i["Latency"],
            connect_ms=i["Connect"],
            bytes_recv=i["bytes"],
            bytes_sent=i["sentBytes"],
            grp_threads=i["grpThreads"],
            all_threads=i["allThreads"],
            labels=block.labels,
            codes=block.codes,
            success=block.success,
            messages=block.messages,
        )
        return rows

    def skip_to(self, offset: int, line_no: int) -> None:
        """Resume after a checkpoint: the header (if any) lies before ``offset``."""
        self.progress = Progress(offset, line_no)
        self._header_pending = self._header_pending and offset == 0

    def _parse_one(self, raw: bytes, out: BatchBuilder) -> str | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8: byte {exc.start}"
        try:
            [fields] = csv.reader([text.rstrip("\r\n")], delimiter=self.format.delimiter)
        except (csv.Error, ValueError) as exc:
            return f"bad CSV: {exc}"
        if len(fields) < self._n:
            return f"wrong field count: {len(fields)} fields, expected {self._n}"
        ix = self._ix
        try:
            ts = int(fields[ix["timeStamp"]])  # type: ignore[index]
            elapsed = int(fields[ix["elapsed"]])  # type: ignore[index]
            latency = _int(fields, ix["Latency"])
            connect = _int(fields, ix["Connect"])
            bytes_recv = _int(fields, ix["bytes"])
            bytes_sent = _int(fields, ix["sentBytes"])
            grp = _int(fields, ix["grpThreads"])
            all_threads = _int(fields, ix["allThreads"])
        except ValueError as exc:
            return f"not a number: {str(exc)[:80]}"
        success_text = fields[ix["success"]]  # type: ignore[index]
        if success_text not in ("true", "false"):
            return f"success is neither true nor false: {success_text[:20]!r}"
        success = success_text == "true"
        code = fields[ix["responseCode"]] if ix["responseCode"] is not None else ""
        message = ""
        if not success:  # an assertion's message, else the response's ("Internal Server Error")
            fm, rm = ix["failureMessage"], ix["responseMessage"]
            message = (
                (fields[fm] if fm is not None else "") or (fields[rm] if rm is not None else "")
            )[:500]
        label: str = fields[ix["label"]]  # type: ignore[index]
        out.add(ts_ms=ts, elapsed_ms=elapsed, latency_ms=latency, connect_ms=connect, label=label,
                code=code[:200], success=success, bytes_recv=bytes_recv, bytes_sent=bytes_sent,
                grp_threads=grp, all_threads=all_threads, message=message)  # fmt: skip
        return None


def _quotes_balanced_per_line(b: npt.NDArray[np.uint8], newlines: npt.NDArray[np.intp]) -> bool:
    """Whether every line of ``b`` (which ends with a newline, at ``newlines``) holds an even
    number of ``"``: then the quotes before each newline are even in number (vectorised)."""
    quotes = np.flatnonzero(b == 34)  # '"'
    return not (np.searchsorted(quotes, newlines) & 1).any()


def _int(fields: list[str], index: int | None) -> int:
    return int(fields[index]) if index is not None and fields[index] != "" else 0


class UnreadableFile:
    """A file that cannot be read as results (:class:`FormatError` from its first record): fed
    like a :class:`JtlParser`, it adds no sample and counts every line as malformed, for the one
    reason, so a report says how much was not counted."""

    def __init__(self, reason: str, errors: ErrorReport, *, max_record_bytes: int) -> None:
        self.reason = reason
        self.errors = errors
        errors.unreadable = reason
        self.progress = Progress()
        self._splitter = RecordSplitter(max_record_bytes)

    def feed(self, data: bytes, out: BatchBuilder, limit: int | None = None) -> int:
        split = self._splitter.split(data)
        lines = split.line_count
        if lines:  # one sample says why; the count says how much
            self.errors.add(self.progress.line_no, f"file unreadable: {self.reason}", lines,
                            sample=self.progress.line_no == 1)  # fmt: skip
        self.progress.offset += split.size
        self.progress.line_no += lines
        return 0

    def skip_to(self, offset: int, line_no: int) -> None:
        self.progress = Progress(offset, line_no)
