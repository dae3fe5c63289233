"""The JUnit XML schema Jenkins reads (its xunit plugin's ``junit-10.xsd``, MIT), as pytest's own
tests ship it: taken from the source distribution of the pytest we run, from PyPI, once, and
cached by version."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import xmlschema

from shibuya.dev.maven import cache_root

MEMBER = "testing/example_scripts/junit-10.xsd"


def junit_schema() -> xmlschema.XMLSchema:
    version = pytest.__version__
    path = cache_root() / f"junit-xsd-pytest-{version}" / "junit-10.xsd"
    if not path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--no-binary", ":all:", f"pytest=={version}", "-d", tmp],
                           check=True, timeout=300)  # fmt: skip
            (sdist,) = Path(tmp).glob("pytest-*.tar.gz")
            with tarfile.open(sdist) as tar:
                data = tar.extractfile(f"pytest-{version}/{MEMBER}")
                assert data is not None
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".part")
                partial.write_bytes(data.read())
                partial.replace(path)
    return xmlschema.XMLSchema(str(path))
