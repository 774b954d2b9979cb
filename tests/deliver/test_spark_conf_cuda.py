"""spark-conf gives GPU scheduling to a variant whose content is CUDA, cuda = or not."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from bundler.artifact.manifest import Manifest, manifest_path
from bundler.deliver.spark import SparkConfOptions, content_cuda, plan_spark_conf


def _lock(path: Path, packages: list[tuple[str, str, str]]) -> Path:
    """A conda-lock v1 file holding these (name, version, manager) for linux-64."""
    entries = [
        {
            "name": name,
            "version": version,
            "manager": manager,
            "platform": "linux-64",
            "dependencies": {},
            "url": f"https://example.invalid/{name}-{version}",
            "hash": {"sha256": "0" * 64},
            "category": "main",
            "optional": False,
        }
        for name, version, manager in packages
    ]
    data = {"version": 1, "metadata": {"platforms": ["linux-64"]}, "package": entries}
    path.write_text(yaml.safe_dump(data))
    return path


def _variant(lock: Path) -> Any:
    return SimpleNamespace(name="rapids", cuda=None, lock_path=lock, platforms=["linux-64"])


RAPIDS = [
    ("python", "3.11.7", "conda"),
    ("cudf-cu12", "26.10.2", "pip"),
    ("nvidia-cuda-runtime-cu12", "12.9.79", "pip"),
]


def test_lock_with_cuda_wheels_is_cuda_without_cuda_set(tmp_path: Path) -> None:
    variant = _variant(_lock(tmp_path / "rapids.conda-lock.yml", RAPIDS))
    assert content_cuda(variant, "linux-64", None) == "12.9"
    cpu = _variant(_lock(tmp_path / "cpu.conda-lock.yml", RAPIDS[:1]))
    assert content_cuda(cpu, "linux-64", None) is None
    assert content_cuda(_variant(tmp_path / "missing.yml"), "linux-64", None) is None


def test_the_archives_manifest_says_first(tmp_path: Path) -> None:
    variant = _variant(_lock(tmp_path / "cpu.conda-lock.yml", RAPIDS[:1]))
    archive = tmp_path / "rapids.tar.gz"
    archive.write_bytes(b"stand-in")
    Manifest(cuda="12.8").write(manifest_path(archive))
    assert content_cuda(variant, "linux-64", archive) == "12.8"
    data = json.loads(manifest_path(archive).read_text())
    del data["cuda"]  # a manifest from before the field, or of a CPU archive: the lock decides
    manifest_path(archive).write_text(json.dumps(data))
    assert content_cuda(variant, "linux-64", archive) is None


def test_content_cuda_turns_on_gpu_scheduling(tmp_path: Path) -> None:
    variant = _variant(_lock(tmp_path / "rapids.conda-lock.yml", RAPIDS))
    options = SparkConfOptions(
        variant="rapids", archive="hdfs:///envs/rapids.tar.gz", master="yarn"
    )
    conf = plan_spark_conf(
        options,
        driver_python="python3",
        driver_version=(3, 11),
        locked_python="3.11.7",
        cuda=content_cuda(variant, "linux-64", None),
    ).conf_dict()
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "1"
