"""Identical files go into a tar.gz once; the unpackers Spark and images use recreate them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

from bundler.artifact.readers import safe_extract
from bundler.artifact.tarwriter import (
    LINK_MIN_SIZE,
    HashingWriter,
    TarWriter,
    gzip_stream,
    same_content,
)

BIG = LINK_MIN_SIZE + 4096


def _file(root: Path, name: str, data: bytes, mode: int = 0o644) -> tuple[str, str]:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return str(path), name


def _write(root: Path, out: Path, rewritten: dict[str, bytes]) -> TarWriter:
    """Pack every file under ``root`` in name order, as write_archive does; the targets in
    ``rewritten`` go in with other bytes (as conda-pack's add_bytes after a rewrite)."""
    files = sorted((str(p), p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())
    with open(out, "wb") as fh:
        stream = gzip_stream(HashingWriter(fh), 1, 2)
        writer = TarWriter(stream, same_content(files))
        for source, target in files:
            if target in rewritten:
                writer.add_bytes(source, rewritten[target], target)
            elif target.startswith("via-bytes/"):
                writer.add_bytes(source, Path(source).read_bytes(), target)
            else:
                writer.add(source, target)
        writer.close()
        stream.close()
    return writer


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_identical_files_are_stored_once_and_unpacked_whole(tmp_path: Path) -> None:
    root = tmp_path / "prefix"
    lib = os.urandom(BIG)
    _file(root, "lib/libx.so", lib, 0o755)
    _file(root, "lib/libx.so.1", lib, 0o755)  # same bytes and mode: a link
    _file(root, "via-bytes/libx.so.1.0", lib, 0o755)  # through add_bytes: a link too
    _file(root, "lib/other.so", os.urandom(BIG), 0o755)  # same size, other bytes
    _file(root, "lib/libx-data", lib, 0o644)  # same bytes, another mode: its own copy
    _file(root, "lib/shebang", lib, 0o755)  # rewritten on the way in: its own copy
    small = os.urandom(LINK_MIN_SIZE - 1)
    _file(root, "a/small", small)
    _file(root, "b/small", small)  # too small to be worth a link
    rewritten = {"lib/shebang": b"#!/new/prefix" + lib[13:]}
    out = tmp_path / "env.tar.gz"

    writer = _write(root, out, rewritten)

    with tarfile.open(out) as tar:
        links = {m.name: m.linkname for m in tar if m.islnk()}
    assert links == {"lib/libx.so.1": "lib/libx.so", "via-bytes/libx.so.1.0": "lib/libx.so"}
    assert (writer.linked, writer.linked_bytes) == (2, 2 * BIG)

    expected = {p.relative_to(root).as_posix(): _digest(p) for p in root.rglob("*") if p.is_file()}
    expected["lib/shebang"] = hashlib.sha256(rewritten["lib/shebang"]).hexdigest()
    # Hadoop's FileUtil.unTar on Linux, Spark's --archives through it, and a by-hand unpack.
    hadoop = tmp_path / "hadoop"
    hadoop.mkdir()
    subprocess.run(["bash", "-c", f"gzip -dc '{out}' | tar -x -C '{hadoop}'"], check=True)
    ours = tmp_path / "safe"
    safe_extract(out, ours)
    for dest in (hadoop, ours):
        got = {p.relative_to(dest).as_posix(): _digest(p) for p in dest.rglob("*") if p.is_file()}
        assert got == expected, dest
        assert os.stat(dest / "lib/libx.so.1").st_ino == os.stat(dest / "lib/libx.so").st_ino
        assert os.stat(dest / "lib/other.so").st_ino != os.stat(dest / "lib/libx.so").st_ino
        assert (dest / "lib/libx-data").stat().st_mode & 0o777 == 0o644
        assert (dest / "lib/libx.so.1").stat().st_mode & 0o777 == 0o755


def test_a_prefix_without_duplicates_hashes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "prefix"
    files = [
        _file(root, "lib/a.so", os.urandom(BIG)),
        _file(root, "lib/b.so", os.urandom(BIG + 1)),
        _file(root, "lib/c", b"same"),
        _file(root, "lib/d", b"same"),
    ]
    assert same_content(files) == {}
    (root / "lib/e").symlink_to("a.so")  # a symlink to a big file is not a candidate
    files.append((str(root / "lib/e"), "lib/e"))
    _file(root, "lib/f.so", (root / "lib/a.so").read_bytes())
    files.append((str(root / "lib/f.so"), "lib/f.so"))
    assert set(same_content(files)) == {"lib/a.so", "lib/f.so"}
