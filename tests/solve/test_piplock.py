"""Unit tests: the pip resolution's plan (target platform, wheel choice, conda overlap)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bundler.errors import SolveError
from bundler.events import RecordingReporter
from bundler.solve.distnames import Provided
from bundler.solve.piplock import (
    _index_env,
    _locked,
    _split_requirements,
    _stand_in_constraints,
    _uv_reason,
    supported_tags,
    uv_platform,
)

FILES = "https://files.example/packages"


def test_uv_platform_follows_conda_platform_and_glibc() -> None:
    assert uv_platform("linux-64") == "x86_64-manylinux_2_28"
    assert uv_platform("linux-aarch64", "2.28") == "aarch64-manylinux_2_28"
    assert uv_platform("linux-64", "2.17") == "x86_64-manylinux_2_17"
    assert uv_platform("linux-64", "2.30") == "x86_64-manylinux_2_28"  # newest level not above
    assert uv_platform("linux-aarch64", "2.45") == "aarch64-manylinux_2_40"
    assert uv_platform("osx-arm64") == "aarch64-apple-darwin"
    assert uv_platform("win-64") == "x86_64-pc-windows-msvc"
    with pytest.raises(SolveError, match=r"glibc 2\.17 or newer"):
        uv_platform("linux-64", "2.12")
    with pytest.raises(SolveError, match="linux-ppc64le: uv has no target"):
        uv_platform("linux-ppc64le")


def test_pip_index_settings_reach_uv_unless_uv_has_its_own() -> None:
    env = {"PIP_INDEX_URL": "https://mirror/simple", "PIP_FIND_LINKS": "/wheels", "HOME": "/h"}
    assert _index_env(env) == {"UV_INDEX_URL": "https://mirror/simple", "UV_FIND_LINKS": "/wheels"}
    env["UV_INDEX_URL"] = "https://other/simple"
    assert _index_env(env) == {"UV_FIND_LINKS": "/wheels"}
    assert _index_env({}) == {}


def _entry(name: str, version: str, *files: str, sha: bool = True) -> dict[str, Any]:
    hashes = {"sha256": "ab" * 32} if sha else {}
    return {
        "name": name,
        "version": version,
        "wheels": [{"url": f"{FILES}/{f}", "hashes": hashes} for f in files],
    }


MARKUPSAFE = _entry(
    "MarkupSafe",
    "3.0.4",
    "markupsafe-3.0.4-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
    "markupsafe-3.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    "markupsafe-3.0.4-cp37-abi3-manylinux_2_17_x86_64.whl",
    "markupsafe-3.0.4-py3-none-any.whl",
    "markupsafe-3.0.4-cp311-cp311-manylinux_2_34_x86_64.whl",  # too new for glibc 2.28
)


@pytest.mark.parametrize(
    ("platform", "python", "chosen"),
    [
        ("linux-64", "3.11.7", "cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64"),
        ("linux-aarch64", "3.11.7", "cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64"),
        ("linux-64", "3.12.1", "cp37-abi3-manylinux_2_17_x86_64"),
        ("osx-arm64", "3.11.7", "py3-none-any"),
    ],
)
def test_locked_wheel_is_the_best_for_the_target(platform: str, python: str, chosen: str) -> None:
    best = {t: i for i, t in enumerate(supported_tags(platform, python, "2.28", "11.0"))}
    pkg = _locked(MARKUPSAFE, best, Path("/tmp"), "variant 'v'")
    assert pkg.name == "markupsafe" and pkg.version == "3.0.4"
    assert pkg.url == f"{FILES}/markupsafe-3.0.4-{chosen}.whl"
    assert pkg.sha256 == "ab" * 32


def test_locked_wheel_errors_name_the_package() -> None:
    best = {t: i for i, t in enumerate(supported_tags("linux-64", "3.11", "2.28"))}
    only_arm = _entry("foo", "1.0", "foo-1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    with pytest.raises(SolveError, match=r"uv locked foo 1\.0 without a wheel for this platform"):
        _locked(only_arm, best, Path("/tmp"), "variant 'v' (linux-64)")
    no_hash = _entry("bar", "2.0", "bar-2.0-py3-none-any.whl", sha=False)
    with pytest.raises(SolveError, match=r"no sha256 for bar \("):
        _locked(no_hash, best, Path("/tmp"), "variant 'v' (linux-64)")
    local = {"name": "baz", "version": "1", "wheels": [{"path": "w/baz-1-py3-none-any.whl",
             "hashes": {"sha256": "cd" * 32}}]}  # fmt: skip
    assert _locked(local, best, Path("/lock"), "v").url == "file:///lock/w/baz-1-py3-none-any.whl"


def test_requirements_conda_provides_are_skipped_or_refused() -> None:
    provided = {
        "tzdata": Provided("2025.2", "python-tzdata"),
        "cudf": Provided("26.8.0", "cudf"),
    }
    reporter = RecordingReporter()
    wanted, skipped = _split_requirements(
        ["pandas>=2", "tzdata", "cudf-cu12==26.8.*", "tzdata>=2099; python_version < '3'"],
        "v",
        provided,
        reporter,
    )
    assert wanted == ["pandas>=2"]
    assert skipped == ["tzdata", "cudf-cu12==26.8.*", "tzdata>=2099; python_version < '3'"]
    assert "conda package python-tzdata" in reporter.warnings[0]
    with pytest.raises(SolveError, match=r"'cudf-cu12<26' is provided by the conda package cudf"):
        _split_requirements(["cudf-cu12<26"], "v", provided, reporter)


def test_stand_ins_are_real_wheels_of_the_conda_versions(tmp_path: Path) -> None:
    provided = {
        "cudf": Provided("26.8.0", "cudf"),
        "typing-extensions": Provided("4.12.2", "typing_extensions"),
        "openssh": Provided("9.9p1", "openssh"),  # not PEP 440: left unpinned
    }
    lines = _stand_in_constraints(tmp_path / "w", provided, cuda_major=12)
    names = [line.split(" @ ")[0] for line in lines]
    assert names == [
        "cudf", "cudf-cu12", "cudf-cuda12x",
        "typing-extensions", "typing-extensions-cu12", "typing-extensions-cuda12x",
    ]  # fmt: skip
    assert lines[0].endswith("/w/cudf-26.8.0-py3-none-any.whl")
    # pip installs them (RECORD and metadata valid), and they install nothing else.
    wheels = [line.split(" @ file://")[1] for line in lines[:2]]
    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", "--target", str(target), *wheels],
        check=True, env={"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = {
        d.metadata["Name"]: d.version for d in importlib.metadata.distributions(path=[str(target)])
    }
    assert found == {"cudf": "26.8.0", "cudf-cu12": "26.8.0"}
    assert sorted(p.name for p in target.iterdir()) == [
        "cudf-26.8.0.dist-info",
        "cudf_cu12-26.8.0.dist-info",
    ]


def test_uv_reason_is_one_line() -> None:
    output = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because there is no version of numpy==0.0.1 and you require numpy==0.0.1, "
        "we can conclude that your requirements are unsatisfiable.\n"
    )
    assert _uv_reason(output).startswith("Because there is no version of numpy==0.0.1")
    assert _uv_reason("error: Failed to fetch: `https://x/simple/foo/`\n") == (
        "Failed to fetch: `https://x/simple/foo/`"
    )
