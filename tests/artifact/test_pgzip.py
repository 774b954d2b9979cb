"""bundler.artifact.pgzip: the threaded gzip writer behind --level 4-9."""

from __future__ import annotations

import gzip
import hashlib
import io
import random

import pytest

from bundler.artifact.pgzip import ParallelGzipWriter


def _data() -> bytes:
    rng = random.Random(7)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 9))) for _ in range(500)]
    text = b" ".join(rng.choice(words) for _ in range(400_000))
    return text + rng.randbytes(300_000) + text[:200_000]


def _gzip(data: bytes, level: int, threads: int, chunk: int = 10_000) -> bytes:
    out = io.BytesIO()
    writer = ParallelGzipWriter(out, level, threads, block_size=64 * 1024)
    for i in range(0, len(data), chunk):
        writer.write(data[i : i + chunk])
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("level", [4, 6, 9])
def test_same_bytes_for_any_thread_count_and_write_size(level: int) -> None:
    data = _data()
    outs = {
        hashlib.sha256(_gzip(data, level, threads, chunk)).hexdigest()
        for threads, chunk in ((1, 10_000), (2, 777), (8, 1 << 20))
    }
    assert len(outs) == 1
    packed = _gzip(data, level, 3)
    assert gzip.decompress(packed) == data
    assert packed[:2] == b"\x1f\x8b" and packed[4:8] == b"\0\0\0\0"  # no time


def test_higher_levels_are_smaller_and_empty_input_is_valid() -> None:
    data = _data()
    assert len(_gzip(data, 9, 2)) < len(_gzip(data, 4, 2)) < len(data)
    assert gzip.decompress(_gzip(b"", 6, 2)) == b""


def test_level_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="not in 0-9"):
        ParallelGzipWriter(io.BytesIO(), 10, 1)
