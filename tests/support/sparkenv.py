"""spark-submit from the pyspark package, for tests that start real executors."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
MASTER = "local-cluster[2,1,1024]"

# A job that reports, from every task, which Python ran it and where MODULES (argv[1],
# comma-separated) were imported from.
JOB = """\
import importlib, json, os, sys
from pyspark.sql import SparkSession

MODULES = [m for m in sys.argv[1].split(",") if m]


def probe(_):
    return {
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "version": "%d.%d" % sys.version_info[:2],
        "files": {m: importlib.import_module(m).__file__ for m in MODULES},
    }


spark = SparkSession.builder.appName("bundler-test").getOrCreate()
rows = spark.sparkContext.parallelize(range(8), 8).map(probe).collect()
print("BUNDLER-RESULT " + json.dumps(rows))
spark.stop()
"""


@pytest.fixture(scope="module")
def spark_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """spark-submit from the pyspark package, with a SPARK_HOME whose work/ is ours.

    The standalone workers of local-cluster write to $SPARK_HOME/work; a SPARK_HOME
    of symlinks into the pyspark package keeps that inside the test's directory.
    """
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.fail("no Java runtime: the Spark tests need Java 17 (java on PATH or JAVA_HOME)")
    import pyspark

    package = Path(pyspark.__file__).parent
    root = tmp_path_factory.mktemp("spark")
    home = root / "spark-home"
    home.mkdir()
    for entry in package.iterdir():
        if entry.name not in ("work", "__pycache__"):
            (home / entry.name).symlink_to(entry)
    # Nothing of this process's Spark settings (a Connect client sets SPARK_REMOTE and
    # SPARK_CONNECT_MODE_ENABLED in os.environ) reaches the jobs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1")
    # The client-mode driver is python3 on PATH (spark-conf's default): this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH"):
        env.pop(var, None)
    yield SimpleNamespace(submit=home / "bin" / "spark-submit", env=env, work=home / "work")
    shutil.rmtree(home / "work", ignore_errors=True)


def submit(
    spark_env: SimpleNamespace,
    tmp: Path,
    args: list[str],
    modules: list[str],
    code: str = JOB,
    timeout: float = 400,
) -> Any:
    job = tmp / "job.py"
    job.write_text(code)
    local = tmp / "spark-local"
    cmd = [
        str(spark_env.submit),
        *args,
        "--conf",
        f"spark.local.dir={local}",
        "--conf",
        "spark.ui.enabled=false",
        str(job),
        ",".join(modules),
    ]
    proc = subprocess.run(
        cmd, env=spark_env.env, cwd=tmp, capture_output=True, text=True, timeout=timeout
    )
    results = [
        line.split(" ", 1)[1]
        for line in proc.stdout.splitlines()
        if line.startswith("BUNDLER-RESULT ")
    ]
    if proc.returncode != 0 or not results:
        logs = []
        for log in sorted(spark_env.work.glob("app-*/*/stderr")):
            logs.append(f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-30:]))
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        causes = [
            line
            for line in proc.stderr.splitlines()
            if ("Error" in line or "Exception" in line or "Caused by" in line)
            and not line.lstrip().startswith("at ")
        ][:15]
        pytest.fail(
            f"$ {shlex.join(cmd)}\nexit {proc.returncode}\n"
            + "\n".join(["first errors:", *causes, "last lines:", tail, *logs])
        )
    shutil.rmtree(local, ignore_errors=True)
    return json.loads(results[-1])


def assert_two_executors(rows: list[dict], spark_env: SimpleNamespace) -> None:
    work = spark_env.work.resolve()
    cwds = {Path(r["cwd"]).resolve() for r in rows}
    # Each executor runs in work/app-*/<executor id>: two ids, two executor processes.
    assert all(c.parent.parent == work for c in cwds), cwds
    assert len(cwds) >= 2, cwds
    assert len({r["pid"] for r in rows}) >= 2
