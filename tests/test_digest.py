"""bundler.digest: a file's sha256, the one place it is computed."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from bundler import digest
from bundler.digest import sha256_file, sha256_of


def test_a_file_is_hashed_in_chunks_with_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 41  # 10,496 bytes: three chunks of 4,096 below
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    monkeypatch.setattr(digest, "CHUNK", 4096)
    seen: list[int] = []
    assert sha256_file(path, seen.append) == hashlib.sha256(data).hexdigest()
    assert seen == [4096, 8192, len(data)]


def test_an_open_file_is_hashed_from_where_it_stands() -> None:
    fh = io.BytesIO(b"headerpayload")
    fh.seek(len(b"header"))
    assert sha256_of(fh) == hashlib.sha256(b"payload").hexdigest()
