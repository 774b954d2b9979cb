"""Building a cache or fixture once when several test processes ask for it at once.

The suite runs under pytest-xdist: each worker process has its own session fixtures,
and test runs of other checkouts may share ``~/.cache/bundler-tests``.  Whatever is
expensive to build goes through :func:`file_lock` (one builder at a time, the others
wait and then find it built) and is never visible half-built: :func:`once_per_run`
marks a fixture done only after it is complete, caches rename a finished temporary
directory into place.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the block.

    ``path`` is a lock file (created if missing) or an existing directory, locked
    itself so that nothing is added to it.  The kernel drops the lock when the holder
    exits, however it exits.
    """
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run_root(factory: pytest.TempPathFactory) -> Path:
    """This run's temporary directory, the same for every xdist worker of the run.

    A worker's base temp is ``<the controller's base temp>/<worker id>``.
    """
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """``<run root>/<name>``, made by ``build(path)`` in whichever worker asks first.

    The others wait on the lock and then use what it made.  The done mark is written
    after ``build`` returns: a worker that failed or died half-way leaves none, and the
    next one to ask starts over on an empty directory.
    """
    root = run_root(factory)
    path = root / name
    done = root / f".{name}.done"
    with file_lock(root / f".{name}.lock"):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            build(path)
            done.touch()
    return path
