"""``shibuya apply -f``: make the API hold what a declaration says, changing only what differs.

Things are found by name. A project, plan or collection missing is created; a plan's files are
uploaded when their SHA-256 differs from the stored one's and removed when the plan no longer
lists them; a collection's settings and plans are set when any differs. Nothing else is
touched: other plans and collections of the project stay. Every change is said, and a second
apply of the same file writes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from shibuya.client import ClientError, call
from shibuya.declare import CollectionDecl, Declared, PlanDecl
from shibuya.names import Names, every


@dataclass
class Applier:
    c: httpx.Client
    dry_run: bool = False
    changes: list[str] = field(default_factory=list)

    def write(self, change: str, method: str, path: str, **kwargs: Any) -> Any:
        """Say ``change``; make it unless this is a dry run."""
        self.changes.append(change)
        return None if self.dry_run else call(self.c, method, path, **kwargs)


def apply(c: httpx.Client, d: Declared, dry_run: bool = False) -> list[str]:
    """Make the changes (or, dry, only list them); what changed, in order."""
    a = Applier(c, dry_run)
    project = _project(a, Names(c), d)
    existing = {p["name"]: p for p in every(c, f"/api/projects/{project}/plans")} if project else {}
    plan_ids: dict[str, int | None] = {}
    for plan in d.spec.plans:
        plan_ids[plan.name] = _plan(a, project, existing.get(plan.name), plan, d.files(plan))
    collections = (
        {x["name"]: x for x in every(c, f"/api/projects/{project}/collections")} if project else {}
    )
    for decl in d.spec.collections:
        _collection(a, project, collections.get(decl.name), decl, plan_ids)
    return a.changes


def _project(a: Applier, names: Names, d: Declared) -> int | None:
    spec = d.spec
    found = [
        p
        for p in names.projects()
        if p["name"] == spec.project and spec.group in (None, p["group"])
    ]
    if len(found) > 1:
        groups = ", ".join(sorted(p["group"] for p in found))
        raise ClientError(f"projects named {spec.project!r} in groups {groups}: set 'group'")
    if found:
        return int(found[0]["id"])
    group = spec.group
    if group is None:
        groups = call(a.c, "GET", "/api/me")["groups"]
        if len(groups) != 1:
            raise ClientError(
                f"project {spec.project!r} is new: set 'group' to one of yours "
                f"({', '.join(groups) or 'none'})"
            )
        group = groups[0]
    made = a.write(
        f"project {spec.project}: created (group {group})",
        "POST",
        "/api/projects",
        json={"name": spec.project, "group": group},
    )
    return None if made is None else int(made["id"])


def _plan(
    a: Applier,
    project: int | None,
    have: dict[str, Any] | None,
    plan: PlanDecl,
    files: list[Path],
) -> int | None:
    plan_id = None if have is None else int(have["id"])
    if have is None:
        made = a.write(
            f"plan {plan.name}: created",
            "POST",
            f"/api/projects/{project}/plans",
            json={"name": plan.name},
        )
        plan_id = None if made is None else int(made["id"])
    stored = {f["name"]: f["sha256"] for f in (have or {}).get("files", [])}
    wanted = {f.name for f in files}
    for name in sorted(set(stored) - wanted):  # a new JMX replaces an old one: remove first
        a.write(f"plan {plan.name}: {name} removed", "DELETE", f"/api/plans/{plan_id}/files/{name}")
    for path in sorted(files, key=lambda p: p.suffix.lower() != ".jar"):  # jars before the JMX
        data = path.read_bytes()
        if stored.get(path.name) != hashlib.sha256(data).hexdigest():
            verb = "uploaded" if path.name not in stored else "changed, uploaded"
            a.write(
                f"plan {plan.name}: {path.name} {verb} ({len(data):,} bytes)",
                "PUT",
                f"/api/plans/{plan_id}/files/{path.name}",
                content=data,
            )
    return plan_id


def _collection(
    a: Applier,
    project: int | None,
    have: dict[str, Any] | None,
    decl: CollectionDecl,
    plan_ids: dict[str, int | None],
) -> None:
    if have is None:
        path = f"/api/projects/{project}/collections"
        made = a.write(f"collection {decl.name}: created", "POST", path, json={"name": decl.name})
        have = made or {"id": None, "csv_split": False, "thresholds": [], "plans": []}
    want = _Settings(
        decl.csv_split,
        decl.criteria,
        decl.properties,
        decl.env,
        {
            r.plan: (
                r.engine,
                r.engines,
                r.threads,
                r.ramp_up,
                r.duration,
                r.csv_split,
                r.properties,
                r.env,
            )
            for r in decl.plans
        },
    )
    now = _Settings(
        have["csv_split"],
        have["thresholds"],
        have.get("properties", {}),
        have.get("env", {}),
        {
            p["name"]: (
                p.get("engine", "jmeter"),
                p["engines"],
                p["threads_per_engine"],
                p["ramp_up_s"],
                p["duration_s"],
                p["csv_split"],
                p.get("properties", {}),
                p.get("env", {}),
            )
            for p in have["plans"]
        },
    )
    differs = _differences(now, want)
    if not differs:
        return
    tests = [
        {
            "name": r.plan,
            "testid": plan_ids[r.plan],
            "engine": r.engine,
            "engines": r.engines,
            "concurrency": r.threads,
            "rampup": r.ramp_up,
            "duration_s": r.duration,
            "csv_split": r.csv_split,
            "properties": r.properties,
            "env": r.env,
        }
        for r in decl.plans
    ]
    config = {
        "multi-test": {
            "name": decl.name,
            "projectid": project,
            "collectionid": have["id"],
            "csv_split": decl.csv_split,
            "thresholds": decl.criteria,
            "properties": decl.properties,
            "env": decl.env,
            "tests": tests,
        }
    }
    path = f"/api/collections/{have['id']}/config"
    change = f"collection {decl.name}: {'; '.join(differs)}"
    a.write(change, "PUT", path, content=yaml.safe_dump(config))


@dataclass(frozen=True)
class _Settings:
    """What ``apply`` compares of a collection; per plan: engine, engines, threads, ramp-up,
    duration, CSV split, properties."""

    csv_split: bool
    criteria: list[str]
    properties: dict[str, str]
    env: dict[str, str]
    plans: dict[str, tuple[Any, ...]]


_PLAN_FIELDS = (
    "engine",
    "engines",
    "threads",
    "ramp_up",
    "duration",
    "csv_split",
    "properties",
    "env",
)


def _differences(now: _Settings, want: _Settings) -> list[str]:
    out = []
    if now.csv_split != want.csv_split:
        out.append(f"csv_split {now.csv_split} → {want.csv_split}")
    if now.properties != want.properties:
        out.append(f"properties {_changed(now.properties, want.properties)}")
    if now.env != want.env:
        out.append(f"env {_changed(now.env, want.env)}")
    if now.criteria != want.criteria:
        out.append(f"criteria changed ({len(now.criteria)} → {len(want.criteria)})")
    for name in sorted(set(now.plans) - set(want.plans)):
        out.append(f"plan {name} removed")
    for name, values in want.plans.items():
        old = now.plans.get(name)
        if old is None:
            out.append(f"plan {name} added")
            continue
        for field_, o, n in zip(_PLAN_FIELDS, old, values, strict=True):
            if o != n:
                change = _changed(o, n) if field_ in ("properties", "env") else f"{o} → {n}"
                out.append(f"{name}.{field_} {change}")
    return out


def _changed(old: dict[str, str], new: dict[str, str]) -> str:
    """Which properties changed, by name only: a value may be nothing to print."""
    parts = [f"+{k}" for k in sorted(set(new) - set(old))]
    parts += [f"-{k}" for k in sorted(set(old) - set(new))]
    parts += [f"~{k}" for k in sorted(set(old) & set(new)) if old[k] != new[k]]
    return " ".join(parts)
