"""The API's routes are disjoint: no path is matched by two routes of one method, so the order
in which routers are included (what is polled first, for speed) changes nothing else."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi.routing import APIRoute

from control.api.app import ROUTERS
from control.api.routes import sso, ui


def clashes(routes: Sequence[APIRoute]) -> list[tuple[str, str, str]]:
    """(route, another route, a path both match) for every such pair of one method."""
    found = set()
    for a in routes:
        others = [b for b in routes if b is not a and (a.methods or set()) & (b.methods or set())]
        for value in ("1", "run-0123456789ab", "a.b"):
            path = re.sub(r"\{[^}]+\}", value, a.path)
            found |= {(a.path, b.path, path) for b in others if b.path_regex.match(path)}
    return sorted(found)


def test_no_path_is_matched_by_two_routes() -> None:
    routes = [r for router in (*ROUTERS, ui.router, sso.router) for r in router.routes
              if isinstance(r, APIRoute)]  # fmt: skip
    assert len(routes) > 40
    assert clashes(routes) == []


def test_a_literal_path_beside_a_parameter_clashes() -> None:
    routes = [APIRoute("/api/runs/{run_id}", lambda run_id: None, methods=["GET"]),
              APIRoute("/api/runs/latest", lambda: None, methods=["GET"]),
              APIRoute("/api/runs/latest", lambda: None, methods=["DELETE"])]  # fmt: skip
    assert clashes(routes) == [("/api/runs/latest", "/api/runs/{run_id}", "/api/runs/latest")]
