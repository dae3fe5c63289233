"""Debian's chromium, driven by Playwright (its own browsers are never downloaded): a page opened
from a file, with every console error, page error and network request it made recorded."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright


@dataclass
class Opened:
    page: Page
    problems: list[str] = field(default_factory=list)
    """Console errors and warnings, uncaught exceptions, dialogs, and requests elsewhere."""

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed (scripts/bootstrap installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def watched(page: Page, allowed: Callable[[str], bool]) -> Opened:
    """``page``, recording its console errors and warnings, uncaught exceptions, dialogs (an
    ``alert`` is one) and requests to addresses not ``allowed``."""
    out = Opened(page)
    page.on("console", lambda m: out.problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: out.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: out.problems.append(f"dialog: {d.message}"))
    page.on("request", lambda r: None if allowed(r.url) else out.problems.append(
        f"request: {r.url}"))  # fmt: skip
    return out


@contextmanager
def opened(path: Path, ready: str = "true") -> Iterator[Opened]:
    """``path`` in a headless chromium, once the JavaScript ``ready`` holds."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        out = watched(page, lambda url: url == path.as_uri())
        page.goto(path.as_uri())
        page.wait_for_function(ready, timeout=30_000)
        yield out
