"""The fast path of the JTL parser: a block of complete records parsed by Arrow's CSV reader.

Arrow parses and converts in C++ (quotes, doubled quotes, newlines in quoted fields, integers,
``true``/``false``) and dictionary-encodes the strings, at about a microsecond a record against
three in Python. It is strict: any record it cannot read makes the whole block fall back to the
record-by-record parser, which says what is wrong with which line.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

# Arrow checks at every call whether Ctrl-C should interrupt it: ``signal.getsignal(SIGINT)``,
# which under ``asyncio.run`` fails an enum lookup and formats the main task's repr — a few
# percent of the sidecar's CPU, for a parse of milliseconds that needs no interrupting.
pa.enable_signal_handlers(False)

Encoded = tuple[list[str], npt.NDArray[np.int64]]
"""Distinct values in order of first appearance, and each row's index into them."""

INT_COLUMNS = (
    "timeStamp",
    "elapsed",
    "Latency",
    "Connect",
    "bytes",
    "sentBytes",
    "grpThreads",
    "allThreads",
)
STRING_COLUMNS = ("label", "responseCode", "responseMessage", "failureMessage")


@dataclass(frozen=True)
class Block:
    ints: dict[str, npt.NDArray[np.int64]]
    success: npt.NDArray[np.bool_]
    labels: Encoded
    codes: Encoded
    messages: Encoded


class ArrowBlockParser:
    def __init__(self, delimiter: str, columns: tuple[str, ...]) -> None:
        present = set(columns)
        types: dict[str, pa.DataType] = {c: pa.int64() for c in INT_COLUMNS if c in present}
        types.update({c: pa.string() for c in STRING_COLUMNS if c in present})
        types["success"] = pa.bool_()
        self._read = pcsv.ReadOptions(
            column_names=list(columns), use_threads=False, block_size=1 << 30
        )
        self._parse = pcsv.ParseOptions(
            delimiter=delimiter,
            quote_char='"',
            double_quote=True,
            newlines_in_values=True,
            ignore_empty_lines=False,
        )
        self._convert = pcsv.ConvertOptions(
            column_types=types,
            include_columns=list(types),
            true_values=["true"],
            false_values=["false"],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        )

    def parse(self, data: bytes, rows: int) -> Block | None:
        """The block's columns, or ``None`` if Arrow cannot read every one of ``rows`` records."""
        try:
            table = pcsv.read_csv(
                io.BytesIO(data),
                read_options=self._read,
                parse_options=self._parse,
                convert_options=self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if table.num_rows != rows or table.column("success").null_count:
            return None
        n = table.num_rows
        names = set(table.column_names)

        def ints(name: str) -> npt.NDArray[np.int64]:
            if name not in names:
                return np.zeros(n, np.int64)
            column = table.column(name)
            if column.null_count:
                raise _MissingValueError
            values: npt.NDArray[np.int64] = column.to_numpy()
            return values

        try:
            int_columns = {name: ints(name) for name in INT_COLUMNS}
        except _MissingValueError:
            return None
        success = table.column("success").to_numpy()
        empty: Encoded = ([""], np.zeros(n, np.int64))
        codes = _encoded(table.column("responseCode"), 200) if "responseCode" in names else empty
        return Block(
            int_columns,
            success,
            _encoded(table.column("label"), None),
            codes,
            self._messages(table, success, names),
        )

    @staticmethod
    def _messages(table: pa.Table, success: npt.NDArray[np.bool_], names: set[str]) -> Encoded:
        """The failure message of failed samples (the assertion's, else the response's); only
        the failed rows are looked at."""
        failed = np.flatnonzero(~success)
        indices = np.zeros(table.num_rows, np.int64)
        if failed.size == 0:
            return [""], indices
        rows, blank = pa.array(failed), pa.array([""] * failed.size)

        def of_failed(name: str) -> pa.Array:
            return table.column(name).take(rows) if name in names else blank

        failure, response = of_failed("failureMessage"), of_failed("responseMessage")
        values, chosen = _encoded(pc.if_else(pc.equal(failure, ""), response, failure), 500)
        # In order of first appearance over all rows, as a record-by-record parse interns them
        # (a batch read again must encode the same): "" of the successes goes where its first
        # row falls among the first rows of the failures' messages. A message "" of a failure
        # may then be listed twice; interning keeps the first.
        if failed.size == success.size:
            return values, chosen
        _, first = np.unique(chosen, return_index=True)
        at = int(np.searchsorted(failed[first], np.argmax(success)))
        indices[failed] = chosen + (chosen >= at)
        indices[success] = at
        return [*values[:at], "", *values[at:]], indices


class _MissingValueError(Exception):
    pass


def _encoded(column: pa.ChunkedArray | pa.Array, limit: int | None) -> Encoded:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    values: list[str] = encoded.dictionary.to_pylist()
    if limit is not None:
        values = [v[:limit] for v in values]
    return values, encoded.indices.to_numpy().astype(np.int64)
