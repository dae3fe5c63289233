"""Read a results file as it grows: tail its bytes, parse complete records into the next batch.

The reader knows files and records, nothing of Kafka or checkpoints: :class:`ResultReader` follows
the file through partial writes, truncation and rotation (:class:`~engine_sidecar.tail.FileTail`),
parses complete records into a :class:`~wire.BatchBuilder` up to the batch's size (the rest waits
in the parser), and reports malformed records. Its owner, the flusher
(:mod:`engine_sidecar.publisher`), decides when a batch goes and where parsing resumes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine_sidecar.errors import FormatError
from engine_sidecar.jsonl import JsonLinesParser, looks_like_json_lines
from engine_sidecar.jtl import ErrorReport, JtlParser, Progress, UnreadableFile
from engine_sidecar.jtl_format import detect_format
from engine_sidecar.tail import FileTail
from wire import BatchBuilder, ResultBatch

log = logging.getLogger(__name__)

#: What a read takes of the file at most: about 8,000 JMeter lines, so that a backlog is parsed in
#: blocks of thousands of records (Arrow's fixed cost per block is that of ~1,000 records), and
#: not much more than a batch holds (the rest is held back and split again at the next read).
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Position:
    """Where in which file: the file's device and inode, a byte offset and its line number."""

    dev: int
    ino: int
    offset: int = 0
    line_no: int = 1


@dataclass(frozen=True)
class Chunk:
    size: int
    """Bytes read from the file (0: nothing new)."""
    new_file: bool
    """What follows belongs to another file, or the file's first record just completed: send
    what the batch holds, then :meth:`ResultReader.start_file`."""


Parser = JtlParser | JsonLinesParser | UnreadableFile


def parser_for(head: bytes, max_record_bytes: int, errors: ErrorReport) -> Parser:
    """The parser of a file whose first record is ``head``: JSON lines, or JMeter CSV in the
    format its first record says. Raises :class:`FormatError` for neither."""
    if looks_like_json_lines(head):
        return JsonLinesParser(max_record_bytes=max_record_bytes, errors=errors)
    return JtlParser(detect_format(head), max_record_bytes=max_record_bytes, errors=errors)


class ResultReader:
    def __init__(
        self,
        path: Path,
        *,
        max_samples: int,
        max_record_bytes: int,
        on_malformed: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.path = path
        self.max_samples = max_samples
        self.max_record_bytes = max_record_bytes
        self.errors = ErrorReport()
        """Malformed records of every file read, for the engine's status."""
        self._on_malformed = on_malformed
        self._tail = FileTail(path)
        self._parser: Parser | None = None
        self._builder = BatchBuilder()
        self._generation = -1

    def open(self, offset: int = 0, ino: int | None = None) -> None:
        """Follow the file from ``offset`` if it is the file ``ino`` (any file when ``None``)."""
        self._tail.close()
        self._tail = FileTail(self.path, offset=offset, ino=ino)

    def close(self) -> None:
        self._tail.close()

    @property
    def samples(self) -> int:
        """Samples parsed into the next batch."""
        return len(self._builder)

    @property
    def progress(self) -> Progress:
        """Where the records in the next batch end."""
        assert self._parser is not None
        return self._parser.progress

    def read(self) -> Chunk:
        """Read what the file has new and parse it, up to a full batch."""
        data = self._tail.read(CHUNK_BYTES)
        if self._tail.generation != self._generation or (data and self._parser is None):
            return Chunk(len(data), new_file=True)  # start_file parses it from the file
        if data:
            self._parse(data)
        return Chunk(len(data), new_file=False)

    def start_file(self, committed: Position) -> Position | None:
        """Begin (or resume) parsing the file the tail is on now: from ``committed`` when it is
        that file, else from its start. Returns where parsing starts; ``None`` while the file has
        no complete first record yet, or cannot be read as results."""
        self._generation = self._tail.generation
        head = self._read_head()
        if head is None:
            self._parser = None  # not even one complete line yet: wait for it
            return None
        parser: Parser
        try:
            parser = parser_for(head, self.max_record_bytes, self.errors)
        except FormatError as exc:
            log.error("%s cannot be read as results: %s; its lines are counted, as malformed",
                      self.path, exc)  # fmt: skip
            parser = UnreadableFile(str(exc), self.errors, max_record_bytes=self.max_record_bytes)
        tail = self._tail
        if (committed.dev, committed.ino) == (tail.dev, tail.ino):
            parser.skip_to(committed.offset, committed.line_no)
            start = committed
        else:
            start = Position(tail.dev, tail.ino)
        self._parser = parser
        # The tail may have handed over bytes past the start already: parse them from the file.
        if tail.position > start.offset:
            self._parse(self._read_range(start.offset, tail.position))
        return start

    def fill(self) -> None:
        """Parse records held back by the batch's size limit into the (emptier) batch."""
        if self._parser is not None:
            self._parse(b"")

    def take(self, *, run_id: str, plan_id: str, engine_id: str, seq: int) -> ResultBatch:
        """The batch parsed so far (the reader starts an empty one)."""
        return self._builder.build(run_id=run_id, plan_id=plan_id, engine_id=engine_id, seq=seq)

    def reread(
        self, ino: int, start: Position, end_offset: int, *, run_id: str, plan_id: str,
        engine_id: str, seq: int,
    ) -> ResultBatch | None:  # fmt: skip
        """The records between ``start`` and ``end_offset`` of file ``ino`` again, as the batch
        ``seq`` they were; ``None`` if the file is no longer the same."""
        tail = FileTail(self.path, offset=start.offset, ino=ino)
        data = tail.read(end_offset - start.offset)
        same = tail.generation == 0 and len(data) == end_offset - start.offset
        tail.close()
        head = self._read_head() if same else None
        if head is None:
            return None
        try:
            parser = parser_for(head, self.max_record_bytes, ErrorReport())
        except FormatError:  # nothing of it was ever sent
            return None
        parser.skip_to(start.offset, start.line_no)
        builder = BatchBuilder()
        parser.feed(data, builder)
        return builder.build(run_id=run_id, plan_id=plan_id, engine_id=engine_id, seq=seq)

    def backlog(self, committed_offset: int) -> int:
        """Bytes of the file past ``committed_offset``."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
        return max(0, size - committed_offset)

    def _parse(self, data: bytes) -> None:
        """Parse ``data`` into the batch, up to its size; the rest waits in the parser."""
        assert self._parser is not None
        errors = self.errors  # the parser's too: counted exactly, whatever it keeps as samples
        before, shown = errors.count, len(errors.samples)
        room = max(0, self.max_samples - len(self._builder))
        self._parser.feed(data, self._builder, limit=room)
        new = errors.count - before
        if new:
            self._on_malformed(new)
            for line_no, reason in errors.samples[shown:]:
                log.warning("%s line %d skipped: %s", self.path, line_no, reason)
            unshown = new - (len(errors.samples) - shown)
            if unshown:
                log.warning("%s: %d more lines skipped (%s)", self.path, unshown, errors.summary())

    def _read_head(self) -> bytes | None:
        try:
            with self.path.open("rb") as f:
                line = f.readline(self.max_record_bytes)
        except FileNotFoundError:
            return None
        return line if line.endswith(b"\n") else None

    def _read_range(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(end - start)
