"""Benchmark: `bundler pack --prefix` (executor default and --full) against conda-pack's CLI.

Builds one realistic prefix (python and pip from the test suite's local conda channel,
numpy, pandas and pyarrow locked from PyPI, pyspark installed on top), then, ROUNDS
times and alternating between the tools, packs it with each and unpacks each archive
the way Hadoop and Spark do (`gzip -dc ARCHIVE | tar -x`), onto disk (the work
directory) and into memory (/dev/shm, as a Kubernetes emptyDir with medium Memory).
Prints the medians of wall time, the archive sizes and the ratios against conda-pack,
which runs with its defaults (gzip level 4, one thread).

Unpacking onto disk measures the file system's inode allocator too.  ext4 without a
journal (this kind of VM's root) skips inodes freed in the last minutes when it creates
files, walking past each one, so unpacking next to a tree deleted a moment ago costs
several seconds of kernel time that the archive has no part in.  Executors unpack into
new container directories, not over freshly deleted ones, so the disk trees stay until
the end of the run; the memory ones (tmpfs, no such rule) go at once.  Inodes freed
shortly before the run (a pip install, an earlier bench) can still slow its first
round; the median over rounds absorbs that.

    python bench/pack.py [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import du, quiet_disk, timed, unpack_seconds  # noqa: E402
from bundler.build import build_prefix  # noqa: E402
from bundler.solve.lock import LockOptions, lock_variants  # noqa: E402
from bundler.variants import load_workspace  # noqa: E402
from tests.support.channel import cached_local_channel  # noqa: E402
from tests.support.workspace import write  # noqa: E402

ENV = """\
channels:
  - {channel}
dependencies:
  - python 3.11.*
  - pip
  - six
  - pip:
      - numpy>=2,<3
      - pandas>=3,<3.1
      - pyarrow>=18
"""


def make_prefix(work: Path) -> Path:
    prefix = work / "prefix" / ("p" * 80)
    if any(prefix.glob("lib/python3.*/site-packages/pyspark-*.dist-info")):
        return prefix  # complete, from an earlier run with the same --keep DIR
    channel = cached_local_channel()
    ws = work / "ws"
    write(ws / "environments/variants.toml", '[variants.base]\nfiles = ["base.yml"]\n')
    write(ws / "environments/base.yml", ENV.format(channel=channel.as_uri()))
    workspace = load_workspace(ws)
    lock_variants(workspace, LockOptions(variants=("base",)))
    build_prefix(workspace.get("base"), "linux-64", prefix)
    pyspark = importlib.metadata.version("pyspark")
    subprocess.run(
        [str(prefix / "bin/python"), "-m", "pip", "install", "--quiet", f"pyspark=={pyspark}"],
        check=True,
    )
    return prefix


TOOLS = ("conda-pack", "bundler --full", "bundler")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the prefix and archives here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bundler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    memory = Path("/dev/shm")
    places = {"disk": Path(tempfile.mkdtemp(prefix="unpacked-", dir=work))}
    if memory.is_dir() and os.access(memory, os.W_OK):
        places["memory"] = Path(tempfile.mkdtemp(prefix="bundler-bench-", dir=memory))
    try:
        print("building the prefix (python, pip, numpy, pandas, pyarrow, pyspark)...", flush=True)
        prefix = make_prefix(work)
        bindir = Path(sys.executable).parent
        bundler = [sys.executable, "-m", "bundler", "pack", "--prefix", str(prefix), "-q"]
        commands = {
            "conda-pack": [str(bindir / "conda-pack"), "-p", str(prefix), "-q", "-o"],
            "bundler --full": [*bundler, "--full", "-o"],
            "bundler": [*bundler, "-o"],
        }
        pack: dict[str, list[float]] = {t: [] for t in TOOLS}
        unpack: dict[str, dict[str, list[float]]] = {p: {t: [] for t in TOOLS} for p in places}
        sizes: dict[str, int] = {}
        for i in range(args.rounds):
            order = TOOLS if i % 2 == 0 else TOOLS[::-1]  # alternate who goes first
            for tool in order:
                out = work / f"{tool.replace(' ', '').replace('-', '')}.tar.gz"
                out.unlink(missing_ok=True)
                quiet_disk()
                pack[tool].append(timed([*commands[tool], str(out)]))
                sizes[tool] = out.stat().st_size
                for place, dest in places.items():
                    tree = dest / f"{i}-{out.name}"
                    unpack[place][tool].append(unpack_seconds(out, tree, keep=place == "disk"))
            print(
                f"round {i + 1}: "
                + ", ".join(
                    f"{t} {pack[t][-1]:.1f}s + "
                    + "/".join(f"{unpack[p][t][-1]:.1f}s" for p in places)
                    for t in TOOLS
                ),
                flush=True,
            )
        report(prefix, args.rounds, pack, unpack, sizes)
    finally:
        for dest in places.values():
            shutil.rmtree(dest, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def report(
    prefix: Path,
    rounds: int,
    pack: dict[str, list[float]],
    unpack: dict[str, dict[str, list[float]]],
    sizes: dict[str, int],
) -> None:
    med_pack = {t: statistics.median(v) for t, v in pack.items()}
    med_unpack = {
        place: {t: statistics.median(v) for t, v in times.items()}
        for place, times in unpack.items()
    }
    mib = 1024 * 1024
    base = "conda-pack"
    print()
    print(
        f"prefix: {du(prefix) / mib:.0f} MiB on disk, {os.cpu_count()} cores, "
        f"{rounds} rounds, median wall time; unpack: gzip -dc | tar -x into "
        + " and ".join(med_unpack)
    )
    print()
    header = "| archive | MiB | bytes vs conda-pack | pack (s) | pack speed-up |"
    rule = "|---|---:|---:|---:|---:|"
    for place in med_unpack:
        header += f" unpack, {place} (s) | speed-up |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for tool in TOOLS:
        row = (
            f"| {tool} | {sizes[tool] / mib:.1f} | {sizes[tool] / sizes[base]:.2f}x "
            f"| {med_pack[tool]:.1f} | {med_pack[base] / med_pack[tool]:.1f}x |"
        )
        for times in med_unpack.values():
            row += f" {times[tool]:.1f} | {times[base] / times[tool]:.1f}x |"
        print(row)
    print()
    goals = [("default archive <= 1/3 of conda-pack's bytes", sizes["bundler"] * 3 <= sizes[base])]
    goals += [
        (
            f"default archive unpacks >= 2.5x faster ({place})",
            times[base] >= 2.5 * times["bundler"],
        )
        for place, times in med_unpack.items()
    ]
    goals += [
        (
            "--full archive <= 1.10x conda-pack's bytes",
            sizes["bundler --full"] <= 1.1 * sizes[base],
        ),
        ("--full packs >= 5x faster", med_pack[base] >= 5 * med_pack["bundler --full"]),
    ]
    for goal, met in goals:
        print(f"goal {'met' if met else 'MISSED'}: {goal}")


if __name__ == "__main__":
    main()
