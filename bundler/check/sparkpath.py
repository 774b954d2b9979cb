"""The pyspark and py4j that Spark puts first on its executors' ``PYTHONPATH``.

Spark starts every Python worker (YARN, Kubernetes, standalone, local) with
``$SPARK_HOME/python/lib/pyspark.zip`` and ``$SPARK_HOME/python/lib/py4j-*-src.zip``
ahead of anything else (``PythonUtils.sparkPythonPath``), so an executor archive
leaves its own pyspark and py4j out.  ``bundler verify`` imports such an archive's
modules the same way, with a pyspark found here:

- ``$SPARK_HOME`` when it is set (the Spark that runs the jobs);
- else the pyspark installed beside bundler: pip's pyspark carries the same
  ``python/lib`` zips, and Spark uses the package directory as its home.
"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bundler.solve.guards import same_minor

_VERSION_RE = re.compile(r"""__version__(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class SparkPython:
    """Spark's Python path entries, in Spark's order, and where they were found."""

    entries: tuple[str, ...]
    source: str  # "SPARK_HOME=/opt/spark" or "the pyspark beside bundler (/path)"
    version: str | None = None

    def describe(self) -> str:
        names = ", ".join(Path(e).name for e in self.entries)
        version = f"pyspark {self.version}" if self.version else "pyspark"
        return f"PYTHONPATH as Spark sets it: {names} ({version} from {self.source})"


def _entries(home: Path) -> tuple[str, ...]:
    """``python/lib/pyspark.zip`` and py4j's zip under a Spark home; () when absent."""
    lib = home / "python" / "lib"
    py4j = sorted(lib.glob("py4j-*-src.zip"))
    pyspark = lib / "pyspark.zip"
    if not pyspark.is_file() or not py4j:
        return ()
    return (str(pyspark), str(py4j[-1]))


def _version(pyspark_zip: str) -> str | None:
    try:
        with zipfile.ZipFile(pyspark_zip) as zf:
            text = zf.read("pyspark/version.py").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    m = _VERSION_RE.search(text)
    return m.group(1) if m else None


def find_spark_python(environ: Mapping[str, str] | None = None) -> SparkPython | str:
    """Spark's pyspark and py4j as an executor's path has them, or why there are none."""
    env = os.environ if environ is None else environ
    home = env.get("SPARK_HOME")
    if home:
        entries = _entries(Path(home))
        if not entries:
            return f"SPARK_HOME={home} has no python/lib/pyspark.zip and py4j-*-src.zip"
        return SparkPython(entries, f"SPARK_HOME={home}", _version(entries[0]))
    spec = importlib.util.find_spec("pyspark")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        return "SPARK_HOME is not set and no pyspark is installed beside bundler"
    package = Path(locations[0])
    entries = _entries(package)
    if not entries:
        return f"the pyspark beside bundler ({package}) has no python/lib zips; set SPARK_HOME"
    return SparkPython(entries, f"the pyspark beside bundler ({package})", _version(entries[0]))


def version_note(spark: SparkPython, locked: str | None) -> str | None:
    """A line when Spark's pyspark and the locked one differ in minor version."""
    if not spark.version or not locked:
        return None
    if same_minor(spark.version, locked):
        return None
    return (
        f"note: the variant locks pyspark {locked}, this Spark's is {spark.version}; "
        "executors run the Spark's"
    )
