"""A real RAPIDS environment: python from the local channel, cudf and cuml 26.10 wheels.

NVIDIA publishes RAPIDS for CUDA 12 as PyPI wheels (``cudf-cu12``, ``cuml-cu12`` and the
``libcudf``, ``librmm``, ``nvidia-*-cu12`` libraries they pull): 3.6 GB of wheels, 6.5 GB
and about 35,000 files installed.  That is the size GPU users ship, and where bundler
behaves differently from the probe packages (memory, linkage through ``dlopen``, unpack
time), so the suite locks, builds, packs and verifies it for real.

The wheels land in bundler's wheel cache (``bundler_cache``, shared between runs), so a
machine downloads them once.  One prefix is built per run and shared by every test
that needs it (``rapids_prefix``); each archive format is packed from it once per run
(``rapids_archive``).  All of it lives in directories of the run that the controller
removes when the run ends (see ``remove_rapids``): it holds about 25 GB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.shared import once_per_run, run_root
from tests.support.workspace import write

VARIANT = "rapids"
PREFIX = "rapids-"  # names of this run's RAPIDS directories

VARIANTS = """\
[variants.rapids]
description = "python from the test channel, RAPIDS 26.10 for CUDA 12 from PyPI wheels"
files = ["base.yml", "rapids.yml"]
imports = ["numpy", "pandas", "pyarrow"]
gpu_imports = ["cudf", "cuml"]
"""

BASE = """\
channels:
  - {channel}
dependencies:
  - python 3.11.*
  - pip
"""

RAPIDS = """\
dependencies:
  - pip:
      - cudf-cu12==26.10.*
      - cuml-cu12==26.10.*
"""


def make_rapids_workspace(root: Path, channel: Path) -> Path:
    """A workspace whose one variant, ``rapids``, takes RAPIDS from pip wheels."""
    write(root / "environments/variants.toml", VARIANTS)
    write(root / "environments/base.yml", BASE.format(channel=channel.as_uri()))
    write(root / "environments/rapids.yml", RAPIDS)
    (root / "locks").mkdir(parents=True, exist_ok=True)
    return root


def bundler(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The ``bundler`` command as a user runs it (this interpreter's console script)."""
    exe = Path(sys.executable).parent / "bundler"
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=1500
    )


def lock_rapids(root: Path, channel: Path) -> Path:
    """``bundler lock rapids`` in a new workspace under ``root``."""
    make_rapids_workspace(root, channel)
    proc = bundler("lock", VARIANT, "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "lock.json").write_text(proc.stdout)  # what the tests read of the lock run
    return root


def build_rapids(workspace: Path, prefix: Path) -> Path:
    """The locked ``rapids`` variant installed at ``prefix`` (rattler, then pip wheels)."""
    from bundler.build import build_prefix
    from bundler.variants import load_workspace

    variant = load_workspace(workspace).get(VARIANT)
    build_prefix(variant, "linux-64", prefix)
    return prefix


def pack_rapids(prefix: Path, output: Path, *extra: str) -> dict[str, Any]:
    """``bundler pack --prefix PREFIX -o OUTPUT --json``: its JSON result, with the pack
    process's own peak resident memory in bytes as ``peak_rss`` (``ru_maxrss``)."""
    exe = Path(sys.executable).parent / "bundler"
    cmd = [str(exe), "pack", "--prefix", str(prefix), "-o", str(output), "--json", *extra]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # not proc.wait(): wait4 gives the rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        assert proc.returncode == 0, err.read()[-3000:]
    result: dict[str, Any] = json.loads(out)
    result["peak_rss"] = usage.ru_maxrss * 1024
    return result


@pytest.fixture(scope="session")
def rapids_workspace(local_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RAPIDS workspace, locked by ``bundler lock rapids`` once per run (read-only)."""
    return once_per_run(
        tmp_path_factory, f"{PREFIX}ws", lambda root: lock_rapids(root, local_channel)
    )


@pytest.fixture(scope="session")
def rapids_prefix(rapids_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``rapids`` lock built once per run, shared by the xdist workers (read-only)."""
    env = once_per_run(
        tmp_path_factory, f"{PREFIX}env", lambda d: build_rapids(rapids_workspace, d / "p")
    )
    return env / "p"


def rapids_archive(
    factory: pytest.TempPathFactory, prefix: Path, filename: str, *extra: str
) -> tuple[Path, dict[str, Any]]:
    """``prefix`` packed to ``filename`` once per run: (path, ``bundler pack --json``)."""
    name = PREFIX + "".join(c if c.isalnum() else "_" for c in filename + "".join(extra))

    def pack(dest: Path) -> None:
        result = pack_rapids(prefix, dest / filename, *extra)
        (dest / "result.json").write_text(json.dumps(result))

    dest = once_per_run(factory, name, pack)
    return dest / filename, json.loads((dest / "result.json").read_text())


def remove_rapids(factory: pytest.TempPathFactory) -> None:
    """Remove this run's RAPIDS directory (prefix and archives); the controller calls it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    root = run_root(factory)
    for path in root.glob(f"{PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    for mark in root.glob(f".{PREFIX}*"):
        mark.unlink(missing_ok=True)
