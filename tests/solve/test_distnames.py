"""Unit tests: which Python distributions conda packages install (bundler.solve.distnames)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import rattler

from bundler.events import RecordingReporter
from bundler.solve.distnames import (
    Provided,
    conda_name_of_wheel,
    distributions_in,
    find_provided,
    names_by_rule,
    provided_distributions,
    wheel_aliases,
)
from tests.support.channel import synthetic_package


def test_distributions_in_reads_dist_and_egg_info() -> None:
    paths = [
        "lib/python3.12/site-packages/torch-2.5.1.dist-info/METADATA",
        "lib/python3.12/site-packages/torch-2.5.1.dist-info/RECORD",
        "lib/python3.12/site-packages/torch/__init__.py",
        "site-packages/tzdata-2025.2.dist-info/METADATA",  # noarch: python layout
        "lib/python3.12/site-packages/Typing_Extensions-4.12.2.dist-info/WHEEL",
        "lib/python3.12/site-packages/ruamel.yaml-0.18.6-py3.12.egg-info",
        "lib/python3.12/site-packages/pip/_vendor/six-1.16.0.dist-info/METADATA",  # vendored
        "share/doc/foo-1.0.dist-info/METADATA",  # not under site-packages
        "lib/libcudf.so",
    ]
    assert distributions_in(paths) == {
        "torch": "2.5.1",
        "tzdata": "2025.2",
        "typing-extensions": "4.12.2",
        "ruamel-yaml": "0.18.6",
    }


def test_rapids_wheel_names_map_to_conda_names() -> None:
    assert conda_name_of_wheel("cudf-cu12") == "cudf"
    assert conda_name_of_wheel("cupy-cuda12x") == "cupy"
    assert conda_name_of_wheel("pylibcudf-cu13") == "pylibcudf"
    assert conda_name_of_wheel("dask_cudf-cu12") == "dask-cudf"
    assert conda_name_of_wheel("nvidia-cuda-runtime-cu12") == "nvidia-cuda-runtime"
    assert conda_name_of_wheel("cuda-python") == "cuda-python"
    assert conda_name_of_wheel("pandas") == "pandas"
    assert wheel_aliases("cupy", 12) == ["cupy-cu12", "cupy-cuda12x"]
    assert wheel_aliases("cudf", None) == []
    provided = {"cudf": Provided("26.8.0", "cudf"), "cupy": Provided("13.6.0", "cupy")}
    assert find_provided(provided, "cudf-cu12") == Provided("26.8.0", "cudf")
    assert find_provided(provided, "CuPy-CUDA12x") == Provided("13.6.0", "cupy")
    assert find_provided(provided, "cuml-cu12") is None


def test_names_by_rule_follow_conda_forge_conventions() -> None:
    assert names_by_rule("python-tzdata") == {"python-tzdata", "tzdata"}
    assert names_by_rule("msgpack-python") == {"msgpack-python", "msgpack"}
    assert names_by_rule("matplotlib-base") == {"matplotlib-base", "matplotlib"}
    assert names_by_rule("py-opencv") == {"py-opencv", "opencv"}
    assert names_by_rule("numpy") == {"numpy"}


@dataclass
class _Record:
    """The fields of a rattler RepoDataRecord that provided_distributions reads."""

    name: rattler.PackageName
    version: str
    url: str
    sha256: bytes
    depends: list[str]


def _record(path: Path, name: str, version: str, depends: list[str]) -> _Record:
    sha = hashlib.sha256(path.read_bytes()).digest()
    return _Record(rattler.PackageName(name), version, path.as_uri(), sha, depends)


def test_provided_distributions_read_the_packages(tmp_path: Path) -> None:
    """Real .conda archives: a renamed distribution, a package without one, a cache."""
    pkgs = tmp_path / "pkgs"
    tz = synthetic_package(
        pkgs,
        "python-tzdata",
        "2025.2",
        "noarch",
        ["python >=3.9"],
        {"site-packages/tzdata-2025.2.dist-info/METADATA": b"Name: tzdata\n"},
    )
    torch = synthetic_package(
        pkgs,
        "pytorch",
        "2.5.1",
        "linux-64",
        ["python_abi 3.12.* *_cp312", "python >=3.12,<3.13.0a0"],
        {"lib/python3.12/site-packages/torch-2.5.1.dist-info/METADATA": b"Name: torch\n"},
    )
    lib = synthetic_package(pkgs, "libfoo", "1.0", "linux-64", [], {"lib/libfoo.so": b"\0"})
    sha = b"1" * 32
    records = [
        _record(tz, "python-tzdata", "2025.2", ["python >=3.9"]),
        _record(torch, "pytorch", "2.5.1", ["python >=3.12,<3.13.0a0"]),
        _record(lib, "libfoo", "1.0", []),  # no python: never read, provides nothing
        # Not readable from here: conda-forge's naming rules apply.
        _Record(rattler.PackageName("msgpack-python"), "1.1.0", "ftp://x/m.conda", sha, ["python"]),
    ]
    cache = tmp_path / "cache"
    reporter = RecordingReporter()
    provided = provided_distributions(records, cache=cache, reporter=reporter)
    assert provided == {
        "tzdata": Provided("2025.2", "python-tzdata"),
        "torch": Provided("2.5.1", "pytorch"),
        # Unreadable: conda-forge's naming rules, with a warning naming the package.
        "msgpack": Provided("1.1.0", "msgpack-python"),
        "msgpack-python": Provided("1.1.0", "msgpack-python"),
    }
    assert len(reporter.warnings) == 1 and "msgpack-python" in reporter.warnings[0]
    assert len(list(cache.rglob("*.json"))) == 2
    # Cached by sha256: a second read does not need the archives.
    tz.unlink()
    torch.unlink()
    again = provided_distributions(records[:2], cache=cache)
    assert again == {k: v for k, v in provided.items() if k in ("tzdata", "torch")}
