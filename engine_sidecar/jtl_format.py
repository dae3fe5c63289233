"""The format of a JMeter results file, told from its first record.

* A header names JTL columns (any of CSVSaveService's, in any order, any one-character
  delimiter): the file has them; one that lacks a column Shibuya needs is refused, naming it and
  the property that brings it back.
* No header: Shibuya's 12 ``|``-separated columns, or JMeter's default 17.
* JMeter's XML results (``jmeter.save.saveservice.output_format=xml``) are refused at once, with
  how to switch the plan to CSV.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Final

from engine_sidecar.errors import FormatError

#: JMeter's default CSV columns (CSVSaveService order, defaults on).
JMETER_DEFAULT_COLUMNS: Final = (
    "timeStamp",
    "elapsed",
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "dataType",
    "success",
    "failureMessage",
    "bytes",
    "sentBytes",
    "grpThreads",
    "allThreads",
    "URL",
    "Latency",
    "IdleTime",
    "Connect",
)
#: Shibuya's engine configuration (``shibuya.properties``): ``|``, no header, these 12 columns.
SHIBUYA_COLUMNS: Final = (
    "timeStamp",
    "elapsed",
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "success",
    "bytes",
    "grpThreads",
    "allThreads",
    "Latency",
    "Connect",
)
#: The columns a sample needs, and the property that writes each.
REQUIRED: Final = {
    "timeStamp": "jmeter.save.saveservice.timestamp",
    "elapsed": "jmeter.save.saveservice.time",
    "label": "jmeter.save.saveservice.label",
    "success": "jmeter.save.saveservice.successful",
}
#: Every column CSVSaveService may write in a header (besides sample variables).
KNOWN: Final = frozenset(JMETER_DEFAULT_COLUMNS) | {
    "Filename", "Encoding", "SampleCount", "ErrorCount", "Hostname",
}  # fmt: skip
DELIMITERS: Final = (",", "\t", ";", "|", ":")
XML_REFUSED: Final = (
    "the file is JMeter's XML results (jmeter.save.saveservice.output_format=xml), which Shibuya "
    "does not read: write CSV instead — jmeter.save.saveservice.output_format=csv in "
    "user.properties, or -Jjmeter.save.saveservice.output_format=csv — and run again"
)


@dataclass(frozen=True)
class JtlFormat:
    delimiter: str
    columns: tuple[str, ...]
    has_header: bool

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED if c not in self.columns]
        if missing:
            shown = list(self.columns[:20]) + (["…"] if len(self.columns) > 20 else [])
            keep = ", ".join(f"{REQUIRED[c]}=true" for c in missing)
            raise FormatError(f"the header names the columns {shown} but lacks {missing}, "
                              f"which every sample needs ({keep})")  # fmt: skip


def detect_format(first_record: bytes) -> JtlFormat:
    """The format of a file from its first record (its header, if it has one); raises
    :class:`FormatError` for a file that cannot be read as results."""
    text = first_record.decode("utf-8", errors="replace").rstrip("\r\n")
    if text.lstrip("\ufeff \t").startswith(("<?xml", "<testResults")):
        raise FormatError(XML_REFUSED)
    header = _header(text)
    if header is not None:
        return header
    if text.count("|") == len(SHIBUYA_COLUMNS) - 1 or (text.count("|") and "," not in text):
        return JtlFormat("|", SHIBUYA_COLUMNS, has_header=False)
    return JtlFormat(",", JMETER_DEFAULT_COLUMNS, has_header=False)


def _header(text: str) -> JtlFormat | None:
    """The header's format if ``text`` starts with ``timeStamp`` or names two JTL columns or
    more, with the delimiter that finds the most of them."""
    best: tuple[int, str, tuple[str, ...]] | None = None
    for delimiter in DELIMITERS:
        if delimiter not in text:
            continue
        [fields] = csv.reader([text], delimiter=delimiter)
        columns = tuple(f.strip() for f in fields)
        known = sum(c in KNOWN for c in columns)
        header = known >= 2 or columns[0] == "timeStamp"
        if header and (best is None or known > best[0]):
            best = (known, delimiter, columns)
    if best is None:
        return None
    return JtlFormat(best[1], best[2], has_header=True)
