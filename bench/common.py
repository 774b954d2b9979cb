"""What the benchmarks share: timing a command, its peak memory, unpacking as executors do."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    seconds: float  # wall time
    peak_rss: int  # bytes, the command's own process (ru_maxrss)


def measured(cmd: list[str]) -> Run:
    """Run ``cmd`` (output discarded); its wall time and peak resident memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"$ {shlex.join(cmd)}\nexit {proc.returncode}\n{err.decode()[-2000:]}")
    return Run(seconds, usage.ru_maxrss * 1024)


def timed(cmd: list[str] | str) -> float:
    """Wall time of ``cmd`` (a shell line when a string), output discarded."""
    start = time.perf_counter()
    subprocess.run(
        cmd,
        check=True,
        shell=isinstance(cmd, str),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def quiet_disk() -> None:
    """Write back what earlier steps left dirty, so no tool pays for another's writes."""
    os.sync()


def unpack_line(archive: Path, dest: Path) -> str:
    """The shell line an executor's localizer runs for ``archive`` (Hadoop's rules)."""
    a, d = shlex.quote(str(archive)), shlex.quote(str(dest))
    if archive.name.endswith(".tar"):
        return f"tar -xf {a} -C {d}"  # YARN's FileUtil.unTar on Linux
    return f"gzip -dc {a} | tar -x -C {d}"


def unpack_seconds(archive: Path, dest: Path, keep: bool) -> float:
    """Wall time of unpacking ``archive`` into the new directory ``dest``.

    Without ``keep`` the tree is removed afterwards; with it, the caller removes it
    once nothing more is timed (ext4 without a journal skips inodes freed moments ago,
    which would charge one tool for another's deletions).
    """
    dest.mkdir(parents=True)
    quiet_disk()
    seconds = timed(unpack_line(archive, dest))
    if not keep:
        shutil.rmtree(dest)
    return seconds
