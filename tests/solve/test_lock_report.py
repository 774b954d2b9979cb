"""What a re-lock changed: printed, in --json, and as a Markdown report for a pull request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundler.solve.lockfile import LockedPackage, PackageChange, package_changes
from tests.support.cli import run_cli
from tests.support.workspace import write

VARIANTS = '[variants.small]\nfiles = ["base.yml"]\nimports = ["dateutil"]\n'
BASE = """\
channels:
  - {channel}
dependencies:
  - python 3.11.*
  - six
  - pip:
      - python-dateutil=={dateutil}
"""


def _pkg(name: str, version: str, manager: str = "conda") -> LockedPackage:
    return LockedPackage(name, version, manager, "linux-64", url="u", sha256="0" * 64)


def test_package_changes_against_a_previous_lock(tmp_path: Path) -> None:
    assert package_changes(tmp_path / "none.yml", [_pkg("six", "1")]) == [
        PackageChange("linux-64", "six", "conda", None, "1")
    ]
    lock = tmp_path / "x.conda-lock.yml"
    lock.write_text(
        "version: 1\nmetadata: {}\npackage:\n"
        "- {name: six, version: '1', manager: conda, platform: linux-64}\n"
        "- {name: gone, version: '2', manager: pip, platform: linux-64}\n"
        "- {name: same, version: '3', manager: conda, platform: linux-64}\n"
    )
    changes = package_changes(lock, [_pkg("six", "1.5"), _pkg("same", "3")])
    assert [c.describe() for c in changes] == ["gone 2 -> (removed)", "six 1 -> 1.5"]


@pytest.mark.integration
def test_relock_reports_the_versions_that_moved(local_channel: Path, tmp_path: Path) -> None:
    env = tmp_path / "environments"
    write(env / "variants.toml", VARIANTS)
    write(env / "base.yml", BASE.format(channel=local_channel.as_uri(), dateutil="2.8.2"))
    run_cli("lock", cwd=tmp_path, check=True)
    write(env / "base.yml", BASE.format(channel=local_channel.as_uri(), dateutil="2.9.0.post0"))

    proc = run_cli("lock", "--json", "--report", "changes.md", cwd=tmp_path, check=True)
    (result,) = json.loads(proc.stdout)
    assert result["changes"] == [
        {
            "platform": "linux-64",
            "name": "python-dateutil",
            "manager": "pip",
            "old": "2.8.2",
            "new": "2.9.0.post0",
        }
    ]
    report = (tmp_path / "changes.md").read_text()
    assert "| small | linux-64 | python-dateutil (pip) | 2.8.2 | 2.9.0.post0 |" in report

    proc = run_cli("lock", "--report", "changes.md", cwd=tmp_path, check=True)
    assert "No locked version changed." in (tmp_path / "changes.md").read_text()
    assert "->" not in proc.stdout
