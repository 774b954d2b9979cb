"""spark-submit from the pyspark package, for tests that start real executors."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest


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
