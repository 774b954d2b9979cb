"""Benchmark at GPU scale: a real RAPIDS prefix packed by conda-pack's CLI and by bundler.

The prefix is what GPU users ship: python from the test suite's local conda channel plus
cudf-cu12 and cuml-cu12 26.10 with their ``nvidia-*-cu12`` libraries from PyPI (6.5 GB,
about 35,000 files).  It is locked and built as the test suite does it
(``tests/support/rapids.py``), or taken from ``--prefix``.

Each archive is packed once (they take minutes; run the script again for another
sample) and unpacked onto disk the way an executor's localizer does it: ``gzip -dc |
tar -x`` for ``.tar.gz`` (Hadoop and Spark), ``tar -xf`` for ``.tar`` (YARN's
NodeManager), into a new directory.  The unpacked trees stay until the end when the
disk has room for all of them (ext4 without a journal skips inodes freed moments ago
when it creates files, which would charge one tool for another's deletion); otherwise
each goes right after its unpack, and only bundler's unpacks follow a deletion, since
conda-pack goes first.  A ``.zip`` is packed for its time and size only: executors
inflate it in Java, which this script does not imitate.  Peak memory is the packing process's own
maximum resident set (``ru_maxrss``).  conda-pack runs with its defaults (gzip level 4,
one thread).

    python bench/rapids.py [--keep DIR] [--prefix PREFIX]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Run, du, measured, quiet_disk, unpack_seconds  # noqa: E402
from tests.support.channel import cached_local_channel  # noqa: E402
from tests.support.rapids import build_rapids, lock_rapids  # noqa: E402

MIB = 1024 * 1024


@dataclass(frozen=True)
class Tool:
    name: str
    output: str  # file name of its archive
    args: tuple[str, ...]  # bundler pack options; () with conda=True
    conda: bool = False
    unpack: bool = True


TOOLS = (
    Tool("conda-pack", "condapack.tar.gz", (), conda=True),
    Tool("bundler --full", "full.tar.gz", ("--full",)),
    Tool("bundler (executor)", "executor.tar.gz", ()),
    Tool("bundler .tar (executor)", "executor.tar", ()),
    Tool("bundler .zip (executor)", "executor.zip", (), unpack=False),
)


@dataclass(frozen=True)
class Result:
    tool: Tool
    size: int
    pack: Run
    unpack: float | None


def make_prefix(work: Path) -> Path:
    prefix = work / "prefix" / "rapids"
    if any(prefix.glob("lib/python3.*/site-packages/cuml*.dist-info")):
        return prefix  # complete, from an earlier run with the same --keep DIR
    shutil.rmtree(prefix, ignore_errors=True)
    ws = lock_rapids(work / "ws", cached_local_channel())
    return build_rapids(ws, prefix)


def run_tool(tool: Tool, prefix: Path, work: Path, unpacked: Path, keep: bool) -> Result:
    out = work / tool.output
    out.unlink(missing_ok=True)
    if tool.conda:
        cmd = [str(Path(sys.executable).parent / "conda-pack"), "-p", str(prefix), "-q", "-o"]
    else:
        cmd = [sys.executable, "-m", "bundler", "pack", "--prefix", str(prefix), "-q", *tool.args]
        cmd.append("-o")
    quiet_disk()
    run = measured([*cmd, str(out)])
    size = out.stat().st_size
    seconds = unpack_seconds(out, unpacked / tool.output, keep=keep) if tool.unpack else None
    out.unlink()
    return Result(tool, size, run, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the built prefix here for later runs")
    parser.add_argument("--prefix", type=Path, help="an existing RAPIDS prefix to pack")
    parser.add_argument("--only", action="append", help="run only these tools (by name)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bundler-bench-rapids-"))
    work.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix="unpacked-", dir=work))
    try:
        print("building the RAPIDS prefix (cudf-cu12, cuml-cu12 26.10)...", flush=True)
        prefix = args.prefix or make_prefix(work)
        # every unpacked tree, the largest archive and some room to spare
        keep = shutil.disk_usage(work).free > (len(TOOLS) + 2) * du(prefix)
        results = []
        for tool in TOOLS:
            if args.only and tool.name not in args.only:
                continue
            result = run_tool(tool, prefix, work, unpacked, keep)
            print(
                f"{tool.name}: {result.size / MIB:.0f} MiB, pack {result.pack.seconds:.1f}s "
                f"({result.pack.peak_rss / MIB:.0f} MiB peak), unpack "
                + (f"{result.unpack:.1f}s" if result.unpack is not None else "-"),
                flush=True,
            )
            results.append(result)
        report(prefix, results)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def report(prefix: Path, results: list[Result]) -> None:
    files = sum(1 for _ in prefix.rglob("*"))
    print()
    print(f"prefix: {du(prefix) / MIB:.0f} MiB in {files} entries, {os.cpu_count()} cores")
    print()
    by_name = {r.tool.name: r for r in results}
    base = by_name.get("conda-pack")
    print(
        "| archive | MiB | bytes vs conda-pack | pack (s) | pack speed-up | pack peak RSS (MiB) "
        "| unpack onto disk (s) | unpack speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = f"{r.size / base.size:.2f}x" if base else "-"
        speed = f"{base.pack.seconds / r.pack.seconds:.1f}x" if base else "-"
        unpack = f"{r.unpack:.1f}" if r.unpack is not None else "-"
        faster = (
            f"{base.unpack / r.unpack:.1f}x"
            if base and base.unpack and r.unpack is not None
            else "-"
        )
        print(
            f"| {r.tool.name} | {r.size / MIB:.0f} | {ratio} | {r.pack.seconds:.1f} | {speed} "
            f"| {r.pack.peak_rss / MIB:.0f} | {unpack} | {faster} |"
        )
    print()
    for goal, met in goals(by_name):
        print(f"goal {'met' if met else 'MISSED'}: {goal}")


def goals(by_name: dict[str, Result]) -> list[tuple[str, bool]]:
    base, full = by_name.get("conda-pack"), by_name.get("bundler --full")
    tar = by_name.get("bundler .tar (executor)")
    out = []
    if base and full:
        out.append(("--full packs >= 6x faster", base.pack.seconds >= 6 * full.pack.seconds))
        out.append(("--full archive <= 1.06x conda-pack's bytes", full.size <= 1.06 * base.size))
    if base and base.unpack and tar and tar.unpack:
        out.append(("executor .tar unpacks >= 2.5x faster", base.unpack >= 2.5 * tar.unpack))
    bundlers = [r for r in by_name.values() if not r.tool.conda]
    if bundlers:
        peak = max(r.pack.peak_rss for r in bundlers)
        out.append((f"bundler's pack peak RSS <= 256 MiB ({peak / MIB:.0f})", peak <= 256 * MIB))
    return out


if __name__ == "__main__":
    main()
