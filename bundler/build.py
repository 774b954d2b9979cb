"""Build a conda prefix from a variant's lock: conda records, then pip wheels.

Conda packages go through ``rattler.install`` (hashes verified, the shared rattler
package cache, offline once cached).  pip entries are downloaded once into
bundler's wheel cache, checked against the locked sha256, and installed with
``pip --require-hashes --no-deps --no-index`` into the prefix's own Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import stat
import sys
import tempfile
import time
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
from bundler.pkgcache import file_matches, heal_conda_cache
from bundler.platforms import cache_root, host_platform
from bundler.proc import run
from bundler.solve.lockfile import LockedPackage, locked_packages, require_fresh
from bundler.variants import Variant

# Build prefixes are padded to this length so that conda-unpack can later write a
# longer destination path into binary files (conda-build pads for the same reason).
PREFIX_LENGTH = 160
BUILD_ROOT_ENV = "BUNDLER_BUILD_ROOT"
DEFAULT_BUILD_ROOT = "/tmp/bundler-build"  # fixed on purpose: see build_root


@dataclass(frozen=True)
class BuildResult:
    prefix: Path
    platform: str
    python_version: str | None
    site_packages: Path | None
    packages: tuple[LockedPackage, ...]


def build_root() -> Path:
    """Where build prefixes live: ``$BUNDLER_BUILD_ROOT``, else ``/tmp/bundler-build``.

    Not ``$TMPDIR`` and nothing per user: the prefix path ends up inside the archive
    (in ``conda-unpack``'s placeholder list and padded into binaries), so it must be
    the same on every machine for the same lock to give the same bytes.
    """
    return Path(os.environ.get(BUILD_ROOT_ENV) or DEFAULT_BUILD_ROOT)


def build_prefix_path(variant: str, platform: str, root: Path | None = None) -> Path:
    """A fixed, padded build location: the same lock gives the same prefix string.

    Files in the packed archive (and conda-unpack's records) hold the build prefix,
    so a fixed path is what makes two packs of one lock byte-identical, whoever packs.
    """
    base = root or build_root()
    name = f"{variant}-{platform}_"
    pad = max(0, PREFIX_LENGTH - len(str(base)) - len(name) - 1)
    return base / (name + "p" * pad)


@contextmanager
def build_location(prefix: Path, reporter: Reporter | None = None) -> Iterator[Path]:
    """Hold ``prefix`` (see ``build_prefix_path``) empty and ours for the block.

    The build root is shared by every user of the machine, like ``/tmp`` (mode 1777):
    a lock file beside the prefix makes concurrent packs of one variant wait for each
    other, whoever runs them; the prefix is created empty by this process and removed
    afterwards.  A prefix left behind by another user is an error, never reused; one
    left by a pack of ours that was killed is removed once no process (an orphaned
    installer) still uses it.
    """
    root = prefix.parent
    _shared_root(root)
    fd = _open_lock(root / f".{prefix.name[:40]}.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _claim(prefix, reporter or NullReporter())
        try:
            yield prefix
        finally:
            remove_tree(prefix)
    finally:
        os.close(fd)  # releases the lock


def _shared_root(root: Path) -> None:
    hint = (
        f"or set {BUILD_ROOT_ENV} to a directory of yours "
        "(archives then differ from packs made with the default)"
    )
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(root, 0o755)
        os.chmod(root, 0o1777)  # shared like /tmp; mkdir's mode goes through the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise BuildError(f"cannot create the build root {root}: {exc.strerror}", hint) from exc
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise BuildError(f"build root {root} is not a directory", f"remove it, {hint}")
    shared = st.st_mode & stat.S_ISVTX and st.st_mode & 0o002
    if st.st_uid != os.getuid() and not shared:
        raise BuildError(
            f"build root {root} belongs to uid {st.st_uid} and is not shared",
            f"its owner or root can run 'chmod 1777 {root}', {hint}",
        )


def _open_lock(path: Path) -> int:
    """A read-only descriptor of the lock file, created if missing (flock needs no write).

    An existing file is opened without O_CREAT: in a sticky directory, Linux refuses
    O_CREAT on another user's file when fs.protected_regular is set.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(5):
        try:
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                pass
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            os.fchmod(fd, 0o644)
            return fd
        except OSError as exc:
            raise BuildError(
                f"cannot open the lock file {path}: {exc.strerror}",
                "another user's file? remove it as that user or root",
            ) from exc
    raise BuildError(f"cannot open the lock file {path}: it keeps changing")


def _claim(prefix: Path, reporter: Reporter) -> None:
    try:
        st = os.lstat(prefix)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
            raise BuildError(
                f"build prefix {prefix} belongs to uid {st.st_uid} (left by another pack)",
                "remove it as that user or root, then pack again",
            )
        _wait_for_users(prefix, reporter)  # our own, left by a pack that was killed
        remove_tree(prefix)
    for leftover in prefix.parent.glob(f"{_scratch_prefix(prefix)}*"):
        remove_tree(leftover)  # pip's requirements of a killed pack (see _install_pip)
    os.mkdir(prefix, 0o755)


def _scratch_prefix(prefix: Path) -> str:
    """Name start of the scratch directory beside ``prefix`` that a build uses: under the
    same build lock, so the next pack removes what a killed one left."""
    return f".{prefix.name[:40]}.req-"


USERS_TIMEOUT = 600.0


def _wait_for_users(prefix: Path, reporter: Reporter, timeout: float = USERS_TIMEOUT) -> None:
    """Wait until no process runs from or holds files open under ``prefix``."""
    deadline = time.monotonic() + timeout
    waited = False
    while pids := processes_using(prefix):
        names = ", ".join(f"pid {pid} ({_command_name(pid)})" for pid in pids[:5])
        if not waited:
            reporter.step(f"waiting for {names}, still writing into the leftover {prefix}")
            waited = True
        if time.monotonic() > deadline:
            raise BuildError(
                f"build prefix {prefix} is still in use by {names}",
                f"stop them ('kill {' '.join(map(str, pids))}'), then pack again",
            )
        time.sleep(0.2)


def processes_using(path: Path) -> list[int]:
    """Processes (other than this one) whose executable, directory or open files are in ``path``."""
    root = str(path)
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            links = _proc_links(entry.path)
            if any(link == root or link.startswith(root + "/") for link in links):
                found.append(int(entry.name))
    return sorted(found)


def _proc_links(pid_dir: str) -> Iterator[str]:
    names = [f"{pid_dir}/exe", f"{pid_dir}/cwd"]
    with contextlib.suppress(OSError):
        names += [f"{pid_dir}/fd/{fd}" for fd in os.listdir(f"{pid_dir}/fd")]
    for name in names:
        with contextlib.suppress(OSError):
            yield os.readlink(name)


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"


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
    heal_conda_cache(records, cache / "pkgs", variant.lock_path, reporter)
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


def fetch_wheel(pkg: LockedPackage, cache: Path, reporter: Reporter | None = None) -> Path:
    """The wheel of ``pkg`` from the cache, downloading and checking it when absent.

    A cached wheel is checked against the locked sha256 on every use (hashed again when
    its size, mtime or inode changed); a damaged one is reported, removed and downloaded
    again.
    """
    name = os.path.basename(unquote(urlparse(pkg.url).path))
    dest = cache / pkg.sha256[:2] / pkg.sha256 / name
    if dest.is_file():
        if file_matches(dest, pkg.sha256):
            return dest
        (reporter or NullReporter()).warn(
            f"wheel cache: {dest} does not match its sha256; removed, downloading it again"
        )
        dest.unlink()
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
    wheels = []
    for i, pkg in enumerate(pkgs):
        reporter.progress("fetching wheels", i, len(pkgs))
        wheels.append(fetch_wheel(pkg, cache, reporter))
    reporter.progress("fetching wheels", len(pkgs), len(pkgs))
    reporter.step(f"pip install of {len(pkgs)} locked wheels (hashes required)")
    python = prefix / "bin" / "python"
    if not python.exists():
        raise BuildError(f"variant '{variant.name}': pip packages need python in the lock")
    with tempfile.TemporaryDirectory(prefix=_scratch_prefix(prefix), dir=prefix.parent) as tmp:
        # By name from a --find-links directory, not by path: pip records a path or URL
        # requirement in direct_url.json, which would put the cache's path into the
        # archive (and make packs from two cache directories differ).
        found = Path(tmp) / "wheels"
        found.mkdir()
        for wheel in wheels:
            (found / wheel.name).symlink_to(wheel)
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in pkgs))
        try:
            run(
                [
                    *_pip_under(python),
                    "install",
                    "--no-deps",
                    "--no-index",
                    "--require-hashes",
                    "--no-compile",
                    "--no-warn-script-location",
                    "--disable-pip-version-check",
                    "--no-cache-dir",
                    "--find-links",
                    str(found),
                    "-r",
                    str(req),
                ],
                what=f"pip install for variant '{variant.name}'",
                env={
                    "PIP_CONFIG_FILE": os.devnull,
                    "PYTHONNOUSERSITE": "1",
                    "_PIP_RUNNING_IN_SUBPROCESS": "1",  # see _pip_under
                },
                reporter=reporter,
            )
        except SubprocessError as exc:
            raise BuildError(exc.message, "see the pip output above") from exc


def _pip_under(python: Path) -> list[str]:
    """bundler's pip run by the prefix's ``python``, as ``pip --python`` does it.

    ``pip --python X`` starts ``X <pip>/__pip-runner__.py`` as a child of its own and
    waits; doing that here directly makes the installer bundler's own child, which
    dies with bundler (proc.run), instead of a grandchild that a killed pack orphans.
    """
    spec = importlib.util.find_spec("pip")
    runner = Path(spec.origin).parent / "__pip-runner__.py" if spec and spec.origin else None
    if runner is None or not runner.is_file():  # a pip without the runner: let it re-exec
        return [sys.executable, "-m", "pip", "--python", str(python)]
    return [str(python), str(runner), "--python", str(python)]


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
