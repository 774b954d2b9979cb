"""RAPIDS at the size GPU users ship: cudf and cuml 26.10 for CUDA 12, 6.5 GB.

The ``rapids`` workspace (tests/support/rapids.py) takes python from the local channel
and RAPIDS from NVIDIA's PyPI wheels; ``bundler lock`` resolves them, one prefix is
built per run, and each archive format is packed from it once.  These tests prove what
the probe packages cannot: that the lock holds the CUDA wheels, that the executor
archive keeps what CUDA code links, that verify's verdict on a real GPU environment is
true in both directions, and that executors run cudf from the zip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.rapids import bundler, rapids_archive
from tests.support.sparkenv import submit

pytestmark = [pytest.mark.integration, pytest.mark.rapids]


@pytest.fixture(scope="session")
def rapids_executor(
    rapids_prefix: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    return rapids_archive(tmp_path_factory, rapids_prefix, "rapids.tar.gz")


@pytest.fixture(scope="session")
def rapids_zip(
    rapids_prefix: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    return rapids_archive(tmp_path_factory, rapids_prefix, "rapids.zip")


def lock_packages(workspace: Path) -> dict[str, Any]:
    from conda_lock.lockfile import parse_conda_lock_file

    lock = parse_conda_lock_file(workspace / "locks/rapids.conda-lock.yml")
    return {p.name: p for p in lock.package}


def verify(archive: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = bundler("verify", str(archive), "--json", *args)
    assert proc.stdout, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def test_lock_takes_rapids_from_pip_wheels(rapids_workspace: Path) -> None:
    packages = lock_packages(rapids_workspace)
    assert packages["python"].manager == "conda"
    assert packages["python"].version.startswith("3.11")
    for name in ("cudf-cu12", "cuml-cu12"):
        assert packages[name].manager == "pip"
        assert packages[name].version.startswith("26.10."), packages[name].version
    cuda_libs = [n for n in packages if n.startswith("nvidia-") and n.endswith("-cu12")]
    assert "nvidia-cublas-cu12" in cuda_libs, sorted(packages)
    for pkg in packages.values():
        if pkg.manager == "pip":
            assert pkg.url.endswith(".whl"), (pkg.name, pkg.url)
            assert len(pkg.hash.sha256 or "") == 64, pkg.name
    # pandas comes in with cudf (3.0, which Spark 4.3 supports), once, from pip
    assert packages["pandas"].version.startswith("3.0."), packages["pandas"].version


def test_executor_archive_keeps_what_cuda_links(
    rapids_executor: tuple[Path, dict[str, Any]],
) -> None:
    path, result = rapids_executor
    names = subprocess.run(
        f"gzip -dc '{path}' | tar -t", shell=True, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    site = "lib/python3.11/site-packages/"
    # numba-cuda links these when it compiles device code: an executor needs them
    for kept in ("nvidia/cuda_runtime/lib/libcudadevrt.a",):
        assert any(n.endswith(site + kept) for n in names), kept
    assert any(n.endswith(site + "libcudf/lib64/libcudf.so") for n in names)
    assert not any("/pyspark/" in n for n in names)
    assert result["kind"] == "executor"


def test_pack_memory_does_not_grow_with_the_environment(
    rapids_executor: tuple[Path, dict[str, Any]], rapids_zip: tuple[Path, dict[str, Any]]
) -> None:
    """6.5 GB in, libraries of several hundred MB each: packing stays within 256 MiB."""
    for path, result in (rapids_executor, rapids_zip):
        assert result["size"] > 2 * 1024**3, (path, result["size"])
        assert result["peak_rss"] <= 256 * 1024**2, (path.name, result["peak_rss"])


def test_zip_runs_cudf_on_executors(
    spark_env: SimpleNamespace, rapids_zip: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Hadoop's Java unzip inflates the 4 GB zip; tasks import cudf from ./env."""
    path, _ = rapids_zip
    modules = ["pandas", "pyarrow", "cudf"]
    args = [
        "--master",
        "local-cluster[1,1,1024]",
        "--archives",
        f"{path}#env",
        "--conf",
        "spark.pyspark.python=./env/bin/python",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
    ]
    rows = submit(spark_env, tmp_path, args, modules)
    assert len(rows) == 8
    for row in rows:
        env = (Path(row["cwd"]) / "env").resolve()
        assert Path(row["executable"]).resolve().is_relative_to(env), row
        for module, file in row["files"].items():
            assert Path(file).resolve().is_relative_to(env), (module, file)
