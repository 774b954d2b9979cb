"""The command line's own presentation: ``--help`` of the real ``bundler`` process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli


@pytest.mark.parametrize("command", [[], ["lock"], ["spark-conf"]])
def test_help_shows_flags_without_a_value_type(command: list[str], tmp_path: Path) -> None:
    proc = run_cli(*command, "--help", cwd=tmp_path, check=True)
    rows = [line for line in proc.stdout.splitlines() if "--help" in line]
    assert rows, proc.stdout  # the help option is listed, as a flag
    assert "<bool>" not in proc.stdout, proc.stdout
    # Options that take a value still name its type.
    if command:
        assert "<path>" in proc.stdout, proc.stdout


def test_flags_still_parse(tmp_path: Path) -> None:
    proc = run_cli("--version", cwd=tmp_path, check=True)
    assert proc.stdout.startswith("bundler "), proc.stdout
