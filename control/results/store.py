"""One ClickHouse client for a process: the embedded engine (``chdb://…``) or a server (HTTP).

clickhouse-connect has no async client for chdb, and the embedded engine is one per process, so
every call goes through a worker thread under one lock; async code awaits it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import clickhouse_connect

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
        with self._lock:
            self.client.insert(table, rows, column_names=list(columns))

    def query_sync(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        with self._lock:
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
