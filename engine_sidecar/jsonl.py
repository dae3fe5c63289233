"""Results as JSON lines: the documented format for any engine (docs/sidecar.md#json-lines).

One JSON object per line, one sample each::

    {"ts_ms": 1764288000123, "elapsed_ms": 12, "label": "GET /items", "success": true,
     "code": "200", "message": "", "latency_ms": 10, "connect_ms": 1, "bytes_recv": 512,
     "bytes_sent": 120, "threads": 10}

``ts_ms`` (when the request started, epoch milliseconds), ``elapsed_ms``, ``label`` and
``success`` are required; the rest default to 0 or empty; fields the sidecar does not know are
ignored. A line is a record (JSON strings cannot hold a raw newline), so every record has an
exact byte offset for the checkpoint; a partial last line waits for more bytes. A line that is
not such an object is counted as malformed with its line number and reason, and parsing goes on.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from engine_sidecar.jtl import ErrorReport, Progress
from wire import BatchBuilder

NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class JsonSample(msgspec.Struct, frozen=True):
    ts_ms: NonNegative
    elapsed_ms: NonNegative
    label: Annotated[str, msgspec.Meta(max_length=1000)]
    success: bool
    code: str = ""
    message: str = ""
    latency_ms: NonNegative = 0
    connect_ms: NonNegative = 0
    bytes_recv: NonNegative = 0
    bytes_sent: NonNegative = 0
    threads: NonNegative = 0


_decode = msgspec.json.Decoder(JsonSample).decode


def looks_like_json_lines(first_record: bytes) -> bool:
    return first_record.lstrip(b"\xef\xbb\xbf \t").startswith(b"{")


class JsonLinesParser:
    """Fed like a :class:`~engine_sidecar.jtl.JtlParser`: bytes as the file grows, complete
    samples into a :class:`BatchBuilder`."""

    def __init__(self, *, max_record_bytes: int = 64 * 1024, errors: ErrorReport | None = None):
        self.errors = errors if errors is not None else ErrorReport()
        self.progress = Progress()
        self._max = max_record_bytes
        self._lines: list[bytes | int] = []  # complete lines (an overlong one: its size)
        self._pending = b""  # a partial last line
        self._skipping = 0  # bytes dropped so far of an overlong line

    def skip_to(self, offset: int, line_no: int) -> None:
        self.progress = Progress(offset, line_no)

    def feed(self, data: bytes, out: BatchBuilder, limit: int | None = None) -> int:
        """Parse the complete lines so far; with ``limit``, at most that many (the rest wait for
        the next call). Returns the samples added."""
        self._split(data)
        take = self._lines if limit is None else self._lines[:limit]
        self._lines = self._lines[len(take) :]
        added = 0
        for line in take:
            if isinstance(line, int):  # an overlong line, dropped: its size
                size = line
                self.errors.add(self.progress.line_no, f"record longer than {self._max} bytes: "
                                f"{size} bytes")  # fmt: skip
            elif line.strip():
                size = len(line) + 1
                reason = self._parse(line, out)
                if reason is None:
                    added += 1
                else:
                    self.errors.add(self.progress.line_no, reason)
            else:
                size = len(line) + 1
            self.progress.offset += size
            self.progress.line_no += 1
        return added

    def _split(self, data: bytes) -> None:
        buf = self._pending + data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if self._skipping:
                self._lines.append(self._skipping + nl - start + 1)
                self._skipping = 0
            elif nl - start > self._max:
                self._lines.append(nl - start + 1)
            else:
                self._lines.append(buf[start:nl])
            start = nl + 1
        rest = buf[start:]
        if self._skipping or len(rest) > self._max:
            self._skipping += len(rest)
            rest = b""
        self._pending = rest

    def _parse(self, line: bytes, out: BatchBuilder) -> str | None:
        if self.progress.line_no == 1:  # a byte-order mark is not part of the first sample
            line = line.removeprefix(b"\xef\xbb\xbf")
        try:
            s = _decode(line)
        except msgspec.DecodeError as exc:
            return f"not a sample: {str(exc)[:120]}"
        message = "" if s.success else s.message[:500]
        out.add(ts_ms=s.ts_ms, elapsed_ms=s.elapsed_ms, latency_ms=s.latency_ms,
                connect_ms=s.connect_ms, label=s.label, code=s.code[:200], success=s.success,
                bytes_recv=s.bytes_recv, bytes_sent=s.bytes_sent, grp_threads=s.threads,
                all_threads=s.threads, message=message)  # fmt: skip
        return None
