"""Resolve a variant's ``pip:`` list with uv, for the target platform and Python.

``uv pip compile --python-platform <target> --python-version <locked python>``
evaluates environment markers (``platform_machine``, ``python_version``, ...) for
the machine the lock is for, not for the machine running bundler, and writes a
``pylock.toml`` that gives each distribution's wheel URLs and sha256.  Wheels only.

Distributions that a conda package of the same lock provides (see
``bundler.solve.distnames``) are pinned through constraints to a local stand-in wheel of
the conda version with no dependencies: a pip package that needs them is checked
against the conda version, and uv never resolves them (nor their PyPI
dependencies) again.  They are dropped from the result.

``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL`` and ``PIP_FIND_LINKS`` are passed on to
uv as its ``UV_`` equivalents where those are not set.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bundler.errors import SolveError, SubprocessError, WorkspaceError
from bundler.events import NullReporter, Reporter
from bundler.platforms import PLATFORMS
from bundler.proc import run
from bundler.solve.distnames import Provided, find_provided, wheel_aliases

#: The manylinux glibc levels uv knows as ``--python-platform`` targets.
_UV_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
#: pip's variables and the uv variables that mean the same.
_INDEX_ENV = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
}


@dataclass(frozen=True)
class PipPackage:
    name: str
    version: str
    url: str
    sha256: str


def uv_platform(platform: str, glibc: str = "2.28") -> str:
    """uv's ``--python-platform`` for a conda platform (manylinux level from ``glibc``)."""
    target = PLATFORMS[platform]
    if target.uv_target:
        return target.uv_target
    arch = target.wheel_arch
    if arch not in ("x86_64", "aarch64"):
        raise SolveError(
            f"pip: entries cannot be locked for {platform}: uv has no target for it",
            "move those packages into the conda dependencies or drop the platform",
        )
    major, minor = (int(x) for x in glibc.split(".")[:2])
    levels = [m for m in _UV_MANYLINUX if major == 2 and m <= minor]
    if not levels:
        raise SolveError(
            f"pip: entries need glibc 2.17 or newer on {platform}, not {glibc}",
            'set glibc = "2.17" or newer for the variant',
        )
    return f"{arch}-manylinux_2_{levels[-1]}"


def platform_tags(platform: str, glibc: str = "2.28", macos: str | None = None) -> list[str]:
    """Wheel platform tags a machine of ``platform`` accepts, most specific first."""
    arch = PLATFORMS[platform].wheel_arch
    if platform.startswith("linux"):
        major, minor = (int(x) for x in glibc.split(".")[:2])
        plats = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
        plats.append(f"manylinux2014_{arch}")
        if arch == "x86_64":
            plats += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
        return plats
    if platform.startswith("osx"):
        major, minor = (int(x) for x in (macos or "11.0").split(".")[:2])
        return list(tags.mac_platforms((major, minor), arch))
    return ["win_amd64"]


def supported_tags(
    platform: str, python_version: str, glibc: str = "2.28", macos: str | None = None
) -> list[tags.Tag]:
    """The wheel tags CPython ``python_version`` on ``platform`` accepts, best first."""
    major, minor = (int(x) for x in python_version.split(".")[:2])
    interpreter = f"cp{major}{minor}"
    plats = platform_tags(platform, glibc, macos)
    return [
        *tags.cpython_tags((major, minor), abis=[interpreter], platforms=plats),
        *tags.compatible_tags((major, minor), interpreter, plats),
    ]


def resolve_pip(
    requirements: list[str],
    *,
    variant: str,
    platform: str,
    python_version: str,
    conda_provided: Mapping[str, Provided],
    glibc: str = "2.28",
    macos: str | None = None,
    cuda_major: int | None = None,
    reporter: Reporter | None = None,
) -> tuple[list[PipPackage], list[str]]:
    """Resolve ``requirements``; returns (packages, requirements skipped as conda-provided)."""
    reporter = reporter or NullReporter()
    wanted, skipped = _split_requirements(requirements, variant, conda_provided, reporter)
    if not wanted:
        return [], skipped
    where = f"variant '{variant}' ({platform})"
    try:
        target = uv_platform(platform, glibc)
    except SolveError as exc:
        raise SolveError(f"{where}: {exc.message}", exc.hint) from None
    py = ".".join(python_version.split(".")[:3])
    with tempfile.TemporaryDirectory(prefix="bundler-uv-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "requirements.in").write_text("".join(f"{r}\n" for r in wanted))
        constraints = _stand_in_constraints(tmpdir / "stand-ins", conda_provided, cuda_major)
        (tmpdir / "constraints.txt").write_text("".join(f"{c}\n" for c in constraints))
        out = tmpdir / "pylock.toml"
        cmd: list[str | os.PathLike[str]] = [
            _uv(), "pip", "compile", tmpdir / "requirements.in",
            "--constraints", tmpdir / "constraints.txt",
            "--python-platform", target,
            "--python-version", py,
            "--python", sys.executable,
            "--no-python-downloads",
            "--only-binary", ":all:",
            "--format", "pylock.toml",
            "--output-file", out,
            "--no-header", "--no-progress", "--quiet",
        ]  # fmt: skip
        reporter.step(f"resolving pip packages for {variant} ({platform}, Python {py})")
        env = dict(_index_env(os.environ))
        if macos:
            env["MACOSX_DEPLOYMENT_TARGET"] = macos
        try:
            run(cmd, what=f"uv resolve for {where}", env=env, cwd=tmpdir)
        except SubprocessError as exc:
            raise SolveError(
                f"{where}: pip could not resolve {', '.join(wanted)}: {_uv_reason(exc.output)}",
                "check the pip: list; only wheels for the target platform and the locked "
                f"Python {py} are accepted",
            ) from exc
        lock = tomllib.loads(out.read_text())
        best = {t: i for i, t in enumerate(supported_tags(platform, py, glibc, macos))}
        packages = []
        for entry in lock.get("packages", []):
            if find_provided(conda_provided, entry["name"]) is None:
                packages.append(_locked(entry, best, tmpdir, where))
    for p in packages:
        if p.url.startswith("file://"):
            reporter.warn(
                f"variant '{variant}': {p.name} {p.version} resolved to a local file ({p.url}); "
                "the lock only builds on machines that have that path"
            )
    return sorted(packages, key=lambda p: p.name), skipped


def _uv() -> str:
    import uv

    return str(uv.find_uv_bin())


def _index_env(environ: Mapping[str, str]) -> dict[str, str]:
    """pip's index settings as uv variables, where uv's own are not set."""
    out = {}
    for pip_var, uv_var in _INDEX_ENV.items():
        if environ.get(pip_var) and not environ.get(uv_var):
            out[uv_var] = environ[pip_var]
    return out


def _split_requirements(
    requirements: list[str],
    variant: str,
    conda_provided: Mapping[str, Provided],
    reporter: Reporter,
) -> tuple[list[str], list[str]]:
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
        provider = find_provided(conda_provided, parsed.name)
        if provider is None:
            wanted.append(req)
            continue
        if not parsed.marker and not parsed.specifier.contains(provider.version, prereleases=True):
            raise SolveError(
                f"variant '{variant}': pip requirement '{req}' is provided by the conda package "
                f"{provider.conda} of the same lock, whose {parsed.name} {provider.version} "
                "does not satisfy it",
                f"pin {provider.conda} in the conda dependencies instead, or drop the pip entry",
            )
        skipped.append(req)
        reporter.warn(
            f"variant '{variant}': pip requirement '{req}' is provided by the conda package "
            f"{provider.conda} of the same lock ({parsed.name} {provider.version}); "
            "pip will not resolve it again"
        )
    return wanted, skipped


def _stand_in_constraints(
    folder: Path, provided: Mapping[str, Provided], cuda_major: int | None
) -> list[str]:
    """``name @ file://...whl`` for each conda-provided distribution (and its CUDA names)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, item in sorted(provided.items()):
        try:
            version = str(Version(item.version))
        except InvalidVersion:
            continue  # not a PEP 440 version: pip cannot be pinned to it
        for dist in (name, *wheel_aliases(name, cuda_major)):
            wheel = _stand_in_wheel(folder, dist, version)
            lines.append(f"{dist} @ {wheel.as_uri()}")
    return lines


def _stand_in_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel with metadata only (no files, no dependencies) for ``name`` ``version``."""
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: bundler\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,", ""])
    wheel = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def _locked(entry: dict[str, Any], best: dict[tags.Tag, int], base: Path, where: str) -> PipPackage:
    """The wheel of one ``pylock.toml`` package that suits the target best."""
    name = str(canonicalize_name(entry["name"]))
    version = str(entry.get("version", ""))
    candidates = list(entry.get("wheels") or [])
    if not candidates and isinstance(entry.get("archive"), dict):
        candidates = [entry["archive"]]  # a direct URL requirement
    ranked = []
    for wheel in candidates:
        url = _url_of(wheel, base)
        try:
            _, _, _, wheel_tags = parse_wheel_filename(unquote(url.rsplit("/", 1)[-1]))
        except InvalidWheelFilename:
            continue
        rank = min((best[t] for t in wheel_tags if t in best), default=None)
        if rank is not None:
            ranked.append((rank, url, wheel))
    if not ranked:
        raise SolveError(
            f"{where}: uv locked {name} {version} without a wheel for this platform",
            "pin a version that publishes wheels for it",
        )
    _, url, wheel = min(ranked, key=lambda item: item[0])
    sha = (wheel.get("hashes") or {}).get("sha256")
    if not sha:
        raise SolveError(
            f"{where}: the index gave no sha256 for {name} ({url})",
            "use an index that publishes sha256 hashes",
        )
    if not version:
        version = str(parse_wheel_filename(unquote(url.rsplit("/", 1)[-1]))[1])
    return PipPackage(name=name, version=version, url=url, sha256=sha)


def _url_of(wheel: dict[str, Any], base: Path) -> str:
    if wheel.get("url"):
        return str(wheel["url"])
    path = Path(str(wheel.get("path", "")))
    return (path if path.is_absolute() else base / path).resolve().as_uri()


def _uv_reason(output: str) -> str:
    """The sentence of uv's error output that says why, on one line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("cause:", "╰─▶", "Caused by:")):
            return re.sub(r"^(cause:|╰─▶|Caused by:)\s*", "", line)
    for line in lines:
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return lines[-1] if lines else "unknown error"
