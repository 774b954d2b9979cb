"""A multi-threaded gzip writer whose bytes depend only on the data and the level.

ISA-L's threaded gzip covers levels 0-3 (``bundler.artifact.pack``); this one serves 4-9 with
the standard library's zlib.  As pigz does, the input is cut into fixed blocks; each
block is deflated on a worker thread by a fresh compressor, primed with the last 32 KiB
of the block before it, and ended with a sync flush (the last one with a finish), so
the concatenation is one deflate stream.  A fresh compressor per block is what makes
the output independent of the thread count: zlib-ng's threaded writer reuses one
compressor per thread and its level-6 output changes with the number of threads.
The header carries no name and no time.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

BLOCK_SIZE = 1 << 20
WINDOW = 32 * 1024


def _deflate(block: bytes, zdict: bytes, level: int, last: bool) -> bytes:
    if zdict:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=zdict)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(block) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzipWriter(io.RawIOBase):
    """Write-only gzip stream onto ``raw`` (anything with ``write``)."""

    def __init__(self, raw: Any, level: int, threads: int, block_size: int = BLOCK_SIZE) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level {level} is not in 0-9")
        self.raw = raw
        self.level = level
        self.block_size = block_size
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="pgzip")
        self.pending: deque[Future[bytes]] = deque()
        self.buffer = bytearray()
        self.previous = b""
        self.crc = 0
        self.size = 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        # magic, deflate, no flags, mtime 0, extra flags, OS unknown (as ISA-L writes it)
        raw.write(struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0, 0, xfl, 0xFF))

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self.size += len(view)
        self.buffer += view
        while len(self.buffer) > self.block_size:
            block = bytes(self.buffer[: self.block_size])
            del self.buffer[: self.block_size]
            self._submit(block, last=False)
        return len(view)

    def _submit(self, block: bytes, *, last: bool) -> None:
        zdict = self.previous[-WINDOW:]
        self.previous = block
        self.pending.append(self.pool.submit(_deflate, block, zdict, self.level, last))
        # keep at most two blocks per thread in flight: memory stays bounded
        while len(self.pending) > 2 * self.threads or (last and self.pending):
            self.raw.write(self.pending.popleft().result())

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._submit(bytes(self.buffer), last=True)
            self.buffer.clear()
            self.raw.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        finally:
            self.abort()
            super().close()

    def abort(self) -> None:
        """Stop the workers without writing the rest (the caller discards the file)."""
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)
