"""bundler.artifact.zipwriter: a zip with no symlink entries, each link stored as a copy."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from bundler.artifact.zipwriter import ZipWriter
from bundler.errors import PackError


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "pkg" / "sub").mkdir(parents=True)
    (root / "bin" / "tool3").write_text("#!/bin/sh\necho tool\n")
    (root / "bin" / "tool3").chmod(0o755)
    (root / "bin" / "tool").symlink_to("tool3")
    (root / "lib" / "libx.so.1.0").write_bytes(b"\x7fELF-x")
    (root / "lib" / "libx.so.1").symlink_to("libx.so.1.0")
    (root / "lib" / "libx.so").symlink_to("libx.so.1")  # a link to a link
    (root / "lib" / "pkg" / "a.py").write_text("A = 1\n")
    (root / "lib" / "pkg" / "sub" / "b.py").write_text("B = 2\n")
    (root / "lib" / "pkg" / "sub" / "libx.so").symlink_to("../../libx.so")
    (root / "lib" / "pkg-alias").symlink_to("pkg")  # a link to a directory
    (root / "share").mkdir()
    (root / "share" / "gone").symlink_to("../lib/missing")  # dangling
    return root


def _pack(root: Path, rewritten: dict[str, bytes] | None = None) -> tuple[bytes, ZipWriter]:
    out = io.BytesIO()
    writer = ZipWriter(out, 6)
    for path in sorted(root.rglob("*")):
        target = path.relative_to(root).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if rewritten and target in rewritten:
            writer.add_bytes(str(path), rewritten[target], target)
        else:
            writer.add(str(path), target)
    writer.close()
    return out.getvalue(), writer


def test_links_become_copies_of_their_targets(tmp_path: Path) -> None:
    root = _tree(tmp_path / "env")
    # conda-pack rewrote bin/tool3 (a shebang): the copy carries the rewritten bytes
    data, writer = _pack(root, {"bin/tool3": b"#!/usr/bin/env sh\necho tool\n"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        read = {n: zf.read(n) for n in infos if not n.endswith("/")}
    modes = {n: i.external_attr >> 16 for n, i in infos.items()}
    assert not [n for n, m in modes.items() if stat.S_ISLNK(m)]
    assert read["bin/tool"] == read["bin/tool3"] == b"#!/usr/bin/env sh\necho tool\n"
    assert stat.S_IMODE(modes["bin/tool"]) == 0o755
    assert read["lib/libx.so"] == read["lib/libx.so.1"] == b"\x7fELF-x"
    assert stat.S_IMODE(modes["lib/libx.so"]) == 0o644
    # the directory link is a copy of the directory, links inside it copied too
    assert read["lib/pkg-alias/a.py"] == b"A = 1\n"
    assert read["lib/pkg-alias/sub/b.py"] == b"B = 2\n"
    assert read["lib/pkg-alias/sub/libx.so"] == read["lib/pkg/sub/libx.so"] == b"\x7fELF-x"
    assert "share/gone" not in infos
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    report = writer.report.to_dict()
    assert report["stored_as"] == "copies" and report["left_out"] == ["share/gone"]
    assert report["copied"] == 5  # tool, libx.so.1, libx.so, sub/libx.so, pkg-alias
    assert report["copied_entries"] > report["copied"]
    # the same tree gives the same bytes
    assert _pack(root, {"bin/tool3": b"#!/usr/bin/env sh\necho tool\n"})[0] == data


@pytest.mark.parametrize(
    ("link", "target", "message"),
    [
        ("lib/evil", "../../etc", "leaves the environment"),
        ("lib/abs", "/usr/lib", "absolute path /usr/lib"),
        ("lib/pkg/loop", "..", "contains it"),
    ],
)
def test_links_that_cannot_be_copies_are_refused(
    tmp_path: Path, link: str, target: str, message: str
) -> None:
    root = _tree(tmp_path / "env")
    (root / link).symlink_to(target)
    with pytest.raises(PackError, match=message) as err:
        _pack(root)
    assert link in err.value.message and ".tar.gz" in err.value.hint


def test_python_zipfile_extraction_runs_the_copies(tmp_path: Path) -> None:
    """zipfile, like Hadoop, writes a symlink entry as a file; there are none left."""
    root = _tree(tmp_path / "env")
    data, _ = _pack(root)
    dest = tmp_path / "out"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
        for info in zf.infolist():
            os.chmod(dest / info.filename, (info.external_attr >> 16) & 0o777)
    assert (dest / "bin" / "tool").read_text().endswith("echo tool\n")
    assert not (dest / "bin" / "tool").is_symlink()
