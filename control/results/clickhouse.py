"""The ClickHouse adapter: one client for a process, the embedded engine (``chdb://…``) or a
server (HTTP) — the only module that imports clickhouse-connect.

clickhouse-connect has no async client for chdb, and the embedded engine is one per process, so
every call goes through a worker thread under one lock; async code awaits it. Its errors leave as
the control plane's: :class:`~control.errors.UnavailableError` when the same call may succeed
later (the server restarting, a network blip), :class:`~control.errors.RejectedError` when
ClickHouse refused what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import OperationalError

from control.errors import RejectedError, UnavailableError
from control.results import schema


class Store:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()

    @classmethod
    def open(cls, dsn: str) -> Store:
        """Connect and bring the schema up to date."""
        if dsn.startswith("chdb:///"):
            from pathlib import Path

            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        store = cls(clickhouse_connect.get_client(dsn=dsn))
        schema.migrate(store.client)
        return store

    def close(self) -> None:
        with self._lock:
            self.client.close()

    def insert_sync(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        with self._lock, _translated(f"insert into {table}", refused=RejectedError):
            self.client.insert(table, rows, column_names=list(columns))

    def query_sync(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        with self._lock, _translated("query"):  # a refused query is a bug: it stays one
            rows: list[tuple[Any, ...]] = self.client.query(sql, parameters=parameters).result_rows
            return rows

    async def insert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        await asyncio.to_thread(self.insert_sync, table, rows, columns)

    async def query(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.query_sync, sql, parameters)


@contextlib.contextmanager
def _translated(what: str, refused: type[Exception] | None = None) -> Iterator[None]:
    try:
        yield
    except (OperationalError, OSError) as exc:
        raise UnavailableError(f"ClickHouse {what} failed: {exc!r}") from exc
    except Exception as exc:  # the engine's own errors differ between chdb and a server
        if refused is None:
            raise
        raise refused(f"ClickHouse refused the {what}: {exc!r}") from exc
