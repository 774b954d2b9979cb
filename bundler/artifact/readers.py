"""Safe extraction of the archives bundler makes (.tar.gz/.tgz/.tar/.zip).

A tar is read once: each member is validated before it is written, and a refused
or damaged archive leaves nothing behind (what was written is removed again).
``bundler verify``, the Spark test helper and the image build all unpack through
``safe_extract``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from errno import ENOENT
from pathlib import Path
from typing import IO, Any, Literal, cast

from bundler.artifact.formats import archive_format
from bundler.errors import BundlerError, VerifyError, os_error
from bundler.events import NullReporter, Reporter

__all__ = [
    "UnsafePath",
    "extract_members",
    "read_members",
    "resolve_path",
    "safe_extract",
    "zip_symlinks",
]

_UNSAFE_HINT = "the archive was not made by bundler pack, or was altered; nothing was extracted"
_MIB = 1 << 20


class UnsafePath(ValueError):
    """A member path or link that would leave the archive's tree."""


@dataclass(frozen=True)
class _Entry:
    name: str
    parts: tuple[str, ...]
    kind: Literal["file", "dir", "symlink", "hardlink"]
    target: str = ""
    mode: int | None = None


def _parts(name: str) -> tuple[str, ...]:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[/\\]", name):
        raise UnsafePath("absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafePath("'..' in path")
    return parts


def resolve_path(parts: Iterable[str], links: dict[tuple[str, ...], str]) -> tuple[str, ...]:
    """Resolve a path inside the archive through the archive's own symlinks.

    Like ``realpath`` on the tree that extraction would create; raises ``UnsafePath``
    when the path leaves the tree at any point.
    """
    todo = deque(parts)
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise UnsafePath("resolves outside the archive's tree")
            done.pop()
            continue
        target = links.get((*done, part))
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise UnsafePath("symlink loop")
        if target.startswith("/"):
            raise UnsafePath(f"goes through a symlink to the absolute path {target}")
        todo.extendleft(reversed(target.split("/")))
    return tuple(done)


def _check_entry(e: _Entry, links: dict[tuple[str, ...], str]) -> None:
    """Raise ``UnsafePath`` when ``e`` would leave the tree, given the archive's ``links``."""
    if not e.parts and e.kind != "dir":
        raise UnsafePath("would replace the destination directory")
    parent = resolve_path(e.parts[:-1], links)
    if e.kind == "symlink":
        if not e.target:
            raise UnsafePath("symlink with an empty target")
        if e.target.startswith("/"):
            raise UnsafePath(f"symlink to the absolute path {e.target}")
        try:
            resolve_path((*parent, *e.target.split("/")), links)
        except UnsafePath as exc:
            raise UnsafePath(f"symlink to {e.target} leaves the tree ({exc})") from None
    elif e.kind == "hardlink":
        try:
            resolve_path(_parts(e.target), links)
        except UnsafePath as exc:
            raise UnsafePath(f"hard link to {e.target} leaves the tree ({exc})") from None


def _refused(archive: Path, name: str, exc: UnsafePath) -> VerifyError:
    return VerifyError(f"{archive.name}: refusing member {name!r}: {exc}", _UNSAFE_HINT)


def _validate(entries: list[_Entry], archive: Path) -> None:
    links = {e.parts: e.target for e in entries if e.kind == "symlink"}
    for e in entries:
        try:
            _check_entry(e, links)
        except UnsafePath as exc:
            raise _refused(archive, e.name, exc) from None


def _tar_entry(m: tarfile.TarInfo) -> _Entry:
    parts = _parts(m.name)
    if m.isreg():
        return _Entry(m.name, parts, "file", mode=m.mode)
    if m.isdir():
        return _Entry(m.name, parts, "dir")
    if m.issym():
        return _Entry(m.name, parts, "symlink", m.linkname)
    if m.islnk():
        return _Entry(m.name, parts, "hardlink", m.linkname)
    if m.ischr() or m.isblk():
        raise UnsafePath("device file")
    if m.isfifo():
        raise UnsafePath("named pipe")
    raise UnsafePath(f"unsupported member type {m.type!r}")


def _zip_entries(zf: zipfile.ZipFile, archive: Path) -> list[_Entry]:
    entries = []
    seen: set[tuple[str, ...]] = set()
    for info in zf.infolist():
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        try:
            parts = _parts(info.filename)
            if parts in seen:
                raise UnsafePath("appears twice")
            seen.add(parts)
            if stat.S_ISLNK(mode):
                if info.file_size > 4096:
                    raise UnsafePath("symlink target longer than 4096 bytes")
                target = zf.read(info).decode("utf-8", "surrogateescape")
                entries.append(_Entry(info.filename, parts, "symlink", target))
            elif info.is_dir() or stat.S_ISDIR(mode):
                entries.append(_Entry(info.filename, parts, "dir"))
            elif mode == 0 or stat.S_ISREG(mode) or stat.S_IFMT(mode) == 0:
                entries.append(_Entry(info.filename, parts, "file", mode=mode & 0o7777 or None))
            else:
                raise UnsafePath("device file or other special file")
        except UnsafePath as exc:
            raise VerifyError(
                f"{archive.name}: refusing member {info.filename!r}: {exc}", _UNSAFE_HINT
            ) from None
    return entries


def zip_symlinks(archive: Path) -> list[str]:
    """Names of the zip's symlink entries (Unix mode ``S_IFLNK`` in ``external_attr``).

    Hadoop's ``FileUtil.unZip``, which Spark uses for a ``.zip`` in ``--archives``,
    writes each of them as a regular file holding the link text.
    """
    with zipfile.ZipFile(archive) as zf:
        return [
            i.filename
            for i in zf.infolist()
            if i.create_system == 3 and stat.S_ISLNK(i.external_attr >> 16)
        ]


def _counted(items: Sequence[Any], what: str, reporter: Reporter) -> Iterator[Any]:
    for i, item in enumerate(items):
        if i % 500 == 0:
            reporter.progress(what, i, len(items))
        yield item
    reporter.progress(what, len(items), len(items))


def _streamed(tar: tarfile.TarFile, archive: Path, reporter: Reporter) -> Iterator[Any]:
    """The tar's members in archive order, each checked before it is handed on.

    A member is checked against the symlinks that precede it, which are exactly the
    ones on disk when it is written; a hard link must name a file written before
    it.  At the end the whole list is checked again with every symlink, since a
    later link can change where an earlier one points.
    """
    entries: list[_Entry] = []
    links: dict[tuple[str, ...], str] = {}
    files: set[tuple[str, ...]] = set()
    what = f"extracting {archive.name}"
    for m in tar:
        try:
            e = _tar_entry(m)
            _check_entry(e, links)
            if e.kind == "hardlink" and _parts(e.target) not in files:
                raise UnsafePath(f"hard link to {e.target}, which no earlier member wrote")
        except UnsafePath as exc:
            raise _refused(archive, m.name, exc) from None
        entries.append(e)
        if e.kind == "symlink":
            links[e.parts] = e.target
        elif e.kind in ("file", "hardlink"):
            files.add(e.parts)
        if len(entries) % 500 == 0:
            reporter.progress(what, len(entries), None)
        if e.parts:
            yield m
    _validate(entries, archive)
    reporter.progress(what, len(entries), len(entries))


def _extract_tar(tar: tarfile.TarFile, archive: Path, dest: Path, reporter: Reporter) -> int:
    """One pass over the tar: check each member, then write it (see ``_streamed``)."""
    dest.mkdir(parents=True, exist_ok=True)
    # The stdlib's "data" filter re-checks every member against the real filesystem.
    kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    count = 0

    def counted() -> Iterator[Any]:
        nonlocal count
        for m in _streamed(tar, archive, reporter):
            count += 1
            yield m

    tar.extractall(dest, members=counted(), **kwargs)
    return count


def _extract_zip(zf: zipfile.ZipFile, archive: Path, dest: Path, reporter: Reporter) -> int:
    entries = _zip_entries(zf, archive)
    _validate(entries, archive)
    dest.mkdir(parents=True, exist_ok=True)
    links = {e.parts: e.target for e in entries if e.kind == "symlink"}
    infos = {i.filename: i for i in zf.infolist()}
    # Symlinks are made last, so files are written through resolved real paths only.
    ordered = sorted(entries, key=lambda e: {"dir": 0, "file": 1}.get(e.kind, 2))
    for e in _counted(ordered, f"extracting {archive.name}", reporter):
        if not e.parts:
            continue
        where = dest.joinpath(*resolve_path(e.parts[:-1], links))
        if e.kind == "dir":
            dest.joinpath(*resolve_path(e.parts, links)).mkdir(parents=True, exist_ok=True)
            continue
        where.mkdir(parents=True, exist_ok=True)
        path = where / e.parts[-1]
        if e.kind == "symlink":
            if path.is_dir() and not path.is_symlink():
                raise VerifyError(f"{archive.name}: symlink {e.name!r} collides with a directory")
            os.symlink(e.target, path)
            continue
        mode = ((e.mode or 0o644) & 0o755) | 0o600
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with zf.open(infos[e.name]) as src, os.fdopen(os.open(path, flags, mode), "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(path, mode)
    return sum(1 for e in entries if e.parts)


def _gzip_open(path: Path) -> IO[bytes]:
    """A seekable gzip reader: ISA-L's (several times faster) where installed."""
    try:
        from isal import igzip
    except ImportError:
        import gzip

        return cast(IO[bytes], gzip.open(path, "rb"))
    return cast(IO[bytes], igzip.open(path, "rb"))


class _ForwardReader(io.RawIOBase):
    """A stream that tells its position and seeks forward only, by reading.

    Lets ``tarfile``'s random-access mode (large reads, no copying of its own
    buffer) run over a gzip inflated in another thread, provided the members are
    read in order.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self._pos if whence == io.SEEK_CUR else 0)
        if whence == io.SEEK_END or target < self._pos:
            raise io.UnsupportedOperation("this stream only seeks forward")
        while self._pos < target and self.read(min(target - self._pos, _MIB)):
            pass
        return self._pos

    def close(self) -> None:
        self._raw.close()
        super().close()


def _gzip_stream(path: Path) -> IO[bytes]:
    """A forward-only gzip reader that inflates in a thread of its own (ISA-L)."""
    try:
        from isal import igzip_threaded
    except ImportError:
        return _gzip_open(path)
    return cast(IO[bytes], _ForwardReader(igzip_threaded.open(path, "rb", threads=1)))


def _remove_added(dest: Path, before: set[str]) -> None:
    """Remove the entries of ``dest`` that are not in ``before``."""
    with contextlib.suppress(OSError):
        for name in set(os.listdir(dest)) - before:
            path = dest / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def extract_members(archive: Path, dest: Path, reporter: Reporter) -> int:
    """Unpack ``archive`` into ``dest`` (see ``safe_extract``); the number of members.

    On any failure, an interruption included, what was written is removed again:
    ``dest`` and the parents made for it, or the entries added to an existing ``dest``.
    """
    dest = Path(os.path.abspath(dest))
    top = dest  # the outermost directory that this call creates
    while not top.parent.exists():
        top = top.parent
    before = set(os.listdir(dest)) if dest.is_dir() else None
    try:
        return _extract_members(archive, dest, reporter)
    except BaseException:
        if before is None:
            shutil.rmtree(top, ignore_errors=True)
        else:
            _remove_added(dest, before)
        raise


@contextlib.contextmanager
def _opened(archive: Path, *, threaded: bool) -> Iterator[zipfile.ZipFile | tarfile.TarFile]:
    """``archive`` open for one pass from start to end, by its format: a ZipFile, or a
    TarFile (a .tar.gz inflated in a thread of its own when ``threaded``)."""
    fmt = archive_format(archive)
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            yield zf
        return
    with contextlib.ExitStack() as stack:
        if fmt == "tar.gz":
            raw = stack.enter_context(_gzip_stream(archive) if threaded else _gzip_open(archive))
            yield stack.enter_context(tarfile.TarFile(fileobj=raw, copybufsize=_MIB))
        else:
            yield stack.enter_context(tarfile.TarFile(archive, copybufsize=_MIB))


def _extract_members(archive: Path, dest: Path, reporter: Reporter) -> int:
    try:
        with _opened(archive, threaded=True) as opened:
            if isinstance(opened, zipfile.ZipFile):
                return _extract_zip(opened, archive, dest, reporter)
            return _extract_tar(opened, archive, dest, reporter)
    except BundlerError:
        raise
    except tarfile.FilterError as exc:
        # the stdlib's second look, on the real filesystem (dest was not empty?)
        hint = "extract into an empty directory; the archive may have been altered"
        raise VerifyError(f"{archive.name}: refusing member: {exc}", hint) from exc
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        # a full or read-only scratch disk is the machine's fault, not the archive's
        mapped = os_error(exc, dest) if isinstance(exc, OSError) and exc.errno != ENOENT else None
        if mapped is not None:
            raise mapped from exc
        raise VerifyError(
            f"{archive.name} could not be extracted: {type(exc).__name__}: {exc}",
            "the archive is truncated or corrupt; pack it again",
        ) from exc


def _read_tar(tar: tarfile.TarFile, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for member in tar:
        if (member.isreg() or member.islnk()) and wanted(member.name):
            fh = tar.extractfile(member)  # a hard link reads its target's bytes
            found[member.name] = fh.read() if fh else b""
    return found


def _read_zip(zf: zipfile.ZipFile, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for info in zf.infolist():
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if not info.is_dir() and not stat.S_ISLNK(mode) and wanted(info.filename):
            found[info.filename] = zf.read(info)
    return found


def read_members(archive: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The bytes of the regular files whose member name ``wanted`` accepts, nothing extracted.

    Reads the archive once from start to end (small metadata files, such as
    ``conda-meta/*.json``); VerifyError when it cannot be read.
    """
    archive = Path(archive)
    try:
        with _opened(archive, threaded=False) as opened:
            if isinstance(opened, zipfile.ZipFile):
                return _read_zip(opened, wanted)
            return _read_tar(opened, wanted)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise VerifyError(
            f"{archive.name} could not be read: {type(exc).__name__}: {exc}",
            "the archive is truncated or corrupt; pack it again",
        ) from exc


def safe_extract(archive: Path, dest: Path, *, reporter: Reporter | None = None) -> None:
    """Unpack a .tar.gz/.tgz/.tar/.zip archive into ``dest``, refusing anything unsafe.

    Every member is validated before it is written: absolute paths, ``..``
    components, symlinks or hard links that leave the tree (followed through the
    archive's own links), device files and pipes raise ``VerifyError`` naming the
    member, and what was already written is removed (``dest`` too, when this call
    created it), so a refused archive leaves nothing behind.  Symlinks and the
    executable bit are kept; owners, setuid bits and group/other write bits are not.
    ``dest`` is created when missing and should be empty.
    """
    extract_members(Path(archive), Path(dest), reporter or NullReporter())
