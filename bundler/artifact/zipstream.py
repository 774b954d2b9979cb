"""Zip records written directly, members deflated on every core, zip64 where needed.

``zipfile`` deflates one member at a time on one thread: 230 s for a 6.5 GB CUDA
environment.  Zip members are independent, so here each member is cut into fixed
pieces (``PIECE`` bytes) that worker threads read and deflate; a piece after the first
is primed with the 32 KiB before it and every piece but the last ends with a sync
flush, so a member's pieces concatenate into one deflate stream (as ``pgzip`` does for
gzip).  The pieces depend only on the member's bytes, never on the thread count, so
neither do the archive's bytes.  Levels 0-3 use ISA-L (several times faster than
zlib), 4-9 the standard library's zlib.

Results are written in member order by the calling thread.  At most ``2 * threads + 2``
pieces (and never more than 64, about 130 MB) are in flight, so memory does not grow
with the environment, its largest file or the number of cores.  A member of several
pieces gets its CRC and sizes patched into its local header once written (the output
must be seekable); no data descriptors.

zip64 (APPNOTE 4.5.3): a member whose size or offset reaches ``limit`` (4 GiB) gets a
zip64 extra field, and an archive of 65,535 entries or more, or whose central
directory starts or ends past ``limit``, gets the zip64 end records.  Java's
``ZipFile`` (Hadoop's unzip) and Python's ``zipfile`` read both.  ``limit`` is a
parameter so that tests can exercise the zip64 records without writing 4 GiB.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from isal import isal_zlib

from bundler.errors import PackError

PIECE = 1 << 20  # bytes of a member deflated by one worker
WINDOW = 32 * 1024  # deflate's window: the bytes that prime the next piece
MAX_IN_FLIGHT = 64  # pieces read or deflated but not yet written, whatever the cores
ISAL_MAX_LEVEL = 3
U16 = 0xFFFF
U32 = 0xFFFFFFFF
STORED, DEFLATED = 0, 8
DOS_TIME, DOS_DATE = 0, (1 << 5) | 1  # 1980-01-01 00:00, the earliest a zip can hold
UTF8_FLAG = 0x800

LOCAL = struct.Struct("<IHHHHHIIIHH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
END = struct.Struct("<IHHHHIIH")
END64 = struct.Struct("<IQHHIIQQQQ")
LOCATOR64 = struct.Struct("<IIQI")
CRC_OFFSET = 14  # of the CRC field in a local header


@dataclass
class Entry:
    """One member: what the central directory records about it."""

    name: str
    mode: int  # st_mode, file type included
    method: int
    offset: int = 0
    crc: int = 0
    csize: int = 0
    usize: int = 0
    local64: bool = False  # the local header carries a zip64 extra field

    @property
    def raw_name(self) -> bytes:
        return self.name.encode()

    @property
    def flags(self) -> int:
        return 0 if self.name.isascii() else UTF8_FLAG


def _version(zip64: bool) -> int:
    return 45 if zip64 else 20


def local_header(entry: Entry, limit: int = U32) -> bytes:
    """The local file header; with ``local64`` both sizes go to a zip64 extra field."""
    name = entry.raw_name
    if entry.local64:
        extra = struct.pack("<HHQQ", 1, 16, entry.usize, entry.csize)
        sizes = (U32, U32)
    else:
        if entry.usize >= limit or entry.csize >= limit:
            raise PackError(f"{entry.name}: member reached the zip64 limit unannounced")
        extra, sizes = b"", (entry.csize, entry.usize)
    head = LOCAL.pack(
        0x04034B50,
        _version(entry.local64),
        entry.flags,
        entry.method,
        DOS_TIME,
        DOS_DATE,
        entry.crc,
        *sizes,
        len(name),
        len(extra),
    )
    return head + name + extra


def central_record(entry: Entry, limit: int = U32) -> bytes:
    """The central directory record; fields at ``limit`` or over move to a zip64 extra."""
    values: list[int] = []
    fields = []
    for value in (entry.usize, entry.csize, entry.offset):
        if value >= limit:
            values.append(value)
            fields.append(U32)
        else:
            fields.append(value)
    extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values) if values else b""
    zip64 = bool(values) or entry.local64
    name = entry.raw_name
    head = CENTRAL.pack(
        0x02014B50,
        (3 << 8) | _version(zip64),  # made by Unix
        _version(zip64),
        entry.flags,
        entry.method,
        DOS_TIME,
        DOS_DATE,
        entry.crc,
        fields[1],
        fields[0],
        len(name),
        len(extra),
        0,  # comment
        0,  # disk
        0,  # internal attributes
        (entry.mode & 0xFFFF) << 16,
        fields[2],
    )
    return head + name + extra


def end_records(count: int, cd_offset: int, cd_size: int, limit: int = U32) -> bytes:
    """The end of central directory record, preceded by the zip64 ones when needed."""
    if count < U16 and cd_offset < limit and cd_offset + cd_size < limit:
        return END.pack(0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)
    end64_offset = cd_offset + cd_size
    end64 = END64.pack(
        0x06064B50, END64.size - 12, (3 << 8) | 45, 45, 0, 0, count, count, cd_size, cd_offset
    )
    locator = LOCATOR64.pack(0x07064B50, 0, end64_offset, 1)
    end = END.pack(0x06054B50, 0, 0, U16, U16, U32, U32, 0)
    return end64 + locator + end


# ---------------------------------------------------------------- deflating pieces


@dataclass(frozen=True)
class Piece:
    """Bytes ``start:stop`` of a member, from an open file (``fd``) or from memory."""

    start: int
    stop: int
    last: bool
    fd: int | None = None
    data: bytes | None = None

    def read(self) -> tuple[bytes, int]:
        """The piece preceded by up to WINDOW bytes of priming, and the priming's length."""
        begin = max(0, self.start - WINDOW)
        if self.data is not None:
            return self.data[begin : self.stop], self.start - begin
        assert self.fd is not None
        block = os.pread(self.fd, self.stop - begin, begin)
        if len(block) != self.stop - begin:
            raise PackError("a file changed size while being packed", "pack again")
        return block, self.start - begin


def deflate_piece(piece: Piece, level: int) -> tuple[bytes, int, int]:
    """(deflated bytes, CRC-32, length) of one piece."""
    block, primed = piece.read()
    view = memoryview(block)[primed:]
    lib = isal_zlib if level <= ISAL_MAX_LEVEL else zlib
    if primed:
        c = lib.compressobj(level, lib.DEFLATED, -15, zdict=block[:primed])
    else:
        c = lib.compressobj(level, lib.DEFLATED, -15)
    out = c.compress(view) + c.flush(lib.Z_FINISH if piece.last else lib.Z_SYNC_FLUSH)
    return out, isal_zlib.crc32(view), len(view)


def pieces(size: int, fd: int | None = None, data: bytes | None = None) -> list[Piece]:
    """A member of ``size`` bytes as fixed pieces (one, possibly empty, at least)."""
    starts = range(0, max(size, 1), PIECE)
    return [Piece(s, min(s + PIECE, size), s + PIECE >= size, fd, data) for s in starts]


# ---------------------------------------------------------------- the writer

_Job = tuple[Entry, "Future[tuple[bytes, int, int]] | None", bool, Piece | None]  # first?


class ZipStream:
    """Members in, a zip out: ``add_dir``, ``add_file``, ``add_data``, then ``close``."""

    def __init__(
        self, raw: IO[bytes], level: int, threads: int | None = None, limit: int = U32
    ) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"deflate level {level} is not in 0-9")
        self.raw = raw
        self.level = level
        self.limit = limit
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.in_flight = min(2 * self.threads + 2, MAX_IN_FLIGHT)
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="zip")
        self.jobs: deque[_Job] = deque()
        self.entries: list[Entry] = []
        self.fds: dict[int, None] = {}  # files opened and not yet all written
        self.pos = raw.tell()

    # ---------------------------------------------------------------- members

    def add_dir(self, name: str, mode: int) -> None:
        entry = Entry(name, mode, STORED)
        self.entries.append(entry)
        self.jobs.append((entry, None, True, None))

    def add_file(self, name: str, mode: int, source: str) -> None:
        """Add the file ``source``; it is opened now (conda-pack removes some of the files
        it adds right after adding them) and read by the workers."""
        fd = os.open(source, os.O_RDONLY)
        self.fds[fd] = None
        size = os.fstat(fd).st_size
        self._member(Entry(name, mode, DEFLATED, usize=size), pieces(size, fd=fd))

    def add_data(self, name: str, mode: int, data: bytes) -> None:
        self._member(Entry(name, mode, DEFLATED, usize=len(data)), pieces(len(data), data=data))

    def _member(self, entry: Entry, parts: list[Piece]) -> None:
        # deflate may grow a member slightly: announce zip64 well before the limit
        entry.local64 = entry.usize >= self.limit - self.limit // 16
        self.entries.append(entry)
        for i, part in enumerate(parts):
            future = self.pool.submit(deflate_piece, part, self.level)
            self.jobs.append((entry, future, i == 0, part))
            self._drain(self.in_flight)

    # ---------------------------------------------------------------- output

    def _drain(self, keep: int) -> None:
        while len(self.jobs) > keep:
            entry, future, first, part = self.jobs.popleft()
            if first:
                entry.offset = self.pos
            if future is None or part is None:
                self._write(local_header(entry, self.limit))
                continue
            out, crc, length = future.result()
            entry.crc = crc if first else isal_zlib.crc32_combine(entry.crc, crc, length)
            entry.csize += len(out)
            header = local_header(entry, self.limit) if first else b""
            self._write(header)  # final when the member is one piece, else rewritten below
            self._write(out)
            if part.last and not first:
                self._rewrite_header(entry)
            if part.last and part.fd is not None:
                del self.fds[part.fd]
                os.close(part.fd)

    def _rewrite_header(self, entry: Entry) -> None:
        self.raw.seek(entry.offset)
        self.raw.write(local_header(entry, self.limit))
        self.raw.seek(self.pos)

    def _write(self, data: bytes) -> None:
        self.raw.write(data)
        self.pos += len(data)

    def close(self) -> None:
        """Write what is pending and the central directory."""
        try:
            self._drain(0)
            cd_offset = self.pos
            for entry in self.entries:
                self._write(central_record(entry, self.limit))
            self._write(end_records(len(self.entries), cd_offset, self.pos - cd_offset, self.limit))
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop the workers without writing the rest (the caller discards the file)."""
        for job in self.jobs:
            if job[1] is not None:
                job[1].cancel()
        self.jobs.clear()
        self.pool.shutdown(wait=True)
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
