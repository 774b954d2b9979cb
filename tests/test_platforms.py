"""The one platform table and the names each consumer derives from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler import platforms
from bundler.errors import SolveError
from bundler.platforms import (
    DEFAULT_PLATFORM,
    DEFAULT_PLATFORMS,
    KNOWN_PLATFORMS,
    PLATFORMS,
    choose_platform,
)
from bundler.solve.lock import virtual_packages
from bundler.solve.piplock import platform_tags, uv_platform
from bundler.variants import Variant


def test_every_platform_is_named_consistently() -> None:
    assert set(DEFAULT_PLATFORMS) <= set(KNOWN_PLATFORMS) == set(PLATFORMS)
    assert DEFAULT_PLATFORMS == (DEFAULT_PLATFORM,) and PLATFORMS[DEFAULT_PLATFORM].oci_arch
    for name, p in PLATFORMS.items():
        assert p.subdir == name and name.startswith(p.system)
        assert bool(p.oci_arch) == (p.system == "linux")  # images are Linux only
        assert bool(p.macos) == (p.system == "osx")


@pytest.mark.parametrize(
    ("platform", "uv", "tag"),
    [
        ("linux-64", "x86_64-manylinux_2_28", "manylinux_2_28_x86_64"),
        ("linux-aarch64", "aarch64-manylinux_2_28", "manylinux_2_28_aarch64"),
        ("osx-arm64", "aarch64-apple-darwin", "macosx_11_0_arm64"),
        ("win-64", "x86_64-pc-windows-msvc", "win_amd64"),
    ],
)
def test_pip_targets_come_from_the_table(platform: str, uv: str, tag: str) -> None:
    assert uv_platform(platform) == uv
    assert platform_tags(platform, macos=PLATFORMS[platform].macos)[0] == tag


def test_a_platform_uv_cannot_target_is_one_line() -> None:
    with pytest.raises(SolveError, match="linux-ppc64le: uv has no target"):
        uv_platform("linux-ppc64le")


def test_the_solver_sees_the_tables_machine_and_macos(tmp_path: Path) -> None:
    variant = Variant("v", tmp_path, (), ("osx-64",), (), (), ())
    packages = dict((n, (v, b)) for n, v, b in virtual_packages(variant, "osx-64"))
    assert packages["__osx"] == ("10.15", "0")
    assert packages["__archspec"] == ("1", "x86_64")


def test_the_platform_a_command_works_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """--platform, else this machine's when the variant lists it, else the variant's first."""
    monkeypatch.setattr(platforms, "host_platform", lambda: "linux-aarch64")
    two = ("linux-64", "linux-aarch64")
    assert choose_platform(two) == "linux-aarch64"
    assert choose_platform(two, "linux-64") == "linux-64"
    assert choose_platform(("osx-arm64", "linux-64")) == "osx-arm64"
    assert choose_platform(("win-64",), "osx-64") == "osx-64"  # taken as given

    def no_host() -> str:
        raise AssertionError("one listed platform needs no host")

    monkeypatch.setattr(platforms, "host_platform", no_host)
    assert choose_platform(("linux-64",)) == "linux-64"
