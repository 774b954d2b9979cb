"""Unit tests for the pieces around the real installers: wheel cache, atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bundler.atomic import atomic_write
from bundler.build import build_prefix_path, fetch_wheel
from bundler.errors import BuildError
from bundler.lockfile import LockedPackage


def _pkg(path: Path, sha: str) -> LockedPackage:
    return LockedPackage(
        name="demo",
        version="1.0",
        manager="pip",
        platform="linux-64",
        url=path.as_uri(),
        sha256=sha,
    )


def test_fetch_wheel_checks_sha_and_caches(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel, but bytes with a hash")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    got = fetch_wheel(_pkg(wheel, sha), cache)
    assert got.read_bytes() == wheel.read_bytes() and got.name == wheel.name
    wheel.unlink()  # cached: the source is not needed again
    assert fetch_wheel(_pkg(wheel, sha), cache) == got


def test_fetch_wheel_refuses_a_different_file(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(BuildError, match="sha256 mismatch"):
        fetch_wheel(_pkg(wheel, "0" * 64), cache)
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_write(final) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new"
    assert final.stat().st_mode & 0o777 == 0o644


def test_build_prefix_path_is_fixed_and_padded() -> None:
    a = build_prefix_path("base", "linux-64")
    assert a == build_prefix_path("base", "linux-64")
    assert a != build_prefix_path("gpu", "linux-64")
    assert len(str(a)) >= 150  # room for conda-unpack to write longer prefixes
