"""RAPIDS at the size GPU users ship: cudf and cuml 26.10 for CUDA 12, 6.5 GB.

The ``rapids`` workspace (tests/support/rapids.py) takes python from the local channel
and RAPIDS from NVIDIA's PyPI wheels; ``bundler lock`` resolves them and one prefix is
built for the module.  Each class packs one archive from it and removes it afterwards
(the module runs in one xdist worker, in file order), so the disk holds the prefix, one
archive and what a test unpacks.  These tests prove what the probe packages cannot:
that the lock holds the CUDA wheels, that packing stays within a fixed memory, that the
executor archive keeps what CUDA code links, that verify's verdict on a real GPU
environment is true in both directions, that YARN's ``tar -xf`` of a ``.tar`` runs
cudf, and that Spark executors run cudf from the ``.zip``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.rapids import RAPIDS, bundler, rapids_archive
from tests.support.readme import README
from tests.support.sparkenv import submit

pytestmark = [pytest.mark.integration, pytest.mark.rapids]

Archive = tuple[Path, dict[str, Any]]  # the archive and `bundler pack --json`'s result

SITE = "lib/python3.11/site-packages/"
#: An archive packed with --prefix has no variant: verify is told what to import.
IMPORTS = ("--import", "numpy", "--import", "pandas", "--import", "pyarrow")
IMPORTS += ("--import", "cudf", "--import", "cuml")
#: Packing streams files (a library of 900 MB is never read whole): memory stays flat.
PACK_RSS_LIMIT = 256 * 1024**2


def lock_packages(workspace: Path) -> dict[str, Any]:
    from conda_lock.lockfile import parse_conda_lock_file

    lock = parse_conda_lock_file(workspace / "locks/rapids.conda-lock.yml")
    return {p.name: p for p in lock.package}


def verify(archive: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = bundler("verify", str(archive), "--json", *args)
    assert proc.stdout, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def assert_packed_in_bounded_memory(archive: Archive) -> None:
    path, result = archive
    assert result["size"] > 2 * 1024**3, (path, result["size"])
    assert result["peak_rss"] <= PACK_RSS_LIMIT, (path.name, result["peak_rss"])


def archive_fixture(filename: str, *extra: str) -> Any:
    """A class fixture (a method: its first argument is the test instance): the module's
    prefix packed to ``filename``, removed after the class."""

    @pytest.fixture(scope="class")
    def archive(
        self: object, rapids_prefix: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Archive]:
        with rapids_archive(tmp_path_factory, rapids_prefix, filename, *extra) as packed:
            yield packed

    return archive


def test_readme_documents_the_variant_the_tests_run() -> None:
    """The README's RAPIDS overlay is the one this module locks, word for word."""
    import yaml

    text = README.read_text()
    start = text.index("```yaml\n# environments/rapids.yml")
    block = text[start + len("```yaml\n") : text.index("```", start + 7)]
    assert yaml.safe_load(block) == yaml.safe_load(RAPIDS)


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
    # CUDA by content, though the variant sets no cuda =: one warning, naming the fix
    (result,) = json.loads((rapids_workspace / "lock.json").read_text())
    (warning,) = [w for w in result["warnings"] if "holds CUDA" in w]
    assert "nvidia-cuda-runtime-cu12 12.9" in warning and 'cuda = "12.9"' in warning, warning


class TestExecutorArchive:
    """The default archive, a .tar.gz: what it keeps, and verify's verdict on it."""

    archive = archive_fixture("rapids.tar.gz")

    def test_packed_in_bounded_memory(self, archive: Archive) -> None:
        assert_packed_in_bounded_memory(archive)

    def test_keeps_what_cuda_links(self, archive: Archive) -> None:
        path, result = archive
        names = subprocess.run(
            f"gzip -dc '{path}' | tar -t", shell=True, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        # numba-cuda links these when it compiles device code: an executor needs them
        for kept in ("libcudadevrt.a", "libcudart_static.a"):
            assert SITE + "nvidia/cuda_runtime/lib/" + kept in names, kept
        assert SITE + "libcudf/lib64/libcudf.so" in names
        assert not any("/pyspark/" in n for n in names)
        assert result["kind"] == "executor"
        manifest = json.loads(Path(result["manifest"]).read_text())
        assert manifest["cuda"] == "12.9"  # from the nvidia-cuda-runtime-cu12 wheel it holds

    def test_verify_tells_the_truth(self, archive: Archive) -> None:
        """No false "not found" although the wheels have no RPATH to each other."""
        path, _ = archive
        code, report = verify(path, *IMPORTS)
        assert code == 0, report["problems"]
        assert report["verdict"] == "ok"
        checks = {c["name"]: c for c in report["checks"]}
        assert checks["imports"]["status"] == "passed"
        linkage = checks["linkage"]
        assert linkage["status"] == "passed", linkage["problems"][:20]
        assert not [line for line in linkage["details"] if "not found" in line]
        # what only the host can give is listed once each, as a warning
        host = [w for w in linkage["warnings"] if "on the host" in w]
        for lib in ("libibverbs.so.1", "librdmacm.so.1"):
            assert sum(lib in w for w in host) == 1, (lib, host)


class TestTar:
    """The plain .tar for YARN: its localizer's ``tar -xf``, and a broken copy."""

    archive = archive_fixture("rapids.tar")

    def test_unpacks_with_plain_tar_as_yarn_does(self, archive: Archive, tmp_path: Path) -> None:
        """Modes and links survive ``tar -xf``; the environment's python imports cudf."""
        path, result = archive
        assert result["kind"] == "executor"
        env = tmp_path / "env"
        env.mkdir()
        try:
            subprocess.run(["tar", "-xf", str(path), "-C", str(env)], check=True)
            python = env / "bin/python"
            assert python.is_symlink() and os.access(python, os.X_OK)
            proc = subprocess.run(
                [str(python), "-c", "import cudf, pyarrow, sys; print(cudf.__file__, sys.prefix)"],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            )
            assert proc.returncode == 0, proc.stderr[-2000:]
            cudf_file, prefix = proc.stdout.split()
            assert Path(cudf_file).is_relative_to(env) and Path(prefix) == env
        finally:
            shutil.rmtree(env)

    def test_verify_fails_when_a_library_is_really_gone(
        self, archive: Archive, tmp_path: Path
    ) -> None:
        """libcudf.so and a cuBLAS library deleted from a copy: each named, verify exits 1."""
        path, _ = archive
        gone = (SITE + "libcudf/lib64/libcudf.so", SITE + "nvidia/cublas/lib/libcublasLt.so.12")
        copy = tmp_path / "broken.tar"
        try:
            shutil.copyfile(path, copy)
            subprocess.run(["tar", "--delete", "-f", str(copy), *gone], check=True)
            code, report = verify(copy, "--import", "numpy")
        finally:
            copy.unlink(missing_ok=True)
        assert code == 1
        problems = [p for p in report["problems"] if p.startswith("linkage:")]
        for lib in ("libcudf.so", "libcublasLt.so.12"):
            assert any(f"-> {lib}" in p for p in problems), (lib, problems[:10])
        assert any("pylibcudf/" in p and "-> libcudf.so" in p for p in problems)


class TestZip:
    """The .zip, as Hadoop's Java unzip inflates it on real executors."""

    archive = archive_fixture("rapids.zip")

    def test_packed_in_bounded_memory(self, archive: Archive) -> None:
        assert_packed_in_bounded_memory(archive)

    def test_runs_cudf_on_executors(
        self, spark_env: SimpleNamespace, archive: Archive, tmp_path: Path
    ) -> None:
        """The executor unzips 4 GB; its tasks import pandas, pyarrow and cudf from ./env."""
        path, _ = archive
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
        try:
            # the driver unzips it too (client mode): minutes on two busy cores
            rows = submit(spark_env, tmp_path, args, ["pandas", "pyarrow", "cudf"], timeout=1500)
        finally:
            shutil.rmtree(spark_env.work, ignore_errors=True)  # the executor's 6.5 GB
        assert len(rows) == 8
        for row in rows:
            env = (Path(row["cwd"]) / "env").resolve()
            assert Path(row["executable"]).resolve().is_relative_to(env), row
            for module, file in row["files"].items():
                assert Path(file).resolve().is_relative_to(env), (module, file)


class TestFull:
    """``--full`` (a driver environment): everything, and still verified."""

    archive = archive_fixture("full.tar.gz", "--full")

    def test_keeps_everything_and_verifies(self, archive: Archive) -> None:
        path, result = archive
        assert result["kind"] == "full"
        assert not any(group["bytes"] for group in result["left_out"].values()), result
        assert_packed_in_bounded_memory(archive)
        code, report = verify(path, *IMPORTS)
        assert code == 0, report["problems"]
        assert report["verdict"] == "ok"
