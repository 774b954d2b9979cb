"""Locking end to end: the real rattler solver on the local channel, pip against PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rattler
from conda_lock.lockfile import parse_conda_lock_file

from tests.support.channel import (
    SECOND_CHANNEL_SIX,
    SIX_VERSION,
    distributions_channel,
    second_channel,
)
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


def test_channel_order_across_overlays_follows_conda_lock(
    local_channel: Path, tmp_path: Path
) -> None:
    """Three overlays, [main], [second, main], [main]: the second channel is searched first."""
    main, second = local_channel.as_uri(), second_channel(tmp_path / "second").as_uri()
    ws = tmp_path / "ws"
    write(ws / "environments/variants.toml", '[variants.v]\nfiles = ["a.yml", "b.yml", "c.yml"]\n')
    write(ws / "environments/a.yml", f"channels: [{main}]\ndependencies: [python 3.11.*, six]\n")
    write(ws / "environments/b.yml", f"channels: [{second}, {main}]\ndependencies: []\n")
    write(ws / "environments/c.yml", f"channels: [{main}]\ndependencies: [pip]\n")
    (ws / "locks").mkdir()

    def locked_six() -> tuple[str, str, list[str]]:
        run_cli("lock", "v", cwd=ws, check=True)
        lock = parse_conda_lock_file(ws / "locks/v.conda-lock.yml")
        six = next(p for p in lock.package if p.name == "six")
        return six.url, six.version, [c.url for c in lock.metadata.channels]

    url, version, channels = locked_six()
    assert channels == [second, main]
    # Strict priority: the first channel that has six wins, though the other has a newer one.
    assert url.startswith(second + "/noarch/") and version == SECOND_CHANNEL_SIX
    # The other way round, [second], [main, second], [second]: main wins.
    write(ws / "environments/b.yml", f"channels: [{main}, {second}]\ndependencies: []\n")
    write(ws / "environments/a.yml", f"channels: [{second}]\ndependencies: [python 3.11.*, six]\n")
    write(ws / "environments/c.yml", f"channels: [{second}]\ndependencies: [pip]\n")
    url, version, channels = locked_six()
    assert channels == [main, second]
    assert url.startswith(main + "/noarch/") and version == SIX_VERSION


def test_pip_markers_and_wheels_follow_each_target(local_channel: Path, tmp_path: Path) -> None:
    """One variant for linux-64 and linux-aarch64: markers are the target's, not the host's."""
    ws = tmp_path / "ws"
    write(
        ws / "environments/variants.toml",
        '[variants.two]\nfiles = ["a.yml"]\nplatforms = ["linux-64", "linux-aarch64"]\n',
    )
    write(
        ws / "environments/a.yml",
        f"""\
        channels: [{local_channel.as_uri()}]
        dependencies:
          - python 3.11.*
          - pip
          - pip:
              - six; platform_machine == 'aarch64'
              - markupsafe; python_version >= '3.11'
              - tomli; python_version < '3.11'
        """,
    )
    (ws / "locks").mkdir()
    run_cli("lock", "two", cwd=ws, check=True)
    lock = parse_conda_lock_file(ws / "locks/two.conda-lock.yml")
    pip = {
        plat: {p.name: p for p in lock.package if p.manager == "pip" and p.platform == plat}
        for plat in ("linux-64", "linux-aarch64")
    }
    assert set(pip["linux-aarch64"]) == {"six", "markupsafe"}
    assert set(pip["linux-64"]) == {"markupsafe"}
    for plat, machine in (("linux-64", "x86_64"), ("linux-aarch64", "aarch64")):
        wheel = pip[plat]["markupsafe"].url.rsplit("/", 1)[-1]
        # A native wheel of the locked Python, for the target machine only.
        assert "-cp311-cp311-" in wheel and wheel.endswith(f"_{machine}.whl"), wheel
        assert "manylinux" in wheel and len(pip[plat]["markupsafe"].hash.sha256) == 64
    conda = {(p.name, p.platform): p for p in lock.package if p.manager == "conda"}
    assert "/linux-aarch64/python-" in conda[("python", "linux-aarch64")].url


def test_pip_never_resolves_what_conda_packages_install(
    local_channel: Path, tmp_path: Path
) -> None:
    """Overlap found from the conda packages' .dist-info, RAPIDS wheel names included."""
    dists = distributions_channel(tmp_path / "dists").as_uri()
    ws = tmp_path / "ws"
    write(ws / "environments/variants.toml", '[variants.v]\nfiles = ["a.yml"]\n')
    write(
        ws / "environments/a.yml",
        f"""\
        channels: [{dists}, {local_channel.as_uri()}]
        dependencies:
          - python 3.11.*
          - pip
          - python-tzdata
          - cudf
          - requests
          - pip:
              - tzdata
              - cudf-cu12>=26.8
              - pandas==2.2.3            # needs tzdata, which python-tzdata installs
              - requests-toolbelt==1.0.0 # needs requests, and PyPI's requests needs urllib3
        """,
    )
    (ws / "locks").mkdir()
    result = json.loads(run_cli("lock", "v", "--json", cwd=ws, check=True).stdout)[0]
    assert sorted(result["skipped_pip"]) == ["cudf-cu12>=26.8", "tzdata"]
    lock = parse_conda_lock_file(ws / "locks/v.conda-lock.yml")
    pip = {p.name for p in lock.package if p.manager == "pip"}
    assert {"pandas", "numpy", "requests-toolbelt"} <= pip
    # Neither what conda installs nor what PyPI's requests would have pulled in.
    assert not pip & {"tzdata", "cudf", "cudf-cu12", "requests", "urllib3", "idna", "certifi"}
    # A pip pin that the conda package does not meet is an error, not a silent skip.
    text = (ws / "environments/a.yml").read_text()
    write(ws / "environments/a.yml", text.replace("- tzdata\n", "- tzdata>=2099\n"))
    proc = run_cli("lock", "v", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "'tzdata>=2099' is provided by the conda package python-tzdata" in line, line


def test_pip_find_links_reach_the_resolver(
    local_channel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PIP_FIND_LINKS (pip's setting) is passed on to uv; a local wheel gets a warning."""
    from bundler.solve.piplock import _stand_in_wheel

    links = tmp_path / "links"
    links.mkdir()
    wheel = _stand_in_wheel(links, "bundler-probe-dist", "1.0")
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    ws = make_workspace(tmp_path / "ws", local_channel)
    write(ws / "environments/extra.yml", "dependencies:\n  - pip:\n    - bundler-probe-dist\n")
    proc = run_cli("lock", "app", cwd=ws, check=True)
    assert "resolved to a local file" in proc.stderr, proc.stderr
    lock = parse_conda_lock_file(ws / "locks/app.conda-lock.yml")
    probe = next(p for p in lock.package if p.name == "bundler-probe-dist")
    assert probe.manager == "pip" and probe.url == wheel.as_uri()


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
    write(
        ws / "environments/extra.yml",
        f"channels:\n  - {missing}\n  - {local_channel.as_uri()}\ndependencies: []\n",
    )
    proc = run_cli("lock", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert f"channel {missing} is unreachable" in line
    _assert_nothing_written(ws)


def test_named_channel_offline_is_named(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, local_channel)
    write(
        ws / "environments/extra.yml",
        "channels:\n  - https://conda.invalid/some-channel\n"
        f"  - {local_channel.as_uri()}\ndependencies: []\n",
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
