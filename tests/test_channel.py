"""The offline test channel: it solves, installs, relocates and runs like a real one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import rattler
from conda_package_handling import api as cph
from rattler import BuildString, GenericVirtualPackage, PackageName, RepoDataRecord, Version
from rattler.exceptions import SolverError

from tests.support import channel as channel_mod
from tests.support.channel import GLIBC_SONAMES, cached_local_channel

PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"
STDLIB_NATIVE = (
    "ssl",
    "sqlite3",
    "ctypes",
    "zlib",
    "lzma",
    "bz2",
    "hashlib",
    "decimal",
    "readline",
)


def _virtual(cuda: str | None = None) -> list[GenericVirtualPackage]:
    specs = [("__glibc", "2.28", "0"), ("__linux", "0", "0"), ("__unix", "0", "0")]
    specs.append(("__archspec", "1", "x86_64"))
    if cuda:
        specs.append(("__cuda", cuda, "0"))
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in specs]


def _solve(channel: Path, specs: list[str], cuda: str | None = None) -> list[RepoDataRecord]:
    return asyncio.run(
        rattler.solve(
            [f"file://{channel}"],
            specs,
            platforms=["linux-64", "noarch"],
            virtual_packages=_virtual(cuda),
        )
    )


def _run(
    argv: list[str | os.PathLike[str]], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run with no PYTHON* or LD_* variables, so nothing from this venv leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LD_"))}
    argv_str = [os.fspath(a) for a in argv]
    return subprocess.run(argv_str, capture_output=True, text=True, check=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def records(local_channel: Path) -> list[RepoDataRecord]:
    return _solve(local_channel, ["python", "pip", "six"])


@pytest.fixture(scope="module")
def installed(records: list[RepoDataRecord], tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("install") / "env"
    cache = tmp_path_factory.mktemp("pkgs")
    asyncio.run(rattler.install(records, prefix, cache_dir=cache, show_progress=False))
    return prefix


@pytest.fixture(scope="module")
def moved(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed prefix somewhere else, under a longer path."""
    target = tmp_path_factory.mktemp("relocated") / "somewhere" / "much" / "deeper" / "env"
    shutil.copytree(installed, target, symlinks=True)
    return target


@pytest.mark.integration
def test_solve_python_pip_six(records: list[RepoDataRecord]) -> None:
    found = {str(r.name.normalized): r for r in records}
    assert set(found) == {"python", "pip", "six"}
    assert str(found["python"].version) == ".".join(map(str, sys.version_info[:3]))
    assert found["python"].subdir == "linux-64"
    assert found["pip"].subdir == "noarch"
    assert found["pip"].noarch.python


@pytest.mark.integration
def test_install_rewrites_text_prefixes(installed: Path) -> None:
    sysconfigdata = next((installed / "lib" / f"python{PYVER}").glob("_sysconfigdata_*.py"))
    text = sysconfigdata.read_text()
    assert sysconfig.get_config_var("prefix") not in text
    assert str(installed) in text
    assert (installed / "bin" / "pip").is_file()  # entry point from link.json


@pytest.mark.integration
def test_relocated_prefix_runs(moved: Path, installed: Path) -> None:
    python = moved / "bin" / "python"
    code = (
        "import sys\n"
        f"import {', '.join(STDLIB_NATIVE)}, six\n"
        "print(sys.prefix)\n"
        "print(ssl.OPENSSL_VERSION)\n"
        "print(sqlite3.connect(':memory:').execute('select 1').fetchone()[0])\n"
    )
    out = _run([python, "-c", code], cwd=moved).stdout.splitlines()
    assert out[0] == str(moved)
    assert out[1].startswith("OpenSSL")
    assert out[2] == "1"
    pip = _run([python, "-m", "pip", "--version"]).stdout
    assert re.match(r"pip \d+", pip)
    assert str(moved / "lib" / f"python{PYVER}" / "site-packages" / "pip") in pip
    assert str(installed) not in pip


@pytest.mark.integration
def test_elf_files_resolve_inside_prefix_or_glibc(moved: Path) -> None:
    elves = [p for p in moved.rglob("*") if channel_mod._is_linked_elf(p)]
    assert len(elves) > 50  # the interpreter, libpython, lib-dynload, bundled libraries
    outside: list[str] = []
    root = moved.resolve()
    for elf in elves:
        ldd = _run(["ldd", elf]).stdout
        for line in ldd.splitlines():
            m = re.match(r"^\s*(\S+)\s+=>\s+(.+?)(?:\s+\(0x[0-9a-f]+\))?$", line)
            if not m or m.group(1) in GLIBC_SONAMES:
                continue
            resolved = m.group(2)
            if resolved == "not found" or not Path(resolved).resolve().is_relative_to(root):
                outside.append(f"{elf.relative_to(moved)}: {m.group(1)} => {resolved}")
    assert outside == []
    assert (moved / "lib" / "libssl.so.3").is_file() or list((moved / "lib").glob("libssl.so*"))


@pytest.mark.integration
def test_cuda_package_needs_cuda_virtual_package(local_channel: Path) -> None:
    with pytest.raises(SolverError, match="cuda"):
        _solve(local_channel, ["cudaprobe"])
    records = _solve(local_channel, ["cudaprobe"], cuda="12.9")
    assert sorted(str(r.name.normalized) for r in records) == ["cudaprobe", "python"]


@pytest.mark.integration
def test_python_package_marks_only_text_placeholders(local_channel: Path, tmp_path: Path) -> None:
    pkg = next((local_channel / "linux-64").glob("python-*.conda"))
    cph.extract(os.fspath(pkg), os.fspath(tmp_path), components="info")
    index = json.loads((tmp_path / "info" / "index.json").read_text())
    assert index["name"] == "python"
    assert index["subdir"] == "linux-64"
    assert isinstance(index["timestamp"], int)
    paths = json.loads((tmp_path / "info" / "paths.json").read_text())
    assert paths["paths_version"] == 1
    by_path = {e["_path"]: e for e in paths["paths"]}
    marked = {p for p, e in by_path.items() if "prefix_placeholder" in e}
    assert any(p.startswith(f"lib/python{PYVER}/_sysconfigdata_") for p in marked)
    assert all(by_path[p]["file_mode"] == "text" for p in marked)
    assert not any(p.endswith((".so", f"python{PYVER}")) or ".so." in p for p in marked)
    assert by_path["bin/python"]["path_type"] == "softlink"
    assert not any("/site-packages/" in p and not p.endswith("README.txt") for p in by_path)
    assert not any("__pycache__" in p or "/test/" in p for p in by_path)


def test_interrupted_build_leaves_no_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(dest: Path, **_: object) -> Path:
        (dest / "linux-64").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(channel_mod, "build_local_channel", broken)
    with pytest.raises(KeyboardInterrupt):
        cached_local_channel(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_built_channel_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []

    def fake(dest: Path, **_: object) -> Path:
        builds.append(dest)
        for subdir in channel_mod.SUBDIRS:
            (dest / subdir).mkdir()
            (dest / subdir / "repodata.json").write_text("{}")
        return dest

    monkeypatch.setattr(channel_mod, "build_local_channel", fake)
    first = cached_local_channel(tmp_path)
    second = cached_local_channel(tmp_path)
    assert first == second
    assert first.name == f"channel-{channel_mod.channel_cache_key()}"
    assert len(builds) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
