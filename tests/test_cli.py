"""The command line's own presentation: ``--help`` of the real ``bundler`` process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import error_line, run_cli


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pack"], "name a VARIANT or pass --prefix DIR (not both)"),
        (["pack", "app", "--prefix", "."], "name a VARIANT or pass --prefix DIR (not both)"),
        (["pack", "--prefix", "."], "--prefix needs -o PATH"),
        (["pyfiles", "-o", "d.zip"], "name a VARIANT or pass --site-packages DIR (not both)"),
    ],
)
def test_either_or_options_are_refused_by_the_library(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """The planning step checks them once; the CLI shows its one line and exit code 2."""
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert error_line(proc) == f"error: {message}"
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []
