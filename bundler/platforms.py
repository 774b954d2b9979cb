"""The one platform table: each conda platform (subdir) and its names elsewhere.

A conda platform is what variants, locks and archives are for (``linux-64``); the
solver's ``__archspec``, wheel tags, uv's ``--python-platform`` and container images
each name the same machine differently.  Adding a platform means one row here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Platform:
    subdir: str  # conda's name: linux-64
    system: str  # linux, osx or win
    archspec: str  # the __archspec virtual package's machine
    wheel_arch: str  # the machine in wheel platform tags (manylinux_2_28_x86_64, win_amd64)
    oci_arch: str = ""  # container images (Linux only)
    uv_target: str | None = None  # uv --python-platform; Linux's depends on glibc (piplock)
    macos: str | None = None  # the __osx a target is assumed to have


PLATFORMS = {
    p.subdir: p
    for p in (
        Platform("linux-64", "linux", "x86_64", "x86_64", oci_arch="amd64"),
        Platform("linux-aarch64", "linux", "aarch64", "aarch64", oci_arch="arm64"),
        Platform("linux-ppc64le", "linux", "ppc64le", "ppc64le", oci_arch="ppc64le"),
        Platform("osx-64", "osx", "x86_64", "x86_64", "", "x86_64-apple-darwin", "10.15"),
        Platform("osx-arm64", "osx", "arm64", "arm64", "", "aarch64-apple-darwin", "11.0"),
        Platform("win-64", "win", "x86_64", "amd64", uv_target="x86_64-pc-windows-msvc"),
    )
}
KNOWN_PLATFORMS = tuple(PLATFORMS)
#: What Spark clusters run: a variant's platform when it names none, an image's.
DEFAULT_PLATFORM = "linux-64"
DEFAULT_PLATFORMS = (DEFAULT_PLATFORM,)

#: ``uname -m`` of a machine -> its container image architecture.
MACHINE_OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le"}


def cache_root() -> Path:
    """bundler's cache on this machine: ``$BUNDLER_CACHE_DIR``, else the XDG cache."""
    env = os.environ.get("BUNDLER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "bundler"


def choose_platform(listed: Sequence[str], chosen: str | None = None) -> str:
    """The platform a command works on, given a variant's ``listed`` platforms.

    ``chosen`` (``--platform``) when given; else this machine's when the variant lists
    it (so ``bundler pack`` can install pip wheels here); else the variant's first.
    ``pack``, ``spark-conf``, ``publish`` and ``pyfiles`` agree on the archive's name.
    """
    if chosen:
        return chosen
    if len(listed) == 1:  # no need to ask rattler
        return listed[0]
    host = host_platform()
    return host if host in listed else listed[0]


def host_platform() -> str:
    """This machine's conda platform (rattler's answer)."""
    import rattler

    return str(rattler.Platform.current())
