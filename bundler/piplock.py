"""Resolve a variant's ``pip:`` list with pip's own resolver.

pip runs with ``--dry-run --report`` for the solved Python and the target platform
(wheels only), so nothing is installed and the report gives each distribution's
URL and sha256.  Distributions that a conda package of the same lock provides are
pinned to the conda version as constraints (so pip agrees with conda) and then
dropped from the result: pip never resolves them again nor overwrites them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from bundler.errors import SolveError, SubprocessError, WorkspaceError
from bundler.events import NullReporter, Reporter
from bundler.proc import run
from bundler.variants import normalize_pypi_name

# conda package name -> PyPI distribution name, where they differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "py-opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "python-duckdb": "duckdb",
}
_ARCH = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "linux-ppc64le": "ppc64le",
    "osx-64": "x86_64",
    "osx-arm64": "arm64",
    "win-64": "amd64",
}


@dataclass(frozen=True)
class PipPackage:
    name: str
    version: str
    url: str
    sha256: str


def pypi_name_of_conda(name: str) -> str:
    return normalize_pypi_name(CONDA_TO_PYPI.get(name, name))


def platform_tags(platform: str, glibc: str = "2.28") -> list[str]:
    """pip ``--platform`` tags for a conda platform, newest first."""
    arch = _ARCH[platform]
    if platform.startswith("linux"):
        major, minor = (int(x) for x in glibc.split("."))
        tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
        tags.append(f"manylinux2014_{arch}")
        if arch == "x86_64":
            tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
        return tags
    if platform.startswith("osx"):
        versions = ["11_0", "10_15", "10_14", "10_13", "10_12", "10_9"]
        if arch == "arm64":
            versions = ["14_0", "13_0", "12_0", "11_0"]
        return [f"macosx_{v}_{arch}" for v in versions] + ["macosx_11_0_universal2"]
    return ["win_amd64"]


def resolve_pip(
    requirements: list[str],
    *,
    variant: str,
    platform: str,
    python_version: str,
    conda_provided: dict[str, str],
    glibc: str = "2.28",
    reporter: Reporter | None = None,
) -> tuple[list[PipPackage], list[str]]:
    """Resolve ``requirements``; returns (packages, requirements skipped as conda-provided)."""
    reporter = reporter or NullReporter()
    wanted: list[str] = []
    skipped: list[str] = []
    for req in requirements:
        try:
            parsed = Requirement(req)
        except InvalidRequirement as exc:
            raise WorkspaceError(
                f"variant '{variant}': invalid pip requirement '{req}': {exc}",
                "use PEP 508 syntax such as 'pyiceberg>=0.9'",
            ) from exc
        if normalize_pypi_name(parsed.name) in conda_provided:
            skipped.append(req)
            reporter.warn(
                f"variant '{variant}': pip requirement '{req}' is provided by the conda "
                f"package of the same lock ({conda_provided[normalize_pypi_name(parsed.name)]});"
                " pip will not resolve it again"
            )
            continue
        wanted.append(req)
    if not wanted:
        return [], skipped

    py = ".".join(python_version.split(".")[:2])
    abi = "cp" + py.replace(".", "")
    with tempfile.TemporaryDirectory(prefix="bundler-pip-") as tmp:
        tmpdir = Path(tmp)
        constraints = tmpdir / "constraints.txt"
        lines = []
        for name, version in sorted(conda_provided.items()):
            try:
                Version(version)
            except InvalidVersion:
                continue
            lines.append(f"{name}=={version}")
        constraints.write_text("\n".join(lines) + "\n")
        report = tmpdir / "report.json"
        cmd = [
            sys.executable, "-m", "pip", "install",
            "--dry-run", "--ignore-installed", "--quiet", "--disable-pip-version-check",
            "--report", str(report),
            "--only-binary=:all:",
            "--target", str(tmpdir / "target"),
            "--python-version", py,
            "--implementation", "cp",
            "--abi", abi,
            "-c", str(constraints),
        ]  # fmt: skip
        for tag in platform_tags(platform, glibc):
            cmd += ["--platform", tag]
        cmd += wanted
        reporter.step(f"resolving pip packages for {variant} ({platform}, Python {py})")
        try:
            run(cmd, what=f"pip resolve for variant '{variant}' ({platform})")
        except SubprocessError as exc:
            raise SolveError(
                f"variant '{variant}' ({platform}): pip could not resolve "
                f"{', '.join(wanted)}: {_pip_reason(exc.output)}",
                "check the pip: list; only wheels for the target platform and the locked "
                f"Python {py} are accepted",
            ) from exc
        data = json.loads(report.read_text())
    packages = []
    for item in data.get("install", []):
        meta = item["metadata"]
        name = normalize_pypi_name(meta["name"])
        if name in conda_provided:
            continue
        info = item["download_info"]
        hashes = (info.get("archive_info") or {}).get("hashes") or {}
        sha = hashes.get("sha256")
        if not sha:
            legacy = (info.get("archive_info") or {}).get("hash", "")
            sha = legacy.split("=", 1)[1] if legacy.startswith("sha256=") else ""
        if not sha:
            raise SolveError(
                f"variant '{variant}': pip gave no sha256 for {meta['name']} ({info['url']})",
                "use an index that publishes sha256 hashes",
            )
        packages.append(PipPackage(name=name, version=meta["version"], url=info["url"], sha256=sha))
    for p in packages:
        if p.url.startswith("file://"):
            reporter.warn(
                f"variant '{variant}': {p.name} {p.version} resolved to a local file ({p.url}); "
                "the lock only builds on machines that have that path"
            )
    return sorted(packages, key=lambda p: p.name), skipped


def _pip_reason(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("ERROR:") and "dependency resolver" not in line:
            return line.removeprefix("ERROR:").strip()
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"
