"""Single-pass tar extraction: each member is checked as it streams, and a refused or
interrupted archive leaves nothing behind (``bundler.artifact.readers``)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from bundler.artifact.readers import safe_extract
from bundler.errors import VerifyError

Member = tuple[tarfile.TarInfo, bytes | None]


def _tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"ok\n") -> Member:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _many(count: int) -> list[Member]:
    return [_file(f"lib/python3.11/pkg{i % 7}/mod{i}.py", b"x" * 4096) for i in range(count)]


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar"])
def test_unsafe_member_after_many_written_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    archive = _tar(tmp_path / f"late{suffix}", [*_many(1200), _link("lib/evil", "../../..")])
    dest = tmp_path / "made" / "for" / "dest"
    with pytest.raises(VerifyError, match=r"refusing member 'lib/evil'.*leaves the tree"):
        safe_extract(archive, dest)
    # dest and the parents made for it are gone, with the 1,200 files written first
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


def test_a_later_link_that_moves_an_earlier_one_outside_is_refused(tmp_path: Path) -> None:
    # When x is written, d is a plain name and x -> d/.. is the top of the tree;
    # the later d -> . makes x point at the tree's parent.
    archive = _tar(
        tmp_path / "moved.tar.gz", [_link("x", "d/.."), _link("d", "."), _file("bin/last")]
    )
    with pytest.raises(VerifyError, match=r"refusing member 'x'.*leaves the tree"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    # and a file written through x after d is refused before it is written
    archive = _tar(tmp_path / "through.tar", [_link("x", "d/.."), _link("d", "."), _file("x/evil")])
    with pytest.raises(VerifyError, match=r"refusing member 'x/evil'"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "dest").exists()


def test_hard_link_to_a_member_not_written_before_it_is_refused(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ahead.tar.gz",
        [_file("bin/a"), _link("lib/copy", "lib/real", tarfile.LNKTYPE), _file("lib/real")],
    )
    with pytest.raises(VerifyError, match=r"'lib/copy'.*no earlier member wrote"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_refused_archive_keeps_what_dest_held_before(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "bin").mkdir(parents=True)
    (dest / "bin" / "mine").write_text("kept\n")
    (dest / "notes").write_text("kept\n")
    archive = _tar(tmp_path / "bad.tar.gz", [_file("lib/a"), _file("share/b"), _file("/abs")])
    with pytest.raises(VerifyError, match="absolute path"):
        safe_extract(archive, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "bin",
        "bin/mine",
        "notes",
    ]


def test_interrupted_extraction_leaves_nothing(tmp_path: Path) -> None:
    class Interrupting:
        def step(self, message: str) -> None:
            pass

        def progress(self, task: str, completed: float, total: float | None) -> None:
            if completed:  # the first report after 500 members were written
                raise KeyboardInterrupt

        def warn(self, message: str) -> None:
            pass

    archive = _tar(tmp_path / "big.tar.gz", _many(700))
    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        safe_extract(archive, dest, reporter=Interrupting())
    assert not dest.exists()


def test_one_pass_keeps_links_hard_links_and_modes(tmp_path: Path) -> None:
    tool = tarfile.TarInfo("bin/tool")
    tool.mode = 0o755
    archive = _tar(
        tmp_path / "good.tar.gz",
        [
            (tool, b"#!/bin/sh\n"),
            *_many(600),
            _link("lib/alias", "python3.11"),
            _link("lib/copy.py", "lib/python3.11/pkg0/mod0.py", tarfile.LNKTYPE),
            _link("bin/lib", "../lib"),
            _file("bin/lib/alias/pkg1/through-links.py", b"y"),
        ],
    )
    dest = tmp_path / "dest"
    safe_extract(archive, dest)
    assert os.access(dest / "bin" / "tool", os.X_OK)
    assert os.path.samefile(dest / "lib" / "copy.py", dest / "lib/python3.11/pkg0/mod0.py")
    assert (dest / "lib/python3.11/pkg1/through-links.py").read_bytes() == b"y"
    assert len(list((dest / "lib/python3.11").rglob("mod*.py"))) == 600
