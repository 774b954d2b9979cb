"""Unit tests for the conda-lock v1 writer and lock state."""

from __future__ import annotations

from pathlib import Path

from conda_lock.lockfile import parse_conda_lock_file

from bundler.solve.lockfile import (
    LockedPackage,
    LockState,
    depends_to_dict,
    lock_state,
    locked_packages,
    render_lock,
    write_atomic,
)
from bundler.solve.piplock import platform_tags
from bundler.variants import load_workspace
from tests.support.workspace import write

PKGS = [
    LockedPackage(
        name="python",
        version="3.11.7",
        manager="conda",
        platform="linux-64",
        url="https://conda.anaconda.org/conda-forge/linux-64/python-3.11.7-h1_0.conda",
        sha256="a" * 64,
        md5="b" * 32,
        build="h1_0",
        dependencies={"libzlib": ">=1.3"},
    ),
    LockedPackage(
        name="numpy",
        version="2.1.0",
        manager="pip",
        platform="linux-64",
        url="https://files.example/numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        sha256="c" * 64,
    ),
]


def _variant(tmp_path: Path):  # type: ignore[no-untyped-def]
    write(tmp_path / "environments/variants.toml", '[variants.v]\nfiles = ["a.yml"]\n')
    write(
        tmp_path / "environments/a.yml",
        "channels: [conda-forge]\ndependencies:\n  - python 3.11.*\n  - pip:\n    - numpy\n",
    )
    return load_workspace(tmp_path).get("v")


def test_conda_lock_parses_what_we_write(tmp_path: Path) -> None:
    v = _variant(tmp_path)
    write_atomic(v.lock_path, render_lock(v, list(reversed(PKGS))))
    lock = parse_conda_lock_file(v.lock_path)
    by_name = {p.name: p for p in lock.package}
    assert set(by_name) == {"python", "numpy"}
    assert by_name["python"].manager == "conda"
    assert by_name["python"].hash.md5 == "b" * 32
    assert by_name["numpy"].manager == "pip"
    assert by_name["numpy"].hash.sha256 == "c" * 64
    assert lock.metadata.platforms == ["linux-64"]
    assert lock.metadata.sources == ["../environments/a.yml"]
    assert lock.metadata.custom_metadata is not None
    assert lock.metadata.custom_metadata["bundler_inputs_hash"] == v.inputs_hash()


def test_render_is_deterministic_and_sorted(tmp_path: Path) -> None:
    v = _variant(tmp_path)
    text = render_lock(v, PKGS)
    assert text == render_lock(v, list(reversed(PKGS)))
    assert text.index("name: python") < text.index("name: numpy")  # conda before pip


def test_lock_state_transitions(tmp_path: Path) -> None:
    v = _variant(tmp_path)
    assert lock_state(v) is LockState.MISSING
    write_atomic(v.lock_path, render_lock(v, PKGS))
    assert lock_state(v) is LockState.FRESH
    assert [p.name for p in locked_packages(v, "linux-64")] == ["python", "numpy"]
    write(
        tmp_path / "environments/a.yml",
        "channels: [conda-forge]\ndependencies:\n  - python 3.12.*\n",
    )
    assert lock_state(load_workspace(tmp_path).get("v")) is LockState.STALE
    assert list(v.lock_path.parent.glob(".*tmp")) == []


def test_depends_to_dict_joins_repeated_names() -> None:
    assert depends_to_dict(["python >=3.9", "libzlib >=1.3,<2", "python <3.13", "tzdata"]) == {
        "python": ">=3.9,<3.13",
        "libzlib": ">=1.3,<2",
        "tzdata": "*",
    }


def test_pip_platform_tags_follow_glibc() -> None:
    tags = platform_tags("linux-64", "2.28")
    assert tags[0] == "manylinux_2_28_x86_64"
    assert "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert "manylinux_2_29_x86_64" not in tags
    assert platform_tags("linux-aarch64", "2.17")[0] == "manylinux_2_17_aarch64"
