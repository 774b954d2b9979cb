"""Damaged package-cache entries are found by hash and fetched again, with one warning.

rattler links packages from the extracted directories of its package cache
(``<cache>/pkgs/<name>-<version>-<build>``) and trusts whatever they hold: a truncated
or altered file there would go into every later prefix and archive unnoticed, and so
would a hand-edited sha256 in a lock (rattler records the lock's hash beside a cached
entry without comparing).  Before an install, each entry the lock uses is checked
against the package's own ``info/paths.json`` (size and sha256 of every file) and the
sha256 rattler recorded for it (``<entry>.lock``: an 8-byte revision, then the
package's sha256).  A damaged entry is removed, so rattler extracts it again from its
channel and checks the download against the lock's hash.  An entry found whole is
not hashed again while its files' sizes, mtimes and inodes stay the same (``CHECKED``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bundler.atomic import atomic_write
from bundler.digest import sha256_file
from bundler.errors import BuildError
from bundler.events import Reporter

_REVISION_BYTES = 8


def heal_conda_cache(records: Iterable[Any], pkgs: Path, lock: Path, reporter: Reporter) -> int:
    """Remove the damaged entries of ``records`` (rattler's RepoDataRecord) from ``pkgs``.

    Returns how many were removed; each is reported as one warning.  A package that
    will come from a local (``file://``) channel is checked against the lock's sha256
    here, since rattler extracts local files without: BuildError naming the package.
    """
    records = list(records)
    healed = _evict_damaged(records, pkgs, reporter)
    for record in records:
        _check_local_source(record, _entry(pkgs, record), lock)
    return healed


def _check_local_source(record: Any, entry: Path, lock: Path) -> None:
    url = urlparse(record.url)
    if entry.is_dir() or url.scheme != "file" or not record.sha256:
        return
    source = Path(unquote(url.path))
    try:
        actual = sha256_file(source)
    except OSError:
        return  # missing: rattler's own error names it
    if actual != record.sha256.hex():
        raise BuildError(
            f"{lock}: package {record.name.normalized}: its sha256 does not match {source}",
            "the lock was edited or the channel's file changed; run 'bundler lock' again",
        )


def _evict_damaged(records: list[Any], pkgs: Path, reporter: Reporter) -> int:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(lambda r: entry_problem(_entry(pkgs, r), r.sha256), records))
    healed = 0
    for record, problem in zip(records, problems, strict=True):
        if problem is None:
            continue
        entry = _entry(pkgs, record)
        reporter.warn(
            f"package cache: {entry} {problem}; removed, extracting {record.file_name} again"
        )
        evict(entry)
        healed += 1
    return healed


def _entry(pkgs: Path, record: Any) -> Path:
    return pkgs / f"{record.name.normalized}-{record.version}-{record.build}"


def entry_problem(entry: Path, sha256: bytes | None) -> str | None:
    """What is wrong with the extracted package ``entry``, or None (absent is not wrong)."""
    if not entry.is_dir():
        return None
    recorded = _recorded_sha256(entry)
    if sha256 and recorded and recorded != sha256:
        return "holds another package than the lock names (sha256 differs)"
    try:
        paths = json.loads((entry / "info" / "paths.json").read_bytes())["paths"]
    except (OSError, ValueError, KeyError, TypeError):
        return "has no readable info/paths.json"
    stamp, checked = _stamp(entry, paths), entry.parent / CHECKED / entry.name
    if stamp is not None and _read(checked) == stamp:
        return None  # hashed before, and no file changed since
    for item in paths:
        problem = _path_problem(entry, item)
        if problem is not None:
            return problem
    if stamp is not None:
        with contextlib.suppress(OSError):  # a read-only cache is checked every time
            checked.parent.mkdir(exist_ok=True)
            with atomic_write(checked) as tmp:
                tmp.write_text(stamp)
    return None


#: Beside the entries: for each entry hashed and found whole, the fingerprint of its
#: files' metadata (size, mtime, inode) at that time.  An entry whose fingerprint is
#: unchanged is not hashed again: truncating or rewriting a file changes it.
CHECKED = ".bundler-checked"


def _stamp(entry: Path, paths: list[dict[str, Any]]) -> str | None:
    digest = hashlib.sha256()
    for item in paths:
        rel = str(item.get("_path", ""))
        try:
            st = os.lstat(entry / rel)
        except OSError:
            return None
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _recorded_sha256(entry: Path) -> bytes | None:
    try:
        data = entry.with_name(entry.name + ".lock").read_bytes()
    except OSError:
        return None
    return data[_REVISION_BYTES:] if len(data) == _REVISION_BYTES + 32 else None


def _path_problem(entry: Path, item: dict[str, Any]) -> str | None:
    rel = str(item.get("_path", ""))
    path = entry / rel
    if item.get("path_type") == "softlink":
        return None if os.path.lexists(path) else f"lacks {rel}"
    try:
        size = os.lstat(path).st_size
    except OSError:
        return f"lacks {rel}"
    want = item.get("size_in_bytes")
    if want is not None and size != want:
        return f"has {rel} with {size} bytes instead of {want}"
    sha = item.get("sha256")
    if sha and sha256_file(path) != sha:
        return f"has {rel} altered (sha256 differs)"
    return None


def file_matches(path: Path, sha256: str) -> bool:
    """Whether the cached file ``path`` has this sha256 (hashed again only if it changed).

    The last match is remembered beside it (``.NAME.checked``: the hash, size, mtime and
    inode), so a wheel cache of gigabytes is not read whole on every build.
    """
    st = os.stat(path)
    seen = f"{sha256} {st.st_size} {st.st_mtime_ns} {st.st_ino}"
    checked = path.with_name(f".{path.name}.checked")
    if _read(checked) == seen:
        return True
    if sha256_file(path) != sha256:
        checked.unlink(missing_ok=True)
        return False
    with contextlib.suppress(OSError), atomic_write(checked) as tmp:
        tmp.write_text(seen)
    return True


def evict(entry: Path) -> None:
    """Remove a cache entry and rattler's record of it, holding rattler's lock on it."""
    lock = entry.with_name(entry.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        doomed = entry.with_name(f".{entry.name}.removed-{os.getpid()}")
        os.replace(entry, doomed)
        lock.unlink(missing_ok=True)
        shutil.rmtree(doomed, ignore_errors=True)
    finally:
        if fd is not None:
            os.close(fd)
