"""The API's client commands, for people and CI: upload, apply, run (and watch), stop.

``SHIBUYA_URL`` (default ``http://127.0.0.1:8080``) and ``SHIBUYA_TOKEN`` say where and who.
``shibuya run`` exits with a code CI can act on (:func:`exit_code`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from streams.wire.criteria import CriterionError, parse

#: Exit codes of ``shibuya run``.
PASSED, API_ERROR, NOT_FINISHED, CRITERIA = 0, 1, 2, 16
#: Bits added to ``CRITERIA`` per class of failed criterion.
CLASS_BITS = {"latency": 1, "errors": 2, "throughput": 4, "invalid": 8}


class ClientError(RuntimeError):
    pass


def connect() -> httpx.Client:
    url = os.environ.get("SHIBUYA_URL", "http://127.0.0.1:8080")
    token = os.environ.get("SHIBUYA_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        r = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach the API at {client.base_url}: {exc}") from exc
    if r.status_code >= 400:
        try:
            error = r.json()["error"]
            details = error.get("details")
            more = "".join(f"\n  {d}" for d in details) if isinstance(details, list) else ""
            message = f"{error['message']}{more}"
        except (ValueError, KeyError, TypeError):
            message = r.text[:500]
        raise ClientError(f"{method} {path}: {r.status_code}: {message}")
    return r.json() if r.content else None


def upload(client: httpx.Client, plan_id: int, files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        with f.open("rb") as body:
            out.append(call(client, "PUT", f"/api/plans/{plan_id}/files/{f.name}", content=body))
    return out


def apply(client: httpx.Client, collection_id: int, config: Path) -> dict[str, Any]:
    result: dict[str, Any] = call(
        client, "PUT", f"/api/collections/{collection_id}/config", content=config.read_bytes()
    )
    return result


def exit_code(run: dict[str, Any]) -> int:
    """0 when the run finished and passed every criterion; 16 + one bit per class of failed
    criterion (latency 1, errors 2, throughput 4, invalid 8); else 2 (failed, or stopped)."""
    failed = [c for c in run.get("criteria", []) if c.get("passed") is False]
    if failed:
        bits = 0
        for c in failed:
            try:
                bits |= CLASS_BITS[parse(c["criterion"]).kind]
            except CriterionError:
                bits |= CLASS_BITS["invalid"]
        return CRITERIA + bits
    return PASSED if run.get("outcome") == "finished" else NOT_FINISHED


def watch(
    client: httpx.Client,
    run_id: str,
    console: Console,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Follow the run until it has ended, with a live line; return its final state."""
    start = clock()
    run: dict[str, Any] = call(client, "GET", f"/api/runs/{run_id}")
    with Live(_line(run, 0.0), console=console, refresh_per_second=4) as live:
        while run.get("outcome") is None:
            time.sleep(poll_s)
            run = call(client, "GET", f"/api/runs/{run_id}")
            live.update(_line(run, clock() - start))
    return run


def _line(run: dict[str, Any], elapsed_s: float) -> str:
    e = run.get("engines") or {}
    rate = run.get("samples", 0) / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{run['id']}  {run['state']:<9} {elapsed_s:6.0f} s  {run.get('samples', 0):>12,} samples"
        f"  {rate:>9,.0f}/s  {run.get('failures', 0):>9,} errors"
        f"  engines {e.get('started', 0)}/{e.get('expected', 0)} running,"
        f" {e.get('finished', 0)} finished, {e.get('lost', 0)} lost"
    )


def verdicts(run: dict[str, Any]) -> Table:
    table = Table(title=f"run {run['id']}: {run.get('outcome')} — {run.get('reason', '')}")
    for col in ("criterion", "verdict", "breached at", "value"):
        table.add_column(col)
    for c in run.get("criteria", []):
        verdict = {True: "passed", False: "FAILED", None: "undecided"}[c.get("passed")]
        at = "" if c.get("breach_second_s") is None else str(c["breach_second_s"])
        value = "" if c.get("value") is None else f"{c['value']:g}"
        table.add_row(c["criterion"], verdict + (f" ({c['error']})" if c.get("error") else ""),
                      at, value)  # fmt: skip
    return table
