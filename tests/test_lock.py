"""Locking end to end: the real rattler solver on the local channel, pip against PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rattler
from conda_lock.lockfile import parse_conda_lock_file

from tests.support.cli import error_line, run_cli
from tests.support.fixtures import copy_workspace
from tests.support.workspace import make_workspace, write

pytestmark = pytest.mark.integration


def test_lock_holds_what_was_asked(locked_workspace: Path) -> None:
    lock = parse_conda_lock_file(locked_workspace / "locks/app.conda-lock.yml")
    conda = {p.name: p for p in lock.package if p.manager == "conda"}
    pip = {p.name: p for p in lock.package if p.manager == "pip"}
    assert {"python", "pip", "six"} <= set(conda)
    assert conda["python"].version.startswith("3.11.")
    assert {"numpy", "pyarrow", "python-dateutil"} <= set(pip)
    # six comes from conda: pip must not resolve it again.
    assert "six" not in pip
    for p in lock.package:
        assert p.url, p.name
        assert p.hash.sha256 and len(p.hash.sha256) == 64, p.name
        if p.manager == "conda":
            assert p.hash.md5 and len(p.hash.md5) == 32, p.name
        else:
            assert p.url.endswith(".whl"), p.url
    assert pip["numpy"].version.startswith("2.")
    # rattler (what `bundler pack` uses) reads the same file.
    rlock = rattler.LockFile.from_path(locked_workspace / "locks/app.conda-lock.yml")
    env = rlock.default_environment()
    assert env is not None
    plat = rlock.platforms()[0]
    assert {r.name.normalized for r in env.conda_repodata_records_for_platform(plat)} == set(conda)


def test_gpu_variant_solves_with_cuda_virtual_package(locked_workspace: Path) -> None:
    lock = parse_conda_lock_file(locked_workspace / "locks/gpuapp.conda-lock.yml")
    probe = [p for p in lock.package if p.name == "cudaprobe"]
    assert len(probe) == 1
    assert probe[0].dependencies.get("__cuda") == ">=12"


def test_check_turns_stale_after_edit(locked_workspace: Path, tmp_path: Path) -> None:
    ws = copy_workspace(locked_workspace, tmp_path / "ws")
    ok = run_cli("lock", "--check", "app", "gpuapp", cwd=ws)
    assert ok.returncode == 0, ok.stderr
    # Comments do not change the inputs; a dependency does.
    extra = ws / "environments/extra.yml"
    extra.write_text("# a comment\n" + extra.read_text())
    assert run_cli("lock", "--check", "app", cwd=ws).returncode == 0
    extra.write_text(extra.read_text().replace("numpy>=2,<3", "numpy>=2.1,<3"))
    stale = run_cli("lock", "--check", "app", "gpuapp", cwd=ws)
    assert stale.returncode == 1
    assert "app: stale" in stale.stdout and "gpuapp: fresh" in stale.stdout
    assert "run 'bundler lock app'" in stale.stderr
    states = json.loads(run_cli("variants", "--json", cwd=ws, check=True).stdout)
    assert {s["name"]: s["state"] for s in states} == {
        "app": "stale",
        "gpuapp": "fresh",
        "nocuda": "missing",
        "sparkapp": "fresh",
    }
    before = (ws / "locks/app.conda-lock.yml").read_bytes()
    assert before == (locked_workspace / "locks/app.conda-lock.yml").read_bytes()


def test_lock_cli_writes_and_relocks(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", local_channel)
    write(ws / "environments/extra.yml", "dependencies:\n  - pip:\n    - python-dateutil\n")
    proc = run_cli("lock", "app", "--json", cwd=ws, check=True)
    result = json.loads(proc.stdout)
    assert result[0]["variant"] == "app"
    names = {p["name"] for p in result[0]["packages"]}
    assert {"python", "six", "python-dateutil"} <= names and "numpy" not in names
    first = (ws / "locks/app.conda-lock.yml").read_bytes()
    run_cli("lock", "app", cwd=ws, check=True)
    assert (ws / "locks/app.conda-lock.yml").read_bytes() == first  # same inputs, same bytes


# --- errors: one line, exit 2, nothing written ------------------------------------------


def _assert_nothing_written(ws: Path) -> None:
    assert sorted(p.name for p in (ws / "locks").iterdir()) == []


def test_unknown_variant(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    proc = run_cli("lock", "nope", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "unknown variant 'nope'" in line and "app, gpuapp, nocuda" in line
    _assert_nothing_written(ws)


def test_missing_and_malformed_environment_file(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    (ws / "environments/gpu.yml").unlink()
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    assert "gpu.yml: environment file not found" in error_line(proc)
    write(ws / "environments/gpu.yml", "dependencies:\n  - cudaprobe\n   - broken: [\n")
    proc = run_cli("lock", cwd=ws)
    assert proc.returncode == 2
    assert "gpu.yml:3: invalid YAML" in error_line(proc)
    _assert_nothing_written(ws)


def test_unsatisfiable_specs(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    write(ws / "environments/extra.yml", "dependencies:\n  - six >=99\n")
    proc = run_cli("lock", "app", "gpuapp", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "variant 'app' (linux-64) cannot be solved" in line and "six" in line
    _assert_nothing_written(ws)


def test_unsatisfiable_pip_requirement(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    write(ws / "environments/extra.yml", "dependencies:\n  - pip:\n    - numpy==0.0.1\n")
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "pip could not resolve numpy==0.0.1" in line
    _assert_nothing_written(ws)


def test_unreachable_channel(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    missing = (tmp_path / "no-such-mirror").as_uri()
    write(ws / "environments/extra.yml", f"channels:\n  - {missing}\ndependencies: []\n")
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert f"channel {missing} is unreachable" in line
    _assert_nothing_written(ws)


def test_named_channel_offline_is_named(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    write(
        ws / "environments/extra.yml",
        "channels:\n  - https://conda.invalid/some-channel\ndependencies: []\n",
    )
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    assert "channel 'https://conda.invalid/some-channel' is unreachable" in error_line(proc)
    _assert_nothing_written(ws)


def test_gpu_variant_without_cuda(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    proc = run_cli("lock", "nocuda", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "variant 'nocuda'" in line and "__cuda" in line and "cuda = " in line
    _assert_nothing_written(ws)


def test_guard_refuses_pandas_3_with_old_pyspark(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    write(
        ws / "environments/extra.yml",
        "dependencies:\n  - pyspark 3.5.7\n  - pip:\n    - pandas>=3,<3.1\n",
    )
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "pandas 3" in line and "pyspark 3.5.7" in line and "--allow-unsupported" in line
    _assert_nothing_written(ws)
    allowed = run_cli("lock", "app", "--allow-unsupported", "--json", cwd=ws, check=True)
    assert "pandas 3" in json.loads(allowed.stdout)[0]["warnings"][0]
    lock = parse_conda_lock_file(ws / "locks/app.conda-lock.yml")
    assert {"pyspark", "pandas"} <= {p.name for p in lock.package}
