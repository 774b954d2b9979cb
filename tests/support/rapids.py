"""A real RAPIDS environment: python from the local channel, cudf and cuml 26.10 wheels.

NVIDIA publishes RAPIDS for CUDA 12 as PyPI wheels (``cudf-cu12``, ``cuml-cu12`` and the
``libcudf``, ``librmm``, ``nvidia-*-cu12`` libraries they pull): 3.6 GB of wheels, 6.5 GB
and about 35,000 files installed.  That is the size GPU users ship, and where bundler
behaves differently from the probe packages (memory, linkage through ``dlopen``, unpack
time), so the suite locks, builds, packs and verifies it for real.

The wheels land in bundler's wheel cache (``bundler_cache``, shared between runs), so a
machine downloads them once.  ``tests/test_rapids.py`` runs in one xdist worker
(tests/support/scheduling.py): one prefix is built for the module (``rapids_prefix``)
and each archive is packed from it for one test class (``rapids_archive``) and removed
after it, so the disk holds the 6.5 GB prefix, one archive and what a test unpacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import write

VARIANT = "rapids"

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
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=1500)


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


@pytest.fixture(scope="module")
def rapids_workspace(local_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RAPIDS workspace, locked by ``bundler lock rapids`` (read-only)."""
    return lock_rapids(tmp_path_factory.mktemp("rapids-ws"), local_channel)


@pytest.fixture(scope="module")
def rapids_prefix(
    rapids_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The ``rapids`` lock built once for the module (read-only), removed after it."""
    root = tmp_path_factory.mktemp("rapids-env")
    yield build_rapids(rapids_workspace, root / "p")
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def rapids_archive(
    factory: pytest.TempPathFactory, prefix: Path, filename: str, *extra: str
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``prefix`` packed to ``filename``: (path, ``bundler pack --json``), removed after."""
    root = factory.mktemp("rapids-archive")
    try:
        yield root / filename, pack_rapids(prefix, root / filename, *extra)
    finally:
        shutil.rmtree(root, ignore_errors=True)
