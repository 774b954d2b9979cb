"""Session fixtures shared by the integration tests: a locked workspace and its archive."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bundler.pipeline import PackOptions, pack_archive
from bundler.solve.lock import LockOptions, lock_variants
from bundler.variants import load_workspace
from tests.support.channel import cache_root
from tests.support.workspace import make_workspace


@pytest.fixture(scope="session", autouse=True)
def bundler_cache() -> Iterator[Path]:
    """Package and wheel caches shared between test runs (downloads happen once)."""
    path = cache_root() / "bundler-cache"
    old = os.environ.get("BUNDLER_CACHE_DIR")
    os.environ["BUNDLER_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("BUNDLER_CACHE_DIR", None)
    else:
        os.environ["BUNDLER_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def locked_workspace(local_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test workspace with its ``app``, ``gpuapp`` and ``sparkapp`` variants locked."""
    root = make_workspace(tmp_path_factory.mktemp("ws"), local_channel)
    lock_variants(load_workspace(root), LockOptions(variants=("app", "gpuapp", "sparkapp")))
    return root


@pytest.fixture(scope="session")
def packed_archive(
    locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """``app`` packed to tar.gz, an executor archive (the default): (path, manifest).

    Treat both as read-only.
    """
    out = tmp_path_factory.mktemp("dist") / "app-linux-64.tar.gz"
    result = pack_archive(PackOptions(workspace=locked_workspace, variant="app", output=out))
    return result.path, json.loads(result.manifest_path.read_text())


@pytest.fixture(scope="session")
def full_archive(
    locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """``app`` packed with ``full=True`` (a driver environment): (path, manifest)."""
    out = tmp_path_factory.mktemp("dist-full") / "app-linux-64.tar.gz"
    options = PackOptions(workspace=locked_workspace, variant="app", output=out, full=True)
    result = pack_archive(options)
    return result.path, json.loads(result.manifest_path.read_text())


def copy_workspace(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("dist"))
    return dest
