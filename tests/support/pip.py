"""Real distributions from PyPI installed into a plain directory (``pip --target``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pip_target(dest: Path, *requirements: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(dest),
            *requirements,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return dest
