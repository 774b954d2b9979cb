"""Whether an environment is a CUDA environment, and which CUDA, from what it holds.

``cuda =`` in variants.toml is only the ``__cuda`` virtual package the solver sees.  What
makes an environment CUDA is its content: RAPIDS from PyPI brings CUDA as
``nvidia-*-cu12`` wheels and no conda ``cuda-version`` package at all.  So the content
decides, the same way for a lock (``from_packages``: before anything is built) and for
an installed prefix (``from_paths``: its file list):

====================================  ====================  =================
evidence                              example               CUDA recorded
====================================  ====================  =================
conda ``cuda-version``                ``cuda-version 12.9``  12.9
conda ``cuda-cudart``                 ``12.9.79``            12.9
pip ``nvidia-cuda-runtime-cuNN``      ``12.9.79``            12.9
``libcudart.so.X.Y.Z`` in the prefix  ``libcudart.so.12.9.79``  12.9
``libcudart.so.X`` in the prefix      ``libcudart.so.12``    12
any ``*-cuNN`` / ``*-cudaNNx`` wheel  ``nvidia-cublas-cu12``  12
``lib/libcudadevrt.a``                                      (unknown)
====================================  ====================  =================

The first row that matches gives the version; the others only confirm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

_CONDA_VERSION_PACKAGES = ("cuda-version", "cuda-cudart")
_RUNTIME_WHEEL = re.compile(r"^nvidia-cuda-runtime-cu(\d+)$")
_CUDA_WHEEL = re.compile(r"^(?:nvidia-.+|.+)-cu(?:da)?(\d+)x?$")
_CUDART = re.compile(r"(?:^|/)libcudart\.so\.(\d+)(?:\.(\d+))?[.\d]*$")
_CONDA_META = re.compile(r"^conda-meta/(.+)-([^-]+)-([^-]+)\.json$")
_DIST_INFO = re.compile(r"^lib/python[^/]+/site-packages/([^/]+?)-([^-/]+)\.dist-info/")


@dataclass(frozen=True)
class CudaContent:
    """An environment's CUDA: the version it carries and what showed it."""

    version: str | None  # "12.9", "12" when only the major is known, None when unknown
    evidence: str  # "cuda-version 12.9", "nvidia-cublas-cu12", "lib/libcudart.so.12"


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _rank(found: Iterable[tuple[int, CudaContent]]) -> CudaContent | None:
    """The best evidence (lowest rank); None when there is none."""
    best = min(found, key=lambda item: item[0], default=None)
    return best[1] if best else None


def from_packages(packages: Iterable[tuple[str, str, str]]) -> CudaContent | None:
    """The CUDA of ``(name, version, manager)`` records: a lock's, or a manifest's."""
    found: list[tuple[int, CudaContent]] = []
    for name, version, manager in packages:
        if manager == "conda" and name in _CONDA_VERSION_PACKAGES:
            rank = _CONDA_VERSION_PACKAGES.index(name)
            found.append((rank, CudaContent(_major_minor(version), f"{name} {version}")))
            continue
        if manager != "pip":
            continue
        dist = str(canonicalize_name(name))
        if _RUNTIME_WHEEL.match(dist):
            found.append((2, CudaContent(_major_minor(version), f"{dist} {version}")))
        elif match := _CUDA_WHEEL.match(dist):
            found.append((5, CudaContent(match.group(1), dist)))
    return _rank(found)


def from_paths(paths: Iterable[str]) -> CudaContent | None:
    """The CUDA of an installed prefix, from its file list (relative, POSIX)."""
    found: list[tuple[int, CudaContent]] = []
    for path in paths:
        if meta := _CONDA_META.match(path):
            name, version = meta.group(1), meta.group(2)
            if name in _CONDA_VERSION_PACKAGES:
                rank = _CONDA_VERSION_PACKAGES.index(name)
                found.append((rank, CudaContent(_major_minor(version), f"{name} {version}")))
        elif dist := _DIST_INFO.match(path):
            if path.endswith("/METADATA"):  # one file per distribution is enough
                name, version = str(canonicalize_name(dist.group(1))), dist.group(2)
                found.extend(_wheel(name, version))
        elif cudart := _CUDART.search(path):
            major, minor = cudart.group(1), cudart.group(2)
            version = f"{major}.{minor}" if minor else major
            found.append((3 if minor else 4, CudaContent(version, path)))
        elif path == "lib/libcudadevrt.a":
            found.append((6, CudaContent(None, path)))
    return _rank(found)


def _wheel(name: str, version: str) -> list[tuple[int, CudaContent]]:
    if _RUNTIME_WHEEL.match(name):
        return [(2, CudaContent(_major_minor(version), f"{name} {version}"))]
    if match := _CUDA_WHEEL.match(name):
        return [(5, CudaContent(match.group(1), name))]
    return []
