"""A file's sha256, the one place it is computed (archives, caches, locks, publish).

``sha256_of`` reads an open file (a remote one through fsspec, say); ``sha256_file``
opens a local path.  Hashing bytes while they are copied elsewhere (a download)
stays with the copy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 4 << 20


def sha256_file(path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> str:
    """The file's sha256, read in chunks; ``progress`` gets the bytes read so far."""
    with open(path, "rb") as fh:
        return sha256_of(fh, progress)


def sha256_of(fh: BinaryIO, progress: Callable[[int], None] | None = None) -> str:
    """The sha256 of what is left to read from ``fh``, read in chunks."""
    digest = hashlib.sha256()
    done = 0
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
        if progress is not None:
            done += len(chunk)
            progress(done)
    return digest.hexdigest()
