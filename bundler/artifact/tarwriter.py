"""The tar.gz writer: a normalised tar stream through a threaded, deterministic gzip.

Entries carry no owners and one fixed time, modes are reduced to 755/644 (777 for
links), and the gzip header holds no time, so the same files give the same bytes.
A file whose bytes equal an earlier entry's is stored as a hard link to it
(``same_content``): wheels cannot hold symlinks, so pyarrow's ``libarrow_python.so``,
``.so.2600`` and ``.so.2600.1.0`` are three full copies in every pip-installed prefix.
tar, Docker's ``ADD`` and Python's ``tarfile`` all recreate the link on extraction.
ISA-L's threaded gzip compresses levels 0-3 (level 1 by default: within a few percent
of conda-pack's zlib level 4 in size, several times faster); levels 4-9 go to
``pgzip``, a threaded writer over the standard library's zlib.  Both cut the input
into fixed blocks, so the bytes do not depend on the number of threads.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from bundler.artifact.pgzip import ParallelGzipWriter
from bundler.digest import sha256_file
from bundler.errors import PackError

GZIP_LEVEL = 1
ISAL_MAX_LEVEL = 3
FIXED_MTIME = 315532800  # 1980-01-01, also the earliest time a zip can hold (zipwriter)


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isdir():
        info.mode = 0o755
    elif info.issym():
        info.mode = 0o777
    else:
        info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


#: Files smaller than this are never linked: the saving would not pay for the hashing.
LINK_MIN_SIZE = 64 * 1024


def same_content(
    sources: Iterable[tuple[str, str]], size_of: Callable[[str], int | None] | None = None
) -> dict[str, str]:
    """``{target: sha256}`` for the files that may duplicate another, from (source, target).

    Only regular files of at least LINK_MIN_SIZE whose size another such file shares are
    hashed, so a prefix without duplicates costs one ``lstat`` per file, or none for the
    files whose size ``size_of`` knows (a regular file's size, 0 for anything else; None:
    unknown, ``lstat`` it): ``Prefix.size_at``, for the files the walk saw.
    """
    by_size: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for source, target in sources:
        size = size_of(source) if size_of else None
        if size is None:
            st = os.lstat(source)
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        if size >= LINK_MIN_SIZE:
            by_size[size].append((source, target))
    digests: dict[str, str] = {}
    for group in by_size.values():
        if len(group) > 1:
            for source, target in group:
                digests[target] = sha256_file(source)
    return digests


class TarWriter:
    """A conda-pack archive (``add``/``add_bytes``) writing a normalised tar stream.

    Headers are built from ``lstat`` directly (no user/group lookups) and file data is
    copied in 1 MiB blocks.  Targets named in ``same_content`` (see ``same_content()``)
    whose bytes match an earlier entry's become hard links to it; ``linked`` and
    ``linked_bytes`` count them.
    """

    def __init__(self, stream: IO[bytes], same_content: Mapping[str, str] | None = None) -> None:
        # Not stream mode ("w|"): its 10 KiB re-buffering copies every block many times.
        self.tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=_Tell(stream),  # type: ignore[call-overload]
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=1 << 20,
        )
        self.same_content = same_content or {}
        self.stored: dict[tuple[int, int, str], str] = {}  # (size, mode, sha256) -> target
        self.linked = 0
        self.linked_bytes = 0

    def _link(self, info: tarfile.TarInfo, digest: str | None) -> bool:
        """Write ``info`` as a hard link when an earlier entry has the same bytes and mode
        (a link shares the first file's mode)."""
        if digest is None:
            return False
        key = (info.size, info.mode, digest)
        first = self.stored.setdefault(key, info.name)
        if first == info.name:
            return False
        self.linked += 1
        self.linked_bytes += info.size
        info.type = tarfile.LNKTYPE
        info.linkname = first
        info.size = 0
        self.tar.addfile(info)
        return True

    @staticmethod
    def _info(source: str, target: str) -> tarfile.TarInfo:
        st = os.lstat(source)
        info = tarfile.TarInfo(target)
        if stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(source)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
        else:
            raise PackError(f"{source}: not a file, directory or symlink", "remove it")
        info.mode = stat.S_IMODE(st.st_mode)
        return _normalize(info)

    def add(self, source: str, target: str) -> None:
        info = self._info(source, target)
        if not info.isreg():
            self.tar.addfile(info)
        elif not self._link(info, self.same_content.get(target)):
            with open(source, "rb") as fh:
                self.tar.addfile(info, fh)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        info = self._info(source, target)
        info.size = len(data)
        # conda-pack may have rewritten the bytes (a shebang): hash what goes in.
        digest = hashlib.sha256(data).hexdigest() if target in self.same_content else None
        if not self._link(info, digest):
            self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


class _Tell:
    """Write-only file with ``tell``: all that tarfile's "w" mode needs."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.pos += len(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.pos


class HashingWriter(io.RawIOBase):
    """Pass-through file that hashes and counts what is written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def gzip_stream(raw: Any, level: int, threads: int | None) -> IO[bytes]:
    """A threaded gzip writer: ISA-L for levels 0-3, ``pgzip`` (zlib) for 4-9."""
    count = threads or os.cpu_count() or 1
    if level <= ISAL_MAX_LEVEL:
        from isal import igzip_threaded

        return igzip_threaded.open(raw, "wb", compresslevel=level, threads=count)
    return ParallelGzipWriter(raw, level, count)  # type: ignore[return-value]
