"""The tar.gz writer: a normalised tar stream through a threaded, deterministic gzip.

Entries carry no owners and one fixed time, modes are reduced to 755/644 (777 for
links), and the gzip header holds no time, so the same files give the same bytes.
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
from typing import IO, Any

from bundler.artifact.pgzip import ParallelGzipWriter
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


class TarWriter:
    """A conda-pack archive (``add``/``add_bytes``) writing a normalised tar stream.

    Headers are built from ``lstat`` directly (no user/group lookups, hard links
    stored as files) and file data is copied in 1 MiB blocks.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        # Not stream mode ("w|"): its 10 KiB re-buffering copies every block many times.
        self.tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=_Tell(stream),  # type: ignore[call-overload]
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=1 << 20,
        )

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
        if info.isreg():
            with open(source, "rb") as fh:
                self.tar.addfile(info, fh)
        else:
            self.tar.addfile(info)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        info = self._info(source, target)
        info.size = len(data)
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
