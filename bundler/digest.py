"""A file's sha256, the one place it is computed (archives, caches, locks, publish)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

CHUNK = 4 << 20


def sha256_file(path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> str:
    """The file's sha256, read in chunks; ``progress`` gets the bytes read so far."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                done += len(chunk)
                progress(done)
    return digest.hexdigest()
