"""Executor archives (``bundler pack``'s default) against ``--full``: what goes in, verify.

The rules themselves are tested in test_content.py; here the records and summary pack
writes from them, verify with Spark's pyspark, and real packs of the test workspace's
``app`` (numpy, pandas, pyarrow from PyPI) and ``sparkapp`` (the test channel's
metadata-only pyspark).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.artifact.content import compile_patterns
from bundler.artifact.manifest import LeftOut
from bundler.artifact.pack import prune_record
from bundler.check.sparkpath import SparkPython, find_spark_python, version_note
from bundler.check.verify import verify_archive
from bundler.cli.pack import pack_summary
from tests.support.archives import pack_dir, write_manifest
from tests.support.cli import run_cli

SITE = "lib/python3.11/site-packages"


def test_pruned_conda_record_lists_only_packed_files() -> None:
    record = {
        "name": "pip",
        "files": ["a/tests/x.py", "a/b.py"],
        "paths_data": {"paths": [{"_path": "a/tests/x.py"}, {"_path": "a/b.py"}]},
    }
    data = json.dumps(record).encode()
    pruned = json.loads(prune_record(data, compile_patterns(["a/tests/*"])))
    assert pruned["files"] == ["a/b.py"]
    assert pruned["paths_data"]["paths"] == [{"_path": "a/b.py"}]
    assert prune_record(data, compile_patterns(["c/*"])) is data


def test_pack_summary_says_what_was_saved() -> None:
    left = {"pyspark": LeftOut(bytes=3 << 20, files=9), "tests": LeftOut(bytes=1 << 20, files=2)}
    line = pack_summary("executor", left, 8 << 20)
    assert line == (
        "executor archive: saved 4.0 MiB of 8.0 MiB installed by leaving out "
        "pyspark 3.0 MiB, tests 1.0 MiB (--full keeps them)"
    )
    assert pack_summary("full", {}, 8 << 20) == "full archive: nothing left out"


# ---------------------------------------------------------------- Spark's pyspark


def _spark_home(root: Path, init: bytes = b"") -> Path:
    lib = root / "python" / "lib"
    lib.mkdir(parents=True)
    with zipfile.ZipFile(lib / "pyspark.zip", "w") as zf:
        zf.writestr("pyspark/__init__.py", init)
        zf.writestr("pyspark/version.py", '__version__: str = "4.3.1"\n')
    with zipfile.ZipFile(lib / "py4j-0.10.9.9-src.zip", "w") as zf:
        zf.writestr("py4j/__init__.py", b"")
    return root


def test_spark_python_from_spark_home_or_beside_bundler(tmp_path: Path) -> None:
    home = _spark_home(tmp_path / "spark")
    found = find_spark_python({"SPARK_HOME": str(home)})
    assert isinstance(found, SparkPython)
    assert [Path(e).name for e in found.entries] == ["pyspark.zip", "py4j-0.10.9.9-src.zip"]
    assert found.version == "4.3.1" and found.source == f"SPARK_HOME={home}"
    assert version_note(found, "4.3.0") is None
    assert "locks pyspark 3.5.7, this Spark's is 4.3.1" in str(version_note(found, "3.5.7"))
    empty = find_spark_python({"SPARK_HOME": str(tmp_path)})
    assert empty == f"SPARK_HOME={tmp_path} has no python/lib/pyspark.zip and py4j-*-src.zip"
    beside = find_spark_python({})  # the test venv's pip pyspark, which carries the zips
    assert isinstance(beside, SparkPython), beside
    assert beside.version == importlib.metadata.version("pyspark")
    assert beside.source.startswith("the pyspark beside bundler")


def _executor_archive(python_env: Path, tmp_path: Path) -> Path:
    archive = pack_dir(python_env, tmp_path / "env.tar.gz")
    write_manifest(
        archive,
        imports=["json", "pyspark"],
        dropped_imports=["py4j", "pyspark"],
        packages=[{"name": "pyspark", "version": "4.3.0", "manager": "conda", "size": 1}],
    )
    return archive


def test_verify_imports_pyspark_the_way_spark_puts_it(
    python_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = _executor_archive(python_env, tmp_path)
    home = _spark_home(
        tmp_path / "spark", b"import py4j\nfrom pyspark.version import __version__\n"
    )
    monkeypatch.setenv("SPARK_HOME", str(home))
    report = verify_archive(archive)
    assert report.ok, report.render()
    spark = report.check("spark-imports")
    assert spark.status == "passed"
    assert spark.summary == "imported 1 module(s) from Spark's pyspark"
    assert spark.details[0].startswith("PYTHONPATH as Spark sets it: pyspark.zip, py4j-")
    assert f"pyspark 4.3.1: {home}/python/lib/pyspark.zip/pyspark/__init__.py" in spark.details
    imports = report.check("imports")
    assert imports.status == "passed" and "pyspark 4.3.1 from SPARK_HOME=" in imports.details[0]


def test_verify_says_when_no_pyspark_was_imported(
    python_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = _executor_archive(python_env, tmp_path)
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))  # no Spark there
    report = verify_archive(archive)
    spark = report.check("spark-imports")
    assert spark.status == "skipped"
    assert spark.summary.startswith("NOT RUN: pyspark not imported: SPARK_HOME=")
    assert report.check("imports").status == "passed"  # json, without Spark's path
    assert re.search(r"SKIP +spark-imports +NOT RUN: pyspark not imported", report.render())

    broken = _spark_home(tmp_path / "broken", b"raise ImportError('half a Spark')\n")
    monkeypatch.setenv("SPARK_HOME", str(broken))
    report = verify_archive(archive)
    assert report.check("spark-imports").status == "failed"
    assert "half a Spark" in "\n".join(report.problems())


# ---------------------------------------------------------------- real archives


def _names(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return set(tar.getnames())


@pytest.mark.integration
def test_default_archive_leaves_out_unused_tests_and_stays_consistent(
    packed_archive: tuple[Path, dict[str, Any]], full_archive: tuple[Path, dict[str, Any]]
) -> None:
    archive, manifest = packed_archive
    full, full_manifest = full_archive
    assert manifest["kind"] == "executor" and full_manifest["kind"] == "full"
    assert manifest["left_out"]["tests"]["bytes"] > 10_000_000
    assert manifest["left_out"]["tests"]["files"] > 1000
    assert full_manifest["left_out"] == {}
    assert full_manifest["excluded"] == ["*.pyc", "*/__pycache__"]
    assert manifest["installed_size"] == full_manifest["installed_size"]
    names, full_names = _names(archive), _names(full)
    for suite in ("numpy/_core/tests/test_multiarray.py", "pandas/tests/test_algos.py"):
        assert f"{SITE}/{suite}" in full_names and f"{SITE}/{suite}" not in names
    assert f"{SITE}/numpy/testing/__init__.py" in names  # imported by other packages
    assert archive.stat().st_size < full.stat().st_size
    # Every conda record lists only files that are in the archive.
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name.startswith("conda-meta/") and member.name.endswith(".json"):
                fh = tar.extractfile(member)
                record = json.load(io.BytesIO(fh.read() if fh else b"{}"))
                missing = set(record.get("files", [])) - names
                assert not missing, (member.name, sorted(missing)[:5])


@pytest.mark.integration
def test_executor_archive_of_a_pyspark_variant(
    locked_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPARK_HOME", raising=False)
    out = tmp_path / "sparkapp.tar.gz"
    proc = run_cli("pack", "sparkapp", "-o", str(out), cwd=locked_workspace)
    assert proc.returncode == 0, proc.stderr
    assert "executor archive: saved" in proc.stdout and "leaving out pyspark" in proc.stdout
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["kind"] == "executor" and manifest["dropped_imports"] == ["pyspark"]
    assert manifest["imports"] == ["six", "pyspark"]
    assert manifest["left_out"]["pyspark"]["files"] == 2  # its conda record and one file
    pyspark = next(p for p in manifest["packages"] if p["name"] == "pyspark")
    assert pyspark["in_archive"] is False and pyspark["version"] == "3.5.7"
    names = _names(out)
    assert not any(n.startswith(("conda-meta/pyspark-", "share/bundler-test/")) for n in names)
    # Its SBOM: pyspark is not a component; the archive says Spark provides it.
    sbom = json.loads(Path(f"{out}.cdx.json").read_text())
    assert "pyspark" not in {c["name"] for c in sbom["components"]}
    props = {p["name"]: p["value"] for p in sbom["metadata"]["component"]["properties"]}
    assert props["bundler:provided-by-spark"] == "pyspark@3.5.7"

    proc = run_cli("verify", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    spark = checks["spark-imports"]
    assert spark["status"] == "passed", spark
    version = importlib.metadata.version("pyspark")
    assert f"pyspark {version} from the pyspark beside bundler" in spark["details"][0]
    note = f"note: the variant locks pyspark 3.5.7, this Spark's is {version}; executors run"
    assert any(d.startswith(note) for d in spark["details"]), spark["details"]

    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    proc = run_cli("verify", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"SKIP +spark-imports +NOT RUN: pyspark not imported", proc.stdout)

    proc = run_cli("pack", "sparkapp", "--full", "-o", str(tmp_path / "f.tar.gz"), "--json",
                   cwd=locked_workspace)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kind"] == "full"
    full_names = _names(tmp_path / "f.tar.gz")
    assert "share/bundler-test/pyspark-3.5.7-metadata-only" in full_names
    assert any(n.startswith("conda-meta/pyspark-3.5.7") for n in full_names)
    full_sbom = json.loads((tmp_path / "f.tar.gz.cdx.json").read_text())
    assert "pyspark" in {c["name"] for c in full_sbom["components"]}
    full_props = full_sbom["metadata"]["component"]["properties"]
    assert "bundler:provided-by-spark" not in {p["name"] for p in full_props}
