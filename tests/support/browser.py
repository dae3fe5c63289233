"""Debian's chromium, driven by Playwright (its own browsers are never downloaded): a page opened
from a file, with every console error, page error and network request it made recorded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright


@dataclass
class Opened:
    page: Page
    problems: list[str] = field(default_factory=list)
    """Console errors and warnings, uncaught exceptions, and requests beyond the file itself."""

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)


@contextmanager
def opened(path: Path, ready: str = "true") -> Iterator[Opened]:
    """``path`` in a headless chromium, once the JavaScript ``ready`` holds."""
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed (scripts/bootstrap installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            out = Opened(page)
            page.on("console", lambda m: out.problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)  # fmt: skip
            page.on("pageerror", lambda e: out.problems.append(f"page error: {e}"))
            page.on("request", lambda r: out.problems.append(f"request: {r.url}")
                    if r.url != path.as_uri() else None)  # fmt: skip
            page.goto(path.as_uri())
            page.wait_for_function(ready, timeout=30_000)
            yield out
        finally:
            browser.close()
