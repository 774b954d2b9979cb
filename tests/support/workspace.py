"""Test workspaces written on the fly against the local channel."""

from __future__ import annotations

import textwrap
from pathlib import Path

VARIANTS = """\
[variants.app]
files = ["base.yml", "extra.yml"]
imports = ["numpy", "pyarrow", "six", "dateutil"]

[variants.gpuapp]
files = ["base.yml", "gpu.yml"]
cuda = "12.9"
imports = ["six"]
gpu_imports = ["cudaprobe"]

[variants.nocuda]
files = ["base.yml", "gpu.yml"]
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
      - python-dateutil>=2.9   # depends on six, which conda already provides
"""

GPU = """\
dependencies:
  - cudaprobe >=1
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_workspace(root: Path, channel: Path) -> Path:
    """A workspace with variants app (pip list), gpuapp (needs __cuda) and nocuda."""
    env = root / "environments"
    write(env / "variants.toml", VARIANTS)
    write(env / "base.yml", BASE.format(channel=channel.as_uri()))
    write(env / "extra.yml", EXTRA)
    write(env / "gpu.yml", GPU)
    (root / "locks").mkdir(parents=True, exist_ok=True)
    return root
