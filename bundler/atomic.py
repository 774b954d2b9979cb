"""Nothing half-written under a final name, even on Ctrl-C.

Files are written under a temporary name in their final directory and renamed into
place at the end.  Creating the temporary file and the final renames run with
SIGINT/SIGTERM held back, so an interrupt lands either before the temporary file
exists or inside the ``try`` that removes it, never in between.

Only ``kill -9`` leaves a temporary file behind.  Each one is flocked by its writer
while it lives, so the next writer of the same final name removes those that no
process holds (``sweep``).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_HELD = {signal.SIGINT, signal.SIGTERM}
_OWNED: dict[Path, int] = {}  # this process's temporary files -> the descriptor flocking each


@contextmanager
def held_signals() -> Iterator[None]:
    """Defer SIGINT/SIGTERM for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def temp_path(final: Path, created: list[Path], suffix: str = ".part") -> Path:
    """Create an empty temporary file beside ``final``, append it to ``created``, return it.

    Call it inside the ``try`` whose handler discards ``created``: the file is
    registered before an interrupt can be delivered.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep(final, suffix)
    with held_signals():
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)  # alive: sweep leaves it alone
        _OWNED[Path(tmp)] = fd
        created.append(Path(tmp))
    return Path(tmp)


def sweep(final: Path, suffix: str = ".part") -> list[Path]:
    """Remove the temporary files of ``final`` that no live writer holds; return them."""
    name = re.compile(rf"\.{re.escape(final.name)}\.[a-z0-9_]{{8}}{re.escape(suffix)}")
    removed = []
    for path in final.parent.iterdir() if final.parent.is_dir() else ():
        if name.fullmatch(path.name) and _unheld(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _unheld(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its writer is alive
    finally:
        os.close(fd)
    return True


def _release(path: Path) -> None:
    fd = _OWNED.pop(path, None)
    if fd is not None:
        os.close(fd)


def commit(pairs: Sequence[tuple[Path, Path]], mode: int = 0o644) -> None:
    """Rename each temporary file onto its final name, in order, with signals held.

    An interrupt cannot split the group, but it is not a transaction: when a rename
    fails (a directory in the way, an I/O error), the files before it are already in
    place, over whatever they replaced, and the rest are not.  Each file is whole
    either way; the caller discards the temporary files that remain (``discard``).
    ``bundler verify`` tells a new archive beside an older manifest by its sha256.
    """
    with held_signals():
        for tmp, _ in pairs:
            os.chmod(tmp, mode)
        for tmp, final in pairs:
            os.replace(tmp, final)
            _release(tmp)


def discard(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        _release(path)


@contextmanager
def atomic_write(final: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path; on success it becomes ``final``, on any error it goes."""
    created: list[Path] = []
    try:
        tmp = temp_path(final, created)
        yield tmp
        commit([(tmp, final)], mode)
    except BaseException:
        discard(created)
        raise
