"""Benchmark: `bundler pack --prefix` against conda-pack's own CLI on the same prefix.

Builds one realistic prefix (python and pip from the test suite's local conda channel,
numpy, pandas and pyarrow locked from PyPI, pyspark installed on top), then packs it
ROUNDS times with each tool, interleaved, and prints median wall time, archive size
and the ratios.  conda-pack runs with its defaults (gzip level 4, one thread).

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bundler.build import build_prefix  # noqa: E402
from bundler.lock import LockOptions, lock_variants  # noqa: E402
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
      - pandas>=2.2
      - pyarrow>=18
"""


def make_prefix(work: Path) -> Path:
    channel = cached_local_channel()
    ws = work / "ws"
    write(ws / "environments/variants.toml", '[variants.base]\nfiles = ["base.yml"]\n')
    write(ws / "environments/base.yml", ENV.format(channel=channel.as_uri()))
    workspace = load_workspace(ws)
    lock_variants(workspace, LockOptions(variants=("base",)))
    prefix = work / "prefix" / ("p" * 80)
    build_prefix(workspace.get("base"), "linux-64", prefix)
    pyspark = importlib.metadata.version("pyspark")
    subprocess.run(
        [str(prefix / "bin/python"), "-m", "pip", "install", "--quiet", f"pyspark=={pyspark}"],
        check=True,
    )
    return prefix


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the prefix and archives here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bundler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print("building the prefix (python, pip, numpy, pandas, pyarrow, pyspark)...", flush=True)
        prefix = make_prefix(work)
        bindir = Path(sys.executable).parent
        bundler = [sys.executable, "-m", "bundler", "pack", "--prefix", str(prefix), "-q", "-o"]
        conda_pack = [str(bindir / "conda-pack"), "-p", str(prefix), "-q", "-o"]
        times: dict[str, list[float]] = {"bundler": [], "conda-pack": []}
        sizes: dict[str, int] = {}
        for i in range(args.rounds):
            for tool, cmd in (("bundler", bundler), ("conda-pack", conda_pack)):
                out = work / f"{tool}-{i}.tar.gz"
                out.unlink(missing_ok=True)
                times[tool].append(timed([*cmd, str(out)]))
                sizes[tool] = out.stat().st_size
                if i < args.rounds - 1:
                    out.unlink()
            print(
                f"round {i + 1}: bundler {times['bundler'][-1]:.1f}s, "
                f"conda-pack {times['conda-pack'][-1]:.1f}s",
                flush=True,
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        mib = 1024 * 1024
        print()
        print(
            f"prefix: {du(prefix) / mib:.0f} MiB on disk, {os.cpu_count()} cores, "
            f"{args.rounds} rounds, median wall time"
        )
        print()
        print("| tool | median time (s) | archive (MiB) |")
        print("|---|---:|---:|")
        for tool in ("conda-pack", "bundler"):
            print(f"| {tool} | {med[tool]:.1f} | {sizes[tool] / mib:.1f} |")
        print()
        print(f"speed-up: {med['conda-pack'] / med['bundler']:.2f}x faster")
        print(f"size ratio (bundler / conda-pack): {sizes['bundler'] / sizes['conda-pack']:.3f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
