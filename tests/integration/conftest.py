from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.agent_support import serve_files


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """Plan files over HTTP: (base URL, files by name, names refused for a bad token)."""
    yield from serve_files()
