"""Real Spark executors run the Python that bundler ships.

``local-cluster[2,1,1024]`` starts a standalone master and two workers, each with its
own executor process, in the same way a real cluster does: the executors download
``--py-files`` and ``--archives``, unpack them in their working directories and
start Python workers from there.  Each run takes 20-40 s, so there are few.

The archive route uses the ``packed_archive`` fixture (the ``app`` variant of the
test workspace, locked against the local channel and packed by ``bundler pack``: an
executor archive, without pyspark, py4j or unused test suites) and imports the
modules its manifest lists on every executor; pyspark comes from Spark itself, as on
a real cluster.  The driver of the pandas UDF job runs from the ``--full`` archive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bundler.artifact.readers import safe_extract
from bundler.deliver.pyfiles import zip_site_packages
from tests.support.pip import pip_target
from tests.support.sparkenv import HERE, JOB, MASTER, assert_two_executors, submit

pytestmark = pytest.mark.spark


def test_pyfiles_zip_on_executors(spark_env: SimpleNamespace, tmp_path: Path) -> None:
    site = pip_target(tmp_path / "site-packages", "six")
    deps = tmp_path / "deps.zip"
    result = zip_site_packages(site, deps)
    assert [n for n, _, _ in result.included] == ["six"]

    rows = submit(
        spark_env,
        tmp_path,
        [
            "--master",
            MASTER,
            "--conf",
            f"spark.pyspark.python={sys.executable}",
            "--conf",
            f"spark.pyspark.driver.python={sys.executable}",
            "--py-files",
            str(deps),
        ],
        ["six"],
    )
    assert len(rows) == 8
    for row in rows:
        six_file = row["files"]["six"]
        # Imported from the zip each executor downloaded, not from any site-packages.
        assert six_file.endswith("deps.zip/six.py"), six_file
        assert "site-packages" not in six_file
        assert not six_file.startswith(sys.prefix)
    assert_two_executors(rows, spark_env)


# --- the archive route, driven by spark-conf's own output -------------------------------


@pytest.fixture(scope="module")
def env_archive(
    packed_archive: tuple[Path, dict[str, Any]],
) -> tuple[Path, list[str]]:
    """(archive, modules to import from it) for the packed ``app`` variant."""
    archive, manifest = packed_archive
    # pyspark comes from Spark itself on the workers' path, not from the archive.
    modules = [m for m in manifest.get("imports", []) if m.split(".")[0] not in ("pyspark", "py4j")]
    assert modules, manifest.get("imports")
    return Path(archive), modules


def test_spark_conf_output_runs_on_executors(
    spark_env: SimpleNamespace,
    env_archive: tuple[Path, list[str]],
    locked_workspace: Path,
    tmp_path: Path,
) -> None:
    archive, modules = env_archive
    args, stderr = spark_conf_words(spark_env, locked_workspace, archive)
    assert "warning" not in stderr  # the lock's Python is this driver's
    assert "--archives" in args and "spark.pyspark.driver.python=python3" in args

    rows = submit(spark_env, tmp_path, args, modules)
    assert len(rows) == 8
    for row in rows:
        env = Path(row["cwd"]).resolve() / "env"
        # Python itself, its prefix and the imported modules all come from ./env.
        assert Path(row["executable"]).resolve().is_relative_to(env), row
        assert Path(row["prefix"]).resolve() == env.resolve(), row
        assert row["version"] == HERE
        for module, path in row["files"].items():
            assert Path(path).resolve().is_relative_to(env), (module, path)
    assert_two_executors(rows, spark_env)


UDF_JOB = """\
import json, os, sys
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.functions import col, pandas_udf, sum as sum_

spark = SparkSession.builder.appName("bundler-udf").getOrCreate()  # before the UDFs


def probe(_):
    import pandas, pyarrow, pyspark
    return {"pid": os.getpid(), "cwd": os.getcwd(), "executable": sys.executable,
            "pandas": pandas.__file__, "pyarrow": pyarrow.__file__, "pyspark": pyspark.__file__}


@pandas_udf("double")
def plus_one(v: pd.Series) -> pd.Series:
    return v + 1


@pandas_udf("string")
def where(v: pd.Series) -> pd.Series:
    return pd.Series([json.dumps(probe(0), sort_keys=True)] * len(v))


df = spark.range(0, 1000, numPartitions=8)
total = df.select(plus_one(col("id").cast("double")).alias("x")).agg(sum_("x")).first()[0]
udf = [json.loads(r[0]) for r in df.select(where(col("id"))).distinct().collect()]
rdd = spark.sparkContext.parallelize(range(8), 8).map(probe).collect()
words = spark.sparkContext.parallelize(["a b", "b c", "c"], 3).flatMap(str.split)
counts = dict(words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect())
print("BUNDLER-RESULT " + json.dumps(
    {"total": total, "udf": udf, "rdd": rdd, "counts": counts, "driver": pd.__file__}))
spark.stop()
"""


def test_pandas_udf_and_rdd_from_the_executor_archive(
    spark_env: SimpleNamespace,
    packed_archive: tuple[Path, dict[str, Any]],
    full_archive: tuple[Path, dict[str, Any]],
    locked_workspace: Path,
    tmp_path: Path,
) -> None:
    """Executors run Arrow pandas UDFs from the default archive; the driver from --full."""
    archive, manifest = packed_archive
    assert manifest["kind"] == "executor" and "tests" in manifest["left_out"]
    driver_env = tmp_path / "driver-env"
    safe_extract(full_archive[0], driver_env)
    args, _ = spark_conf_words(
        spark_env, locked_workspace, archive, "--driver-python", str(driver_env / "bin/python")
    )
    result = submit(spark_env, tmp_path, args, [], code=UDF_JOB)

    assert result["total"] == sum(range(1000)) + 1000
    assert result["counts"] == {"a": 1, "b": 2, "c": 2}
    assert Path(result["driver"]).is_relative_to(driver_env)
    for row in [*result["udf"], *result["rdd"]]:
        env = (Path(row["cwd"]) / "env").resolve()
        assert Path(row["executable"]).resolve().is_relative_to(env), row
        for module in ("pandas", "pyarrow"):  # from the unpacked archive, not the driver's
            assert Path(row[module]).resolve().is_relative_to(env), (module, row)
        assert "/python/lib/pyspark.zip/" in row["pyspark"], row  # Spark's own pyspark
    assert_two_executors(result["udf"], spark_env)
    assert_two_executors(result["rdd"], spark_env)


def spark_conf_words(
    spark_env: SimpleNamespace, workspace: Path, archive: Path, *extra: str
) -> tuple[list[str], str]:
    """(the words bash hands to spark-submit for ``$(bundler spark-conf ...)``, stderr)."""
    spark_conf = " ".join(
        ["bundler spark-conf app --archive", str(archive), f"--master '{MASTER}'",
         "-w", str(workspace), *extra]
    )  # fmt: skip
    proc = subprocess.run(
        ["bash", "-c", f"out=$({spark_conf}) || exit $?; printf '%s\\0' $out"],
        env=spark_env.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\0")[:-1], proc.stderr


@pytest.mark.parametrize("kind", ["executor", "full"])
def test_local_session_runs_workers_from_the_archive(
    kind: str,
    env_archive: tuple[Path, list[str]],
    full_archive: tuple[Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Both kinds: an executor archive's workers import the driver's (Spark's) pyspark."""
    from bundler.spark import local_session

    archive, modules = env_archive
    if kind == "full":
        archive = full_archive[0]
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("PYSPARK_PYTHON", "/nonexistent/sentinel")

    def probe(_: int) -> tuple[str, str, dict[str, str]]:
        import importlib

        import pyspark

        files = {m: str(importlib.import_module(m).__file__) for m in [*modules, "pyspark"]}
        files["pyspark"] = str(pyspark.__file__)
        return sys.executable, sys.prefix, files

    with local_session(archive, conf={"spark.local.dir": str(tmp_path)}) as spark:
        python = Path(os.environ["PYSPARK_PYTHON"])
        site = python.parent.parent / "lib" / f"python{HERE}" / "site-packages"
        assert (site / "pandas" / "tests").is_dir() == (kind == "full")
        rows = spark.sparkContext.parallelize(range(4), 2).map(probe).collect()
    env = python.parent.parent
    assert python.is_absolute() and python.name == "python"
    assert len(rows) == 4
    for executable, prefix, files in rows:
        assert executable == str(python)
        assert Path(prefix) == env
        spark_pyspark = files.pop("pyspark")
        assert "pyspark.zip" in spark_pyspark, spark_pyspark  # Spark's, first on the path
        for path in files.values():
            assert Path(path).is_relative_to(env)
    assert os.environ["PYSPARK_PYTHON"] == "/nonexistent/sentinel"
    assert not env.exists()


def test_packed_zip_runs_on_executors(
    spark_env: SimpleNamespace, locked_workspace: Path, tmp_path: Path
) -> None:
    """Hadoop's unzip turns symlink entries into text files: bundler's zip has none."""
    from bundler.pipeline import PackOptions, pack_archive

    result = pack_archive(
        PackOptions(workspace=locked_workspace, variant="gpuapp", output=tmp_path / "env.zip")
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["zip_symlinks"]["copied"] >= 1  # bin/python at least
    modules = ["six"]
    rows = submit(
        spark_env,
        tmp_path,
        [
            "--master",
            MASTER,
            "--archives",
            f"{result.path}#env",
            "--conf",
            "spark.pyspark.python=./env/bin/python",
            "--conf",
            f"spark.pyspark.driver.python={sys.executable}",
        ],
        modules,
    )
    assert len(rows) == 8
    for row in rows:
        env = Path(row["cwd"]).resolve() / "env"
        # Spark unpacked the zip into ./env (a directory, not a link to the cache)
        assert Path(row["executable"]).resolve().is_relative_to(env.resolve()), row
        assert Path(row["prefix"]).resolve() == env.resolve(), row
        assert row["version"] == HERE
        for module, path in row["files"].items():
            assert Path(path).resolve().is_relative_to(env.resolve()), (module, path)
    assert_two_executors(rows, spark_env)


def test_plain_tar_breaks_outside_yarn(
    spark_env: SimpleNamespace, locked_workspace: Path, tmp_path: Path
) -> None:
    """Why spark-conf takes .tar for --master yarn only.

    Outside YARN, Spark unpacks a .tar with its own Java code (Utils.unpack): on
    local-cluster the executor's bin/python3.11 loses its exec bit and the relative link
    bin/python stops pointing into the environment, so no Python worker starts.  YARN's
    NodeManager runs the shell's tar -xf instead (see test_pack's .tar test).
    """
    from bundler.pipeline import PackOptions, pack_archive

    result = pack_archive(
        PackOptions(workspace=locked_workspace, variant="gpuapp", output=tmp_path / "env.tar")
    )
    job = tmp_path / "job.py"
    job.write_text(JOB)
    cmd = [
        str(spark_env.submit),
        "--master", MASTER,
        "--archives", f"{result.path}#env",
        "--conf", "spark.pyspark.python=./env/bin/python",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        "--conf", "spark.task.maxFailures=1",
        "--conf", f"spark.local.dir={tmp_path / 'spark-local'}",
        "--conf", "spark.ui.enabled=false",
        str(job), "six",
    ]  # fmt: skip
    before = set(spark_env.work.glob("app-*"))
    proc = subprocess.run(
        cmd, env=spark_env.env, cwd=tmp_path, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "BUNDLER-RESULT" not in proc.stdout
    assert 'Cannot run program "./env/bin/python"' in proc.stderr, proc.stderr[-3000:]
    # what the executors were left with: the interpreter is there, but cannot run
    (app,) = set(spark_env.work.glob("app-*")) - before
    unpacked = [p for p in app.glob("*/env") if (p / "bin").is_dir()]
    assert unpacked, sorted(app.iterdir())
    for env in unpacked:
        python311 = env / "bin" / "python3.11"
        assert python311.is_file() and not os.access(python311, os.X_OK), env
        link = env / "bin" / "python"
        assert not (link.exists() and link.resolve() == python311.resolve()), os.readlink(link)
