"""CUDA from content: what an environment holds makes it CUDA, not ``cuda =``.

Unit tests on file lists and package records, and one real pack of a prefix that
carries CUDA as pip wheels (RAPIDS' way) with no conda ``cuda-version``.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from bundler.artifact.manifest import Manifest
from bundler.solve.cudacontent import CudaContent, from_packages, from_paths
from tests.support.cli import run_cli

SITE = "lib/python3.11/site-packages"
RUNTIME = f"{SITE}/nvidia_cuda_runtime_cu12-12.9.79.dist-info/METADATA"
CUBLAS = f"{SITE}/nvidia_cublas_cu12-12.9.1.4.dist-info/METADATA"


def test_cuda_version_record_comes_first() -> None:
    paths = [CUBLAS, RUNTIME, "conda-meta/cuda-version-12.8-h5d125a7_3.json", "lib/libz.so.1"]
    assert from_paths(paths) == CudaContent("12.8", "cuda-version 12.8")


def test_cuda_runtime_wheel_then_libcudart_then_any_cu_wheel() -> None:
    assert from_paths([CUBLAS, RUNTIME]) == CudaContent("12.9", "nvidia-cuda-runtime-cu12 12.9.79")
    cudart = "lib/libcudart.so.12.6.77"
    assert from_paths([CUBLAS, cudart, "lib/libcudart.so.12"]) == CudaContent("12.6", cudart)
    assert from_paths([CUBLAS]) == CudaContent("12", "nvidia-cublas-cu12")
    assert from_paths(["lib/libcudadevrt.a"]) == CudaContent(None, "lib/libcudadevrt.a")


def test_a_cpu_environment_is_not_cuda() -> None:
    paths = [
        f"{SITE}/numpy-2.3.1.dist-info/METADATA",
        "conda-meta/cudatoolkit-shim-1.0-0.json",  # a name that only starts like CUDA
        f"{SITE}/cuda_helpers-1.0.dist-info/METADATA",
        "lib/libcudart_shim.so",
    ]
    assert from_paths(paths) is None
    assert from_packages([("numpy", "2.3.1", "pip"), ("python", "3.11.7", "conda")]) is None


def test_lock_records_pip_wheels_and_conda() -> None:
    pip = [("cudf-cu12", "26.10.2", "pip"), ("nvidia-cuda-runtime-cu12", "12.9.79", "pip")]
    assert from_packages(pip) == CudaContent("12.9", "nvidia-cuda-runtime-cu12 12.9.79")
    assert from_packages(pip[:1]) == CudaContent("12", "cudf-cu12")
    assert from_packages([("cupy-cuda12x", "14.2.0", "pip")]) == CudaContent("12", "cupy-cuda12x")
    conda = [("cuda-version", "12.9", "conda"), ("cuda-cudart", "12.9.79", "conda")]
    assert from_packages(conda) == CudaContent("12.9", "cuda-version 12.9")
    # a conda package is not a wheel, whatever its name
    assert from_packages([("libcudf-cu12", "26.10", "conda")]) is None


def test_manifest_records_cuda_only_when_there_is_one() -> None:
    assert "cuda" not in Manifest().to_dict()  # older readers never see the key
    data = Manifest(cuda="12.9").to_dict()
    assert data["cuda"] == "12.9"
    assert Manifest.from_dict(data).cuda == "12.9"
    assert Manifest.from_dict({k: v for k, v in data.items() if k != "cuda"}).cuda is None


def _wheel(env: Path, dist: str, files: dict[str, bytes]) -> None:
    """A pip-installed distribution: its files and a dist-info with METADATA and RECORD."""
    site = env / SITE
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    info = site / f"{dist}.dist-info"
    info.mkdir()
    name, version = dist.split("-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    rows = [f"{rel},," for rel in files] + [
        f"{dist}.dist-info/{n},," for n in ("METADATA", "INSTALLER", "RECORD")
    ]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def _pack(env: Path, out: Path) -> tuple[set[str], dict[str, Any]]:
    proc = run_cli("pack", "--prefix", str(env), "-o", str(out), "--json", cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    return names, json.loads(Path(f"{out}.json").read_text())


def test_pip_cuda_wheels_make_a_cuda_environment(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """No cuda-version, no cuda =: the wheels' content keeps the static device runtimes
    numba-cuda links, and the manifest records CUDA 12.9.  Without them, conda's
    ``lib/*.a`` go and a wheel's ``.a`` deeper down stays."""
    archive, _ = packed_archive
    env = tmp_path / "env"
    env.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(env, filter="tar")
    subprocess.run([str(env / "bin/conda-unpack")], check=True)
    (env / "lib" / "libfoo.a").write_bytes(b"!<arch>\n")
    _wheel(env, "plain-1.0", {"plain/__init__.py": b"", "plain/lib/libplain.a": b"!<arch>\n"})
    names, manifest = _pack(env, tmp_path / "cpu.tar.gz")
    assert "lib/libfoo.a" not in names
    assert f"{SITE}/plain/lib/libplain.a" in names
    assert "cuda" not in manifest

    runtime = "nvidia/cuda_runtime/lib"
    _wheel(
        env,
        "nvidia_cuda_runtime_cu12-12.9.79",
        {
            "nvidia/cuda_runtime/__init__.py": b"",
            f"{runtime}/libcudart.so.12": b"\x7fELF stand-in",
            f"{runtime}/libcudadevrt.a": b"!<arch>\n",
            f"{runtime}/libcudart_static.a": b"!<arch>\n",
        },
    )
    names, manifest = _pack(env, tmp_path / "gpu.tar.gz")
    assert manifest["cuda"] == "12.9"
    assert manifest["kind"] == "executor"
    assert {f"{SITE}/{runtime}/libcudadevrt.a", f"{SITE}/{runtime}/libcudart_static.a"} <= names
    assert "lib/libfoo.a" in names  # a CUDA environment keeps its static libraries
    assert "static-libs" not in manifest["left_out"]
