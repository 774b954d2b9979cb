"""Session fixtures shared by the integration tests: a locked workspace and its archive."""

from __future__ import annotations

import dataclasses
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
from tests.support.shared import once_per_run
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
    """The test workspace with its ``app``, ``gpuapp`` and ``sparkapp`` variants locked.

    One per run, shared by the xdist workers: treat it as read-only.
    """

    def lock(root: Path) -> None:
        make_workspace(root, local_channel)
        lock_variants(load_workspace(root), LockOptions(variants=("app", "gpuapp", "sparkapp")))

    return once_per_run(tmp_path_factory, "ws", lock)


@pytest.fixture(scope="session")
def packed_archive(
    locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """``app`` packed to tar.gz, an executor archive (the default): (path, manifest).

    One per run, shared by the xdist workers: treat both as read-only.
    """
    return _shared_pack(
        tmp_path_factory, "dist", PackOptions(workspace=locked_workspace, variant="app")
    )


@pytest.fixture(scope="session")
def full_archive(
    locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """``app`` packed with ``full=True`` (a driver environment): (path, manifest).

    One per run, shared by the xdist workers: treat both as read-only.
    """
    options = PackOptions(workspace=locked_workspace, variant="app", full=True)
    return _shared_pack(tmp_path_factory, "dist-full", options)


def _shared_pack(
    factory: pytest.TempPathFactory, name: str, options: PackOptions
) -> tuple[Path, dict[str, Any]]:
    """``options`` packed to ``<run root>/<name>/app-linux-64.tar.gz`` once per run."""
    filename = "app-linux-64.tar.gz"

    def pack(dest: Path) -> None:
        result = pack_archive(dataclasses.replace(options, output=dest / filename))
        assert result.manifest_path == dest / f"{filename}.json", result.manifest_path

    out = once_per_run(factory, name, pack) / filename
    return out, json.loads(out.with_name(f"{filename}.json").read_text())


def copy_workspace(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("dist"))
    return dest
