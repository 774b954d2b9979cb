"""Unit tests for the pieces around the real installers: wheel cache, atomic writes."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest

from bundler.atomic import atomic_write
from bundler.build import build_location, build_prefix_path, fetch_wheel
from bundler.errors import BuildError
from bundler.solve.lockfile import LockedPackage


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


def test_build_prefix_path_ignores_tmpdir_and_uid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BUNDLER_BUILD_ROOT", raising=False)
    before = build_prefix_path("base", "linux-64")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    after = build_prefix_path("base", "linux-64")
    assert before == after
    assert str(after).startswith("/tmp/bundler-build/base-linux-64_ppp")
    assert len(str(after)) == 160
    monkeypatch.setenv("BUNDLER_BUILD_ROOT", str(tmp_path / "mine"))
    assert build_prefix_path("base", "linux-64").parent == tmp_path / "mine"


def test_build_location_is_empty_ours_and_removed(tmp_path: Path) -> None:
    prefix = build_prefix_path("v", "linux-64", root=tmp_path / "root")
    prefix.mkdir(parents=True)
    (prefix / "left-by-a-killed-pack").write_text("x")
    with build_location(prefix) as where:
        assert where == prefix and list(prefix.iterdir()) == []
        assert stat.S_IMODE((tmp_path / "root").stat().st_mode) in (0o755, 0o1777)
        (prefix / "bin").mkdir()
    assert not prefix.exists()
    locks = [p.name for p in (tmp_path / "root").iterdir()]
    assert locks == [f".{prefix.name[:40]}.lock"]
    # a new shared root is like /tmp: anyone may build there, nobody may remove others'
    fresh = build_prefix_path("v", "linux-64", root=tmp_path / "fresh")
    with build_location(fresh):
        pass
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o1777


def _enter(prefix: Path) -> None:
    with build_location(prefix):
        pass


def test_build_location_refuses_a_prefix_it_does_not_own(tmp_path: Path) -> None:
    prefix = build_prefix_path("v", "linux-64", root=tmp_path / "root")
    prefix.parent.mkdir()
    prefix.symlink_to(tmp_path)
    with pytest.raises(BuildError, match="belongs to uid") as err:
        _enter(prefix)
    assert "remove it" in err.value.hint
    assert prefix.is_symlink()  # left alone
    if os.geteuid() == 0:  # another user's leftover prefix
        prefix.unlink()
        prefix.mkdir()
        os.chown(prefix, 65534, 65534)
        with pytest.raises(BuildError, match="belongs to uid 65534"):
            _enter(prefix)
        assert prefix.is_dir()
        # a root that another user owns and does not share
        os.chown(prefix.parent, 65534, 65534)
        os.chmod(prefix.parent, 0o755)
        with pytest.raises(BuildError, match="belongs to uid 65534 and is not shared"):
            _enter(prefix)
