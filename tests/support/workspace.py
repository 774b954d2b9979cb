"""Test workspaces written on the fly against the local channel."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

VARIANTS = """\
[variants.app]
files = ["base.yml", "extra.yml"]
imports = ["numpy", "pyarrow", "pandas", "six", "dateutil"]

[variants.gpuapp]
files = ["base.yml", "gpu.yml"]
cuda = "12.9"
imports = ["six"]
gpu_imports = ["cudaprobe"]

[variants.nocuda]
files = ["base.yml", "gpu.yml"]

[variants.sparkapp]
files = ["base.yml", "spark.yml"]
imports = ["six", "pyspark"]
"""

BASE = """\
channels:
  - {channel}
dependencies:
  - python 3.11.*
  - pip
  - six
"""

EXTRA = """\
dependencies:
  - pip:
      - numpy>=2,<3
      - pyarrow>=18
      - pandas>=3,<3.1         # pyspark 4.3 supports pandas 3 (pandas UDF tests)
      - python-dateutil>=2.9   # depends on six, which conda already provides
"""

# The test channel's pyspark is metadata only: an executor archive leaves it out and
# verify imports the pyspark installed beside bundler, as Spark would put it.
SPARK = """\
dependencies:
  - pyspark
"""

GPU = """\
dependencies:
  - cudaprobe >=1
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def write_files(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Each of ``files`` (relative path -> text or bytes) written under ``root``."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    return root


def make_workspace(root: Path, channel: Path) -> Path:
    """Variants app (pip list), gpuapp (needs __cuda), nocuda and sparkapp (pyspark)."""
    env = root / "environments"
    write(env / "variants.toml", VARIANTS)
    write(env / "base.yml", BASE.format(channel=channel.as_uri()))
    write(env / "extra.yml", EXTRA)
    write(env / "gpu.yml", GPU)
    write(env / "spark.yml", SPARK)
    (root / "locks").mkdir(parents=True, exist_ok=True)
    return root
