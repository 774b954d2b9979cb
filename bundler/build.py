"""Build a conda prefix from a variant's lock: conda records, then pip wheels.

Conda packages go through ``rattler.install`` (hashes verified, the shared rattler
package cache, offline once cached).  pip entries are downloaded once into
bundler's wheel cache, checked against the locked sha256, and installed with
``pip --require-hashes --no-deps --no-index`` into the prefix's own Python.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bundler.atomic import atomic_write
from bundler.errors import BuildError, SubprocessError
from bundler.events import NullReporter, Reporter
from bundler.lockfile import LockedPackage, locked_packages, require_fresh
from bundler.proc import run
from bundler.variants import Variant

# Build prefixes are padded to this length so that conda-unpack can later write a
# longer destination path into binary files (conda-build pads for the same reason).
PREFIX_LENGTH = 160


def cache_root() -> Path:
    env = os.environ.get("BUNDLER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "bundler"


def host_platform() -> str:
    import rattler

    return str(rattler.Platform.current())


@dataclass(frozen=True)
class BuildResult:
    prefix: Path
    platform: str
    python_version: str | None
    site_packages: Path | None
    packages: tuple[LockedPackage, ...]


def build_prefix_path(variant: str, platform: str) -> Path:
    """A fixed, padded build location: the same lock gives the same prefix string.

    Files in the packed archive (and conda-unpack's records) hold the build prefix,
    so a fixed path is what makes two packs of one lock byte-identical.
    """
    base = Path(tempfile.gettempdir()) / f"bundler-{os.getuid()}" / "prefix"
    name = f"{variant}-{platform}_"
    pad = max(0, PREFIX_LENGTH - len(str(base)) - len(name) - 1)
    return base / (name + "p" * pad)


@contextmanager
def locked_dir(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a sibling lock file) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name[:40]}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _conda_records(variant: Variant, platform: str) -> list[object]:
    import rattler

    try:
        lock = rattler.LockFile.from_path(variant.lock_path)
        env = lock.default_environment()
        if env is None:
            raise BuildError(f"{variant.lock_path}: no environment in lock", "run 'bundler lock'")
        lock_platform = next((p for p in lock.platforms() if p.name == platform), None)
        if lock_platform is None:
            raise BuildError(f"{variant.lock_path}: no packages for {platform}", "re-lock")
        records = env.conda_repodata_records_for_platform(lock_platform)
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(
            f"{variant.lock_path}: rattler cannot read the lock: {exc}",
            f"run 'bundler lock {variant.name}'",
        ) from exc
    return list(records or [])


def build_prefix(
    variant: Variant,
    platform: str,
    prefix: Path,
    *,
    cache_dir: Path | None = None,
    reporter: Reporter | None = None,
) -> BuildResult:
    """Install the lock of ``variant`` for ``platform`` into the empty ``prefix``."""
    import rattler

    reporter = reporter or NullReporter()
    require_fresh(variant)
    if platform not in variant.platforms:
        raise BuildError(
            f"variant '{variant.name}' is not locked for {platform}",
            f"locked platforms: {', '.join(variant.platforms)}",
        )
    packages = locked_packages(variant, platform)
    pip_pkgs = [p for p in packages if p.manager == "pip"]
    if pip_pkgs and platform != host_platform():
        raise BuildError(
            f"variant '{variant.name}': pip packages cannot be installed for {platform} "
            f"on this {host_platform()} machine",
            f"pack it on a {platform} machine",
        )
    cache = cache_dir or cache_root()
    if prefix.exists() and any(prefix.iterdir()):
        raise BuildError(f"build prefix {prefix} is not empty", "remove it first")
    records = _conda_records(variant, platform)
    reporter.step(f"installing {len(records)} conda packages")
    try:
        asyncio.run(
            rattler.install(
                records,  # type: ignore[arg-type]
                target_prefix=prefix,
                cache_dir=cache / "pkgs",
                platform=rattler.Platform(platform),
                execute_link_scripts=False,
                show_progress=False,
                reporter=_InstallProgress(reporter, len(records)),
            )
        )
    except Exception as exc:
        raise BuildError(
            f"variant '{variant.name}': installing conda packages failed: "
            f"{' '.join(str(exc).split())[:300]}",
            "check the network, or that the lock's channels still serve these files",
        ) from exc
    python = next((p for p in packages if p.name == "python" and p.manager == "conda"), None)
    py_version = python.version if python else None
    site = _site_packages(prefix, py_version)
    if pip_pkgs:
        _install_pip(variant, prefix, pip_pkgs, cache / "wheels", reporter)
    return BuildResult(
        prefix=prefix,
        platform=platform,
        python_version=py_version,
        site_packages=site,
        packages=tuple(packages),
    )


class _InstallProgress:
    """rattler's installer callbacks -> our reporter (one tick per package linked)."""

    TASK = "installing conda packages"

    def __init__(self, reporter: Reporter, total: int) -> None:
        self.reporter = reporter
        self.total = total
        self.done = 0

    def on_transaction_start(self, total_operations: int) -> None:
        self.total = total_operations
        self.reporter.progress(self.TASK, 0, total_operations)

    def on_transaction_operation_complete(self, operation: int) -> None:
        self.done += 1
        self.reporter.progress(self.TASK, self.done, self.total)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):  # every other callback: nothing to show
            return lambda *args, **kwargs: 0
        raise AttributeError(name)


def _site_packages(prefix: Path, py_version: str | None) -> Path | None:
    if not py_version:
        return None
    mm = ".".join(py_version.split(".")[:2])
    return prefix / "lib" / f"python{mm}" / "site-packages"


def fetch_wheel(pkg: LockedPackage, cache: Path) -> Path:
    """The wheel of ``pkg`` from the cache, downloading and checking it when absent."""
    name = os.path.basename(unquote(urlparse(pkg.url).path))
    dest = cache / pkg.sha256[:2] / pkg.sha256 / name
    if dest.is_file():
        return dest
    digest = hashlib.sha256()
    try:
        with atomic_write(dest) as tmp, open(tmp, "wb") as out:
            if pkg.url.startswith("file://"):
                src = open(unquote(urlparse(pkg.url).path), "rb")  # noqa: SIM115
            else:
                src = urllib.request.urlopen(pkg.url, timeout=60)
            with src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != pkg.sha256:
                raise BuildError(
                    f"pip package {pkg.name} {pkg.version}: sha256 mismatch for {pkg.url}",
                    "the index serves a different file than the lock records; re-lock",
                )
    except OSError as exc:
        raise BuildError(
            f"pip package {pkg.name} {pkg.version}: download of {pkg.url} failed: {exc}",
            "check the network; once downloaded, wheels are cached",
        ) from exc
    return dest


def _install_pip(
    variant: Variant, prefix: Path, pkgs: list[LockedPackage], cache: Path, reporter: Reporter
) -> None:
    lines = []
    for i, pkg in enumerate(pkgs):
        reporter.progress("fetching wheels", i, len(pkgs))
        wheel = fetch_wheel(pkg, cache)
        lines.append(f"{wheel} --hash=sha256:{pkg.sha256}")
    reporter.progress("fetching wheels", len(pkgs), len(pkgs))
    reporter.step(f"pip install of {len(pkgs)} locked wheels (hashes required)")
    python = prefix / "bin" / "python"
    if not python.exists():
        raise BuildError(f"variant '{variant.name}': pip packages need python in the lock")
    with tempfile.TemporaryDirectory(prefix="bundler-req-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(lines) + "\n")
        try:
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(python),
                    "install",
                    "--no-deps",
                    "--no-index",
                    "--require-hashes",
                    "--no-compile",
                    "--no-warn-script-location",
                    "--disable-pip-version-check",
                    "--no-cache-dir",
                    "-r",
                    str(req),
                ],
                what=f"pip install for variant '{variant.name}'",
                env={"PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1"},
                reporter=reporter,
            )
        except SubprocessError as exc:
            raise BuildError(exc.message, "see the pip output above") from exc


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
