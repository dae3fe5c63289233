"""An image is rebuilt exactly when what it is built from changed (shibuya/dev/images.py): its
Dockerfile, the files it copies, its target, its bases — not caches beside them."""

from __future__ import annotations

from pathlib import Path

from shibuya.dev.images import IMAGES, Image, inputs_of

BASES = {"PYTHON_IMAGE": "localhost/shibuya-base-python:bookworm-1"}


def _tree(root: Path) -> Image:
    (root / "docker").mkdir()
    (root / "docker" / "x.Dockerfile").write_text("FROM ${PYTHON_IMAGE}\nCOPY pkg /pkg\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text("A = 1\n")
    return Image("x", "docker/x.Dockerfile", "", ("pkg",), {"PYTHON_IMAGE": "python"})


def test_a_change_of_a_copied_file_the_dockerfile_or_a_base_changes_the_inputs(
    tmp_path: Path,
) -> None:
    image = _tree(tmp_path)
    first = inputs_of(image, tmp_path, BASES)
    assert inputs_of(image, tmp_path, BASES) == first
    (tmp_path / "pkg" / "a.py").write_text("A = 2\n")
    second = inputs_of(image, tmp_path, BASES)
    assert second != first
    (tmp_path / "pkg" / "b.py").write_text("")  # a new file
    third = inputs_of(image, tmp_path, BASES)
    assert third != second
    (tmp_path / "docker" / "x.Dockerfile").write_text("FROM ${PYTHON_IMAGE}\n")
    fourth = inputs_of(image, tmp_path, BASES)
    assert fourth != third
    assert inputs_of(image, tmp_path, {"PYTHON_IMAGE": "localhost/other:1"}) != fourth


def test_caches_beside_the_sources_do_not_change_the_inputs(tmp_path: Path) -> None:
    image = _tree(tmp_path)
    before = inputs_of(image, tmp_path, BASES)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert inputs_of(image, tmp_path, BASES) == before


def test_the_targets_of_one_dockerfile_are_different_images() -> None:
    engines = [IMAGES[n] for n in ("engine", "engine-locust", "engine-gatling")]
    assert len({e.dockerfile for e in engines}) == 1
    assert len({e.target for e in engines}) == len({e.ref() for e in engines}) == 3
