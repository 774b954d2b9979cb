"""The ``.zip`` writer for conda-pack: reproducible, and with every symlink stored as a copy.

Spark unpacks a ``.zip`` from ``--archives`` with Hadoop's ``FileUtil.unZip``, which
writes a symlink entry as a regular file holding the link text: ``env/bin/python``
would be the five bytes ``python3.11``.  So this writer stores no symlinks at all.
Each link is remembered while conda-pack adds files and, once every file is in,
written as a copy of what it points to *inside the archive* (the bytes conda-pack
wrote for that member, prefix rewrites included, with its mode).  A link to a
directory becomes a copy of that directory's members.  Links that leave the
environment are refused; links to nothing that is packed are left out and counted.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import IO, Any

from bundler.artifact.readers import UnsafePath, resolve_path
from bundler.artifact.zipstream import ZipStream
from bundler.errors import PackError

MAX_DEPTH = 8  # links to directories inside copied directories, at most this deep


@dataclass
class _File:
    source: str  # read from here unless ``data`` holds conda-pack's rewritten bytes
    mode: int
    data: bytes | None = None


@dataclass
class LinkReport:
    """What became of the prefix's symlinks; recorded in the manifest as ``zip_symlinks``."""

    copied: int = 0  # links written as copies of their target
    copied_entries: int = 0  # entries those copies added (a directory adds many)
    left_out: list[str] = field(default_factory=list)  # links to nothing packed

    def to_dict(self) -> dict[str, Any]:
        return {
            "stored_as": "copies",
            "copied": self.copied,
            "copied_entries": self.copied_entries,
            "left_out": sorted(self.left_out),
        }


class ZipWriter:
    """A conda-pack archive (``add``/``add_bytes``/``close``) writing a normalised zip."""

    def __init__(self, stream: IO[bytes], level: int, threads: int | None = None) -> None:
        self.zip = ZipStream(stream, level, threads)
        self.files: dict[tuple[str, ...], _File] = {}
        self.dirs: set[tuple[str, ...]] = set()
        self.links: dict[tuple[str, ...], str] = {}
        self.all_dirs: set[tuple[str, ...]] = set()  # filled in close()
        self.written: set[str] = set()
        self.report = LinkReport()

    # ------------------------------------------------------------ conda-pack's interface

    def add(self, source: str, target: str) -> None:
        st = os.lstat(source)
        parts = _split(target)
        if stat.S_ISLNK(st.st_mode):
            self.links[parts] = os.readlink(source)  # written in close()
        elif stat.S_ISDIR(st.st_mode):
            self.dirs.add(parts)
            self._write_dir(parts)
        elif stat.S_ISREG(st.st_mode):
            self.files[parts] = _File(source, _mode(st.st_mode))
            self._write_file(parts, self.files[parts])
        else:
            raise PackError(f"{source}: not a file, directory or symlink", "remove it")

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        parts = _split(target)
        self.files[parts] = _File(source, _mode(os.stat(source).st_mode), data)
        self._write_file(parts, self.files[parts])

    def close(self) -> None:
        entries = (*self.files, *self.dirs, *self.links)
        self.all_dirs = self.dirs | {p[:i] for p in entries for i in range(1, len(p))}
        try:
            for parts in sorted(self.links):
                self._copy_link(parts, parts, 0)
        except BaseException:
            self.zip.abort()  # the caller discards the file
            raise
        self.zip.close()

    def abort(self) -> None:
        """Stop the deflating threads after a failure (the caller discards the file)."""
        self.zip.abort()

    # ------------------------------------------------------------ links as copies

    def _copy_link(self, link: tuple[str, ...], where: tuple[str, ...], depth: int) -> None:
        """Write the link ``link`` (a member path) as a copy at ``where``."""
        name = "/".join(link)
        text = self.links[link]
        try:
            if text.startswith("/"):
                raise UnsafePath(f"points to the absolute path {text}")
            real = resolve_path((*link[:-1], *text.split("/")), self.links)
        except UnsafePath as exc:
            raise PackError(
                f"symlink {name} -> {text} leaves the environment ({exc}); "
                "a .zip stores each link as a copy of its target",
                "pack to .tar.gz, which keeps links, or fix the link",
            ) from None
        before = len(self.written)
        if real in self.files:
            self._write_file(where, self.files[real])
        elif self._is_dir(real):
            if depth >= MAX_DEPTH or real == link[: len(real)]:
                raise PackError(
                    f"symlink {name} -> {text} leads to a directory that contains it",
                    "a .zip cannot hold such a loop; pack to .tar.gz",
                )
            self._copy_tree(real, where, depth)
        else:
            if depth == 0:
                self.report.left_out.append(name)
            return
        if depth == 0:
            self.report.copied += 1
            self.report.copied_entries += len(self.written) - before

    def _copy_tree(self, top: tuple[str, ...], where: tuple[str, ...], depth: int) -> None:
        n = len(top)
        self._write_dir(where)
        members = [p for p in (*self.dirs, *self.files, *self.links) if p[:n] == top and p != top]
        for parts in sorted(members):
            dest = where + parts[n:]
            if parts in self.links:
                self._copy_link(parts, dest, depth + 1)
            elif parts in self.files:
                self._write_file(dest, self.files[parts])
            else:
                self._write_dir(dest)

    def _is_dir(self, parts: tuple[str, ...]) -> bool:
        return not parts or parts in self.all_dirs

    # ------------------------------------------------------------ entries

    def _write_dir(self, parts: tuple[str, ...]) -> None:
        name = "/".join(parts) + "/"
        if parts and name not in self.written:
            self.written.add(name)
            self.zip.add_dir(name, stat.S_IFDIR | 0o755)

    def _write_file(self, parts: tuple[str, ...], f: _File) -> None:
        name = "/".join(parts)
        if name in self.written:  # conda-pack adds each target once; copies may repeat
            return
        self.written.add(name)
        mode = stat.S_IFREG | f.mode
        if f.data is not None:
            self.zip.add_data(name, mode, f.data)
        else:
            self.zip.add_file(name, mode, f.source)


def _split(target: str) -> tuple[str, ...]:
    return tuple(p for p in target.replace(os.sep, "/").split("/") if p not in ("", "."))


def _mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644
