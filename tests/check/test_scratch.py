"""Where verify unpacks: memory only when it is tmpfs, allows exec, has room, and the
machine keeps twice the environment's size available (``bundler.check.scratch``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bundler.check.scratch import MARGIN, memory_scratch

GB = 1 << 30


def _mounts(point: Path, fstype: str = "tmpfs", options: str = "rw,nosuid,nodev") -> str:
    return f"/dev/vda / ext4 rw,relatime 0 0\nshm {point} {fstype} {options} 0 0\n"


@pytest.fixture
def shm(tmp_path: Path) -> Path:
    where = tmp_path / "shm"
    where.mkdir()
    return where


def test_memory_is_chosen_when_everything_allows_it(shm: Path) -> None:
    got = memory_scratch(
        10_000, candidate=shm, environ={}, mounts=_mounts(shm), available=4 * GB, free=GB + 10_000
    )
    assert got == shm


@pytest.mark.parametrize(
    ("why", "unpacked", "environ", "fstype", "options", "available"),
    [
        ("size unknown", None, {}, "tmpfs", "rw", 4 * GB),
        ("TMPDIR chosen", 10_000, {"TMPDIR": "/scratch"}, "tmpfs", "rw", 4 * GB),
        ("TMP chosen", 10_000, {"TMP": "/scratch"}, "tmpfs", "rw", 4 * GB),
        ("not tmpfs", 10_000, {}, "ext4", "rw", 4 * GB),
        ("noexec", 10_000, {}, "tmpfs", "rw,nosuid,noexec", 4 * GB),
        ("memory short", 2 * GB, {}, "tmpfs", "rw", 4 * GB + MARGIN - 1),
        ("memory unknown", 10_000, {}, "tmpfs", "rw", None),
    ],
)
def test_memory_is_refused(
    shm: Path,
    monkeypatch: pytest.MonkeyPatch,
    why: str,
    unpacked: int | None,
    environ: dict[str, str],
    fstype: str,
    options: str,
    available: int | None,
) -> None:
    if available is None:
        monkeypatch.setattr("bundler.check.scratch._available_memory", lambda: None)
    mounts = _mounts(shm, fstype, options)
    got = memory_scratch(
        unpacked, candidate=shm, environ=environ, mounts=mounts, available=available, free=8 * GB
    )
    assert got is None, why


def test_no_room_or_no_directory_is_refused(shm: Path, tmp_path: Path) -> None:
    mounts = _mounts(shm)
    room = memory_scratch(
        GB, candidate=shm, environ={}, mounts=mounts, available=8 * GB, free=2 * GB
    )
    assert room == shm
    short = memory_scratch(GB, candidate=shm, environ={}, mounts=mounts, available=8 * GB, free=GB)
    assert short is None
    missing = tmp_path / "absent"
    got = memory_scratch(
        10, candidate=missing, environ={}, mounts=_mounts(missing), available=GB, free=2 * GB
    )
    assert got is None


def test_a_temporary_directory_set_in_the_library_is_respected(
    shm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mounts = _mounts(shm)
    got = memory_scratch(
        10_000, candidate=shm, environ={}, mounts=mounts, available=GB, free=2 * GB
    )
    assert got is None


def test_the_deepest_mount_decides(shm: Path) -> None:
    # shm sits on a tmpfs inside an ext4 mount: the tmpfs line is the one that counts
    mounts = f"/dev/vda / ext4 rw 0 0\n/dev/vdb {shm.parent} ext4 rw 0 0\n" + _mounts(shm)
    assert (
        memory_scratch(10, candidate=shm, environ={}, mounts=mounts, available=2 * GB, free=2 * GB)
        == shm
    )
    mounts = f"shm {shm} tmpfs rw 0 0\n/dev/vdb {shm} ext4 rw 0 0\n"
    assert (
        memory_scratch(10, candidate=shm, environ={}, mounts=mounts, available=2 * GB, free=2 * GB)
        is None
    )
