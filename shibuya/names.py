"""Finding projects, plans and collections by name, as the CLI and config files address them.

A project is named alone (its name is unique in its group; if the caller's groups have two of
that name, the group tells them apart: ``GROUP:PROJECT``). A plan or a collection is
``PROJECT/NAME``, or ``NAME`` alone when only one project of the caller's has one of that name.
A name of digits that names nothing is taken as an id, as the API's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from shibuya.client import ClientError, call

#: What the API's listings give per page at most.
PAGE = 200


def every(c: httpx.Client, path: str) -> list[dict[str, Any]]:
    """Every item of a paged listing."""
    items: list[dict[str, Any]] = []
    while True:
        page = call(c, "GET", path, params={"limit": PAGE, "offset": len(items)})
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            return items


class NameLookupError(ClientError):
    """Nothing of that name, or more than one."""


@dataclass
class Names:
    c: httpx.Client
    _projects: list[dict[str, Any]] | None = field(default=None, repr=False)

    def projects(self) -> list[dict[str, Any]]:
        if self._projects is None:
            self._projects = every(self.c, "/api/projects")
        return self._projects

    def project(self, ref: str) -> dict[str, Any]:
        group, _, name = ref.rpartition(":") if ":" in ref else ("", "", ref)
        found = [p for p in self.projects()
                 if p["name"] == name and (not group or p["group"] == group)]  # fmt: skip
        if not found and name.isdigit():
            found = [p for p in self.projects() if p["id"] == int(name)]
        if len(found) > 1:
            groups = ", ".join(sorted(f"{p['group']}:{p['name']}" for p in found))
            raise NameLookupError(f"{len(found)} projects are named {name!r}; say which: {groups}")
        if not found:
            mine = ", ".join(sorted(p["name"] for p in self.projects())[:20]) or "none"
            raise NameLookupError(f"no project named {ref!r} (yours: {mine})")
        return found[0]

    def plan(self, ref: str) -> dict[str, Any]:
        return self._child("plan", "plans", ref)

    def collection(self, ref: str) -> dict[str, Any]:
        return self._child("collection", "collections", ref)

    def children(self, kind: str, project: dict[str, Any]) -> list[dict[str, Any]]:
        return every(self.c, f"/api/projects/{project['id']}/{kind}")

    def _child(self, what: str, kind: str, ref: str) -> dict[str, Any]:
        project_ref, _, name = ref.rpartition("/")
        projects = [self.project(project_ref)] if project_ref else self.projects()
        found = [(p, x) for p in projects for x in self.children(kind, p) if x["name"] == name]
        if not found and name.isdigit():
            found = [(p, x) for p in projects for x in self.children(kind, p)
                     if x["id"] == int(name)]  # fmt: skip
        if len(found) > 1:
            where = ", ".join(sorted(f"{p['name']}/{x['name']}" for p, x in found))
            raise NameLookupError(f"{len(found)} {kind} are named {name!r}; say which: {where}")
        if not found:
            where = f" in project {project_ref!r}" if project_ref else ""
            raise NameLookupError(f"no {what} named {name!r}{where}")
        project, item = found[0]
        return {**item, "project": project}

    def path(self, item: dict[str, Any]) -> str:
        """``PROJECT/NAME`` of a plan or collection found here."""
        return f"{item['project']['name']}/{item['name']}"
