"""verify's linkage model for wheels: real ELF objects built with gcc, laid out as wheels.

A wheel's extension module often NEEDs a library that is not on its search path: the
Python package of the distribution that installed the library loads it first (RAPIDS'
``libcudf``, NVIDIA's ``nvidia/*/lib``).  These tests build such environments (dist-info
directories with METADATA and RECORD, ``pkg/lib/libx.so``, extension modules linked
against it) and check each verdict ``check_linkage`` can give.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bundler.check.dists import DistIndex
from bundler.check.elf import check_linkage

SITE = "lib/python3.11/site-packages"
EXT = ".cpython-311-x86_64-linux-gnu.so"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def gcc_library(path: Path, soname: str, needs: tuple[Path, ...] = ()) -> Path:
    """A real shared object at ``path`` with DT_SONAME ``soname``, linked against ``needs``
    (each becomes a DT_NEEDED entry with that library's soname)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_suffix(".c")
    symbol = "f_" + "".join(c if c.isalnum() else "_" for c in path.name)
    source.write_text(f"int {symbol}(void) {{ return 1; }}\n")
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(path), str(source), f"-Wl,-soname,{soname}"]
    cmd += ["-Wl,--no-as-needed", *map(str, needs)]
    subprocess.run(cmd, check=True, capture_output=True)
    source.unlink()
    return path


def dist_info(
    root: Path, name: str, requires: tuple[str, ...] = (), package: str | None = None
) -> None:
    """``name-1.0.dist-info`` with METADATA (Requires-Dist) and a RECORD listing every
    file under ``site-packages/<package>/`` (default: the name), as pip writes it."""
    site = root / SITE
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    files = sorted(p for p in (site / (package or name)).rglob("*") if p.is_file())
    rows = [f"{p.relative_to(site).as_posix()},sha256=x,1" for p in files]
    rows += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def wheel_env(root: Path, *, init: str = "from . import core\n") -> Path:
    """``libx`` installs ``libx/lib/libx.so``; ``app`` requires libx and has two
    extension modules that NEED it: ``core`` (imported by ``app/__init__``) and
    ``extra`` (not imported), which also needs ``libmissing.so.3`` that nothing has."""
    site = root / SITE
    (site / "libx").mkdir(parents=True)
    (site / "libx" / "__init__.py").write_text("# dlopens lib/libx.so on import\n")
    libx = gcc_library(site / "libx" / "lib" / "libx.so", "libx.so")
    missing = gcc_library(root / "build" / "libmissing.so.3", "libmissing.so.3")
    (site / "app").mkdir()
    (site / "app" / "__init__.py").write_text(init)
    gcc_library(site / "app" / f"core{EXT}", f"core{EXT}", (libx,))
    gcc_library(site / "app" / f"extra{EXT}", f"extra{EXT}", (libx, missing))
    shutil.rmtree(root / "build")  # libmissing.so.3 is in no distribution
    dist_info(root, "libx")
    dist_info(root, "app", ("libx>=1", 'unrelated; extra == "never"'))
    return root


def test_library_of_a_required_distribution_counts_as_loaded(tmp_path: Path) -> None:
    report = check_linkage(wheel_env(tmp_path))
    assert report.ok, [str(u) for u in report.unresolved]
    assert dict(report.by_package) == {"libx": 2}  # core and extra, via Requires-Dist
    assert report.unrequired == ()


def test_optional_extension_module_is_a_warning_naming_the_import(tmp_path: Path) -> None:
    report = check_linkage(wheel_env(tmp_path))
    assert report.ok
    assert [str(o) for o in report.optional] == [
        "app.extra needs libmissing.so.3, which no distribution here installs: "
        f"'import app.extra' would fail ({SITE}/app/extra{EXT})"
    ]


def test_module_imported_by_its_package_init_is_not_optional(tmp_path: Path) -> None:
    report = check_linkage(wheel_env(tmp_path, init="from . import core\nfrom .extra import f\n"))
    assert report.optional == ()
    assert [str(u) for u in report.unresolved] == [f"{SITE}/app/extra{EXT} -> libmissing.so.3"]


def test_deleted_library_fails_naming_file_library_and_its_distribution(tmp_path: Path) -> None:
    env = wheel_env(tmp_path)
    (env / SITE / "libx" / "lib" / "libx.so").unlink()
    report = check_linkage(env)
    assert not report.ok
    assert [str(u) for u in report.unresolved] == [
        f"{SITE}/app/core{EXT} -> libx.so (libx installed it; the file is gone)",
        f"{SITE}/app/extra{EXT} -> libx.so (libx installed it; the file is gone)",
    ]
    assert report.by_package == {}


def test_library_of_an_unrelated_distribution_is_a_warning(tmp_path: Path) -> None:
    """Decided: a library found only in a distribution that the needing one does not
    require loads only if something else loaded it first: a warning, not a failure."""
    env = wheel_env(tmp_path)
    libx = env / SITE / "libx" / "lib" / "libx.so"
    gcc_library(env / SITE / "stray" / f"mod{EXT}", f"mod{EXT}", (libx,))
    (env / SITE / "stray" / "__init__.py").write_text("from . import mod\n")
    dist_info(env, "stray", ("numpy",))
    report = check_linkage(env)
    assert report.ok
    assert [(u.file, u.soname, u.found, u.owner) for u in report.unrequired] == [
        (f"{SITE}/stray/mod{EXT}", "libx.so", f"{SITE}/libx/lib/libx.so", "libx")
    ]
    assert "which its distribution does not require" in str(report.unrequired[0])


def test_host_libraries_are_listed_once_each(tmp_path: Path) -> None:
    env = wheel_env(tmp_path)
    build = tmp_path / "hostlibs"
    host = [
        gcc_library(build / name, name)
        for name in ("libcuda.so.1", "libibverbs.so.1", "librdmacm.so.1")
    ]
    for name in ("a", "b"):
        gcc_library(env / SITE / "app" / f"{name}{EXT}", f"{name}{EXT}", tuple(host))
    shutil.rmtree(build)
    report = check_linkage(env)
    assert report.ok
    assert {k: dict(v) for k, v in report.host.items()} == {
        "driver": {"libcuda.so.1": 2},
        "rdma": {"libibverbs.so.1": 2, "librdmacm.so.1": 2},
    }


def test_requires_follows_extras_markers_and_transitive_requirements(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        (tmp_path / SITE / name).mkdir(parents=True)
        (tmp_path / SITE / name / "__init__.py").write_text("")
    dist_info(tmp_path, "a", ("B[gpu]",))
    dist_info(tmp_path, "b", ('c; extra == "gpu"', 'e; python_version < "3"'))
    dist_info(tmp_path, "c", ())
    dist_info(tmp_path, "d", ("b",))
    dist_info(tmp_path, "e", ())
    index = DistIndex.read(tmp_path)
    assert index.requires("a") == {"a", "b", "c"}  # b's gpu extra brings c; e: python 2 only
    assert index.requires("d") == {"d", "b"}  # without the extra, no c
    assert index.owners(f"{SITE}/c/__init__.py") == {"c"}
    assert index.listing("__init__.py") == {"a", "b", "c", "d", "e"}


def test_a_package_requiring_cuda_pathfinder_loads_nvidia_wheel_libraries(tmp_path: Path) -> None:
    """CuPy requires no nvidia-* wheel, but loads their libraries with cuda-pathfinder."""
    site = tmp_path / SITE
    cublas = gcc_library(site / "nvidia" / "cublas" / "lib" / "libcublas.so.12", "libcublas.so.12")
    (site / "cuda" / "pathfinder").mkdir(parents=True)
    (site / "cuda" / "pathfinder" / "__init__.py").write_text("")
    (site / "cupy").mkdir()
    (site / "cupy" / "__init__.py").write_text("from . import cublas\n")
    gcc_library(site / "cupy" / f"cublas{EXT}", f"cublas{EXT}", (cublas,))
    dist_info(tmp_path, "nvidia-cublas-cu12", (), package="nvidia/cublas")
    dist_info(tmp_path, "cuda-pathfinder", (), package="cuda/pathfinder")
    dist_info(tmp_path, "cupy", ("numpy", "cuda-pathfinder>=1.3"))
    report = check_linkage(tmp_path)
    assert report.ok and report.unrequired == ()
    assert dict(report.by_package) == {"nvidia-cublas-cu12": 1}
