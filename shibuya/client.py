"""The API's client commands, for people and CI: upload, apply, run (and watch), stop.

``SHIBUYA_URL`` (default ``http://127.0.0.1:8080``) and ``SHIBUYA_TOKEN`` say where and who.
``shibuya run`` exits with a code CI can act on (:func:`exit_code`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from wire.criteria import CriterionError, parse

#: Exit codes of the CLI (docs/cli.md): passed; the API refused or did not answer; a usage error
#: (click's); the run failed, was stopped or lost samples; interrupted before the run ended.
PASSED, API_ERROR, USAGE, NOT_FINISHED, INTERRUPTED = 0, 1, 2, 3, 130
#: Criteria failed (or a regression against the baseline): 16 + a bit per class.
CRITERIA = 16
#: Bits added to ``CRITERIA`` per class of failed criterion; ``regression``: the baseline gate.
CLASS_BITS = {"latency": 1, "errors": 2, "throughput": 4, "invalid": 8, "regression": 16}


class ClientError(RuntimeError):
    pass


def connect() -> httpx.Client:
    """The API at ``SHIBUYA_URL`` as ``SHIBUYA_TOKEN``; where unset, the local stack's
    (``shibuya up``: ``.shibuya/`` here or above, or ``SHIBUYA_HOME``), else 127.0.0.1:8080."""
    from shibuya.dev import stack

    folder = stack.find()
    url, token = (stack.connection(folder) if folder else None) or ("http://127.0.0.1:8080", "")
    url = os.environ.get("SHIBUYA_URL", url)
    token = os.environ.get("SHIBUYA_TOKEN", token)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    r = request(client, method, path, **kwargs)
    return r.json() if r.content else None


def request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The API's answer; its error (or none) as a :class:`ClientError` with the message."""
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
    return r


def upload(client: httpx.Client, plan_id: int, files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        with f.open("rb") as body:
            out.append(call(client, "PUT", f"/api/plans/{plan_id}/files/{f.name}", content=body))
    return out


def exit_code(run: dict[str, Any], gates: Sequence[dict[str, Any]] = ()) -> int:
    """0 when the run finished, counted every sample its engines published, passed every
    criterion and every baseline ``gates``; 16 + one bit per class of failed criterion (latency
    1, errors 2, throughput 4, invalid 8) and 16 for a regression; else 3 (failed, stopped, or
    samples lost: its verdicts saw only part of it). A criterion not evaluated in a run that did
    not finish is that run's failure (3), not a class of its own."""
    finished = run.get("outcome") == "finished"
    bits = CLASS_BITS["regression"] if any(not g["passed"] for g in gates) else 0
    for c in run.get("criteria", []):
        if c.get("passed") is not False:
            continue
        try:
            kind = parse(c["criterion"]).kind
        except CriterionError:
            bits |= CLASS_BITS["invalid"]
            continue
        if finished or not c.get("error"):  # breached, or not evaluated in a whole run
            bits |= CLASS_BITS[kind]
    if bits:
        return CRITERIA + bits
    whole = not run.get("samples_missing")
    return PASSED if finished and whole else NOT_FINISHED


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
    latest: dict[str, Any] = {}
    try:
        with Live(_line(run, latest, 0.0), console=console, refresh_per_second=4) as live:
            while run.get("outcome") is None:
                time.sleep(poll_s)
                run = call(client, "GET", f"/api/runs/{run_id}")
                since = {"since": latest["second"] + 1} if latest else {}
                seconds = call(client, "GET", f"/api/runs/{run_id}/series", params=since)
                latest = seconds[-1] if seconds else latest
                live.update(_line(run, latest, clock() - start))
    finally:
        if not console.is_terminal:  # a terminal's cursor is below the line already
            console.print()
    return run


def _line(run: dict[str, Any], latest: dict[str, Any], elapsed_s: float) -> str:
    """State, elapsed, samples, the last whole second's rate and p95, errors, engines — in 80
    columns when no engine has finished or been lost."""
    e = run.get("engines") or {}
    rate = latest.get("samples", 0)
    p95 = latest["elapsed"]["p95"] if latest else 0.0
    ended = ", ".join(f"{e[k]} {k}" for k in ("finished", "lost") if e.get(k))
    return (
        f"{run['state']} {elapsed_s:.0f}s {run.get('samples', 0):,} samples {rate:,}/s "
        f"p95 {p95:,.1f}ms {run.get('failures', 0):,} errors "
        f"engines {e.get('started', 0)}/{e.get('expected', 0)}" + (f" ({ended})" if ended else "")
    )


def wait_ready(
    client: httpx.Client, collection_id: int, console: Console, timeout_s: float = 120
) -> dict[str, Any]:
    """Until every engine of the collection has said it is ready (its heartbeats, through Kafka);
    its status. Raises :class:`ClientError` naming the engines not ready in time."""
    deadline = time.monotonic() + timeout_s
    with console.status("Waiting for the engines to be ready …"):
        while True:
            status: dict[str, Any] = call(client, "GET", f"/api/collections/{collection_id}/status")
            if all(p["ready"] == p["engines"] for p in status["plans"]):
                return status
            if time.monotonic() > deadline:
                waiting = [f"{p['name']}: {p['ready']} of {p['engines']} ready"
                           for p in status["plans"] if p["ready"] < p["engines"]]  # fmt: skip
                raise ClientError(f"engines not ready in {timeout_s:.0f} s ({'; '.join(waiting)})")
            time.sleep(0.5)
