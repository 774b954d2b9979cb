"""bundler.artifact.zipstream: parallel deflate whose bytes ignore the thread count; zip64."""

from __future__ import annotations

import functools
import io
import os
import random
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from bundler.artifact import zipstream
from bundler.artifact.zipstream import (
    CENTRAL,
    LOCAL,
    PIECE,
    U16,
    U32,
    Entry,
    ZipStream,
    central_record,
    end_records,
    local_header,
)
from bundler.errors import PackError

JAVA_CHECK = Path(__file__).parents[1] / "support" / "ZipCheck.java"
FILE = stat.S_IFREG | 0o644
TOOL = b"#!/bin/sh\necho \xc3\xa9\n" * 1000


@functools.cache
def _text() -> bytes:
    """Compressible but not trivial bytes (words from a small vocabulary), 4 MiB."""
    rng = random.Random(7)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 9))) + b" " for _ in range(500)]
    return b"".join(rng.choices(words, k=4 * PIECE // 5))[: 4 * PIECE]


def _payload(size: int, seed: int) -> bytes:
    """``size`` bytes of ``_text()`` from an offset of its own."""
    text = _text()
    start = seed * 7919 % PIECE
    return (text[start:] + text)[:size]


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("members")
    sizes = {"empty": 0, "tiny": 7, "piece": PIECE, "big": 3 * PIECE + 12345, "odd": 70001}
    out = []
    for i, (name, size) in enumerate(sizes.items()):
        path = root / name
        path.write_bytes(_payload(size, i))
        out.append((f"lib/{name}", path))
    return out


def _write(members: list[tuple[str, Path]], level: int, threads: int, limit: int = U32) -> bytes:
    out = io.BytesIO()
    zs = ZipStream(out, level, threads, limit=limit)
    zs.add_dir("lib/", stat.S_IFDIR | 0o755)
    for name, path in members:
        zs.add_file(name, FILE, str(path))
    zs.add_data("bin/tool", stat.S_IFREG | 0o755, TOOL)
    zs.add_data("share/naïve.txt", FILE, b"")
    zs.close()
    return out.getvalue()


def _check_python(data: bytes, members: list[tuple[str, Path]]) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every CRC
        for name, path in members:
            assert zf.read(name) == path.read_bytes(), name
        infos = {i.filename: i for i in zf.infolist()}
    assert stat.S_IMODE(infos["bin/tool"].external_attr >> 16) == 0o755
    assert infos["lib/"].is_dir()
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    return infos


@pytest.mark.parametrize("level", [0, 1, 3, 6])
def test_bytes_do_not_depend_on_the_thread_count(
    members: list[tuple[str, Path]], level: int
) -> None:
    one = _write(members, level, threads=1)
    assert _write(members, level, threads=5) == one
    infos = _check_python(one, members)
    assert infos["lib/big"].compress_size < infos["lib/big"].file_size


def test_higher_levels_are_smaller(members: list[tuple[str, Path]]) -> None:
    sizes = {level: len(_write(members, level, threads=2)) for level in (1, 3, 6)}
    assert sizes[3] < sizes[1] and sizes[6] < sizes[1], sizes


def _java_check(path: Path) -> str:
    proc = subprocess.run(
        ["java", str(JAVA_CHECK), str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.integration
def test_zip64_records_read_by_java_and_python(
    members: list[tuple[str, Path]], tmp_path: Path
) -> None:
    """With the zip64 limit lowered to 64 KiB, sizes, offsets and the central directory's
    place go through the zip64 records that a 4 GiB archive would use."""
    limit = 64 * 1024
    data = _write(members, 1, threads=2, limit=limit)
    infos = _check_python(data, members)
    big = infos["lib/big"]
    assert big.file_size > limit and big.header_offset > limit
    assert big.extract_version == 45
    assert data[-22 - 20 : -22][:4] == b"PK\x06\x07"  # the zip64 end locator
    path = tmp_path / "z64.zip"
    path.write_bytes(data)
    total = sum(p.stat().st_size for _, p in members) + len(TOOL)
    assert _java_check(path) == f"entries {len(infos)} bytes {total}"


@pytest.mark.integration
def test_more_than_65535_entries_is_zip64_and_opens_in_java(tmp_path: Path) -> None:
    count = 70_000
    path = tmp_path / "many.zip"
    with open(path, "wb") as fh:
        zs = ZipStream(fh, 1, 2)
        for i in range(count):
            zs.add_data(f"pkg/m{i:05d}.py", FILE, b"X = %d\n" % i)
        zs.close()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert zf.read("pkg/m69999.py") == b"X = 69999\n"
    assert len(names) == count
    tail = path.read_bytes()[-22:]
    assert struct.unpack("<H", tail[10:12])[0] == U16  # the count lives in the zip64 record
    total = sum(len(b"X = %d\n" % i) for i in range(count))
    assert _java_check(path) == f"entries {count} bytes {total}"


def test_zip64_fields_of_a_member_over_4_gib() -> None:
    five, four_and_a_half, six = 5 << 30, (9 << 30) // 2, 6 << 30
    entry = Entry("lib/huge.so", FILE, 8, offset=six, crc=0x1234, csize=four_and_a_half,
                  usize=five, local64=True)  # fmt: skip
    local = local_header(entry)
    fields = LOCAL.unpack(local[: LOCAL.size])
    assert fields[1] == 45 and fields[7:9] == (U32, U32)  # version needed, sizes moved out
    extra = local[LOCAL.size + len(b"lib/huge.so") :]
    assert struct.unpack("<HHQQ", extra) == (1, 16, five, four_and_a_half)  # usize first

    central = central_record(entry)
    c = CENTRAL.unpack(central[: CENTRAL.size])
    assert (c[8], c[9], c[16]) == (U32, U32, U32)  # csize, usize, offset
    extra = central[CENTRAL.size + len(b"lib/huge.so") :]
    assert struct.unpack("<HHQQQ", extra) == (1, 24, five, four_and_a_half, six)

    # only the fields that overflow move to the extra field, in APPNOTE's order
    small = Entry("a", FILE, 8, offset=six, csize=10, usize=20)
    extra = central_record(small)[CENTRAL.size + 1 :]
    assert struct.unpack("<HHQ", extra) == (1, 8, six)
    assert central_record(Entry("a", FILE, 8, csize=10, usize=20)).endswith(b"a")


def test_a_member_that_outgrows_its_header_is_refused() -> None:
    entry = Entry("x", FILE, 8, csize=U32, usize=U32 - 1)  # not announced as zip64
    with pytest.raises(PackError, match="zip64"):
        local_header(entry)


def test_end_records_switch_to_zip64_only_when_needed() -> None:
    plain = end_records(U16 - 1, 1000, 100)
    assert len(plain) == 22 and plain[:4] == b"PK\x05\x06"
    for args in ((U16, 1000, 100), (10, U32, 100), (10, U32 - 50, 100)):
        records = end_records(*args)
        assert records[:4] == b"PK\x06\x06", args
        assert records[56:60] == b"PK\x06\x07" and records[-22:-18] == b"PK\x05\x06"


def test_pieces_cover_a_member_exactly() -> None:
    parts = zipstream.pieces(2 * PIECE + 1, fd=3)
    assert [(p.start, p.stop, p.last) for p in parts] == [
        (0, PIECE, False),
        (PIECE, 2 * PIECE, False),
        (2 * PIECE, 2 * PIECE + 1, True),
    ]
    assert [(p.start, p.stop, p.last) for p in zipstream.pieces(0, data=b"")] == [(0, 0, True)]


def test_a_file_removed_right_after_it_is_added_is_still_packed(tmp_path: Path) -> None:
    """conda-pack adds its scripts from temporary files that it deletes at once."""
    out = io.BytesIO()
    zs = ZipStream(out, 1, 2)
    for i in range(20):
        temp = tmp_path / f"t{i}"
        temp.write_bytes(_payload(PIECE + i, i))
        zs.add_file(f"bin/t{i}", FILE, str(temp))
        temp.unlink()
    zs.close()
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.read("bin/t19") == _payload(PIECE + 19, 19)


def test_abort_stops_the_workers_and_closes_every_file(tmp_path: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    big = tmp_path / "big"
    big.write_bytes(_payload(3 * PIECE, 1))
    zs = ZipStream(io.BytesIO(), 1, 2)
    for i in range(5):
        zs.add_file(f"lib/big{i}", FILE, str(big))
    zs.abort()
    assert not zs.jobs and not zs.fds
    assert set(os.listdir("/proc/self/fd")) <= before
    with pytest.raises(RuntimeError):  # the pool takes no more work
        zs.pool.submit(print)
