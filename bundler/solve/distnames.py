"""Which Python distributions the conda packages of a lock install.

A conda package that installs a Python distribution carries its ``.dist-info`` (or
``.egg-info``) directory, so the package's own ``info/paths.json`` names the
distribution and its version: ``pytorch`` installs ``torch``, ``python-tzdata``
installs ``tzdata``, ``cudf`` installs ``cudf``.  ``provided_distributions`` reads
that file of every package that depends on ``python``: from the archive itself for a
``file://`` channel, with HTTP range requests for a remote ``.conda`` (only the info
section is fetched).  Results are cached by the package's sha256.  A package whose
metadata cannot be read falls back to conda-forge's naming rules (``python-X``,
``py-X``, ``X-python`` and ``X-base`` all give ``X``), with a warning.

RAPIDS publishes its CUDA wheels under suffixed names (``cudf-cu12``,
``cupy-cuda12x``); ``conda_name_of_wheel`` strips the suffix by rule, so such a pip
name matches the conda package that already provides the distribution.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from bundler.atomic import atomic_write
from bundler.events import NullReporter, Reporter

#: A distribution's metadata directory right under a ``site-packages`` directory.
_DIST_DIR = re.compile(r"(?:^|/)site-packages/([^/]+)\.(?:dist-info|egg-info)(?:/|$)")
#: RAPIDS/CuPy wheel names: ``cudf-cu12``, ``pylibcudf-cu13``, ``cupy-cuda12x``.
_CUDA_SUFFIX = re.compile(r"(.+?)-cu(?:da)?\d+x?")
#: Concurrent metadata reads (range requests to one channel host, or local files).
_PARALLEL = 8
#: A server without range requests makes rattler download the whole package; past
#: this size bundler gives up on it and uses the naming rules instead.
_MAX_SPOOL = 64 * 1024 * 1024
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class Provided:
    """A Python distribution installed by a conda package of the lock."""

    version: str  # the distribution's own version (from its metadata directory)
    conda: str  # the conda package that installs it


def distributions_in(paths: Iterable[str]) -> dict[str, str]:
    """Normalised distribution name -> version, from the file list of one package."""
    found: dict[str, str] = {}
    for path in paths:
        match = _DIST_DIR.search(path)
        if not match:
            continue
        name, _, rest = match.group(1).partition("-")
        version = rest.split("-")[0]
        if name and version:
            found[str(canonicalize_name(name))] = version
    return found


def names_by_rule(conda_name: str) -> set[str]:
    """The distribution names conda-forge's naming conventions allow for a package."""
    name = str(canonicalize_name(conda_name))
    names = {name}
    for prefix in ("python-", "py-"):
        if name.startswith(prefix) and len(name) > len(prefix):
            names.add(name[len(prefix) :])
    for suffix in ("-python", "-base"):
        if name.endswith(suffix) and len(name) > len(suffix):
            names.add(name[: -len(suffix)])
    return names


def conda_name_of_wheel(name: str) -> str:
    """``cudf-cu12`` -> ``cudf``, ``cupy-cuda12x`` -> ``cupy``; other names unchanged."""
    name = str(canonicalize_name(name))
    match = _CUDA_SUFFIX.fullmatch(name)
    return match.group(1) if match else name


def find_provided(provided: Mapping[str, Provided], name: str) -> Provided | None:
    """The conda provider of pip distribution ``name``, RAPIDS wheel names included."""
    key = str(canonicalize_name(name))
    return provided.get(key) or provided.get(conda_name_of_wheel(key))


def wheel_aliases(name: str, cuda_major: int | None) -> list[str]:
    """The names RAPIDS and CuPy publish ``name`` under for one CUDA major version."""
    if cuda_major is None:
        return []
    return [f"{name}-cu{cuda_major}", f"{name}-cuda{cuda_major}x"]


def provided_distributions(
    records: Iterable[Any], *, cache: Path | None, reporter: Reporter | None = None
) -> dict[str, Provided]:
    """Distribution name -> ``Provided`` for rattler ``RepoDataRecord``s of one solve.

    Only packages that depend on ``python`` are read; the first package that names
    a distribution keeps it.
    """
    reporter = reporter or NullReporter()
    candidates = [r for r in records if any(_dep_name(d) == "python" for d in r.depends)]
    found = asyncio.run(_read_all(candidates, cache))
    provided: dict[str, Provided] = {}
    for record, dists in zip(candidates, found, strict=True):
        conda = record.name.normalized
        if dists is None:
            reporter.warn(
                f"could not read the metadata of conda package {conda} ({record.url}); "
                "assuming it provides the distribution(s) "
                + ", ".join(sorted(names_by_rule(conda)))
            )
            dists = dict.fromkeys(names_by_rule(conda), str(record.version))
        for name, version in sorted(dists.items()):
            provided.setdefault(name, Provided(version=version, conda=conda))
    return provided


def _dep_name(spec: str) -> str:
    return re.split(r"[\s=<>!~\[]", spec.strip(), maxsplit=1)[0]


async def _read_all(records: list[Any], cache: Path | None) -> list[dict[str, str] | None]:
    import rattler

    client = rattler.Client()
    gate = asyncio.Semaphore(_PARALLEL)

    async def one(record: Any) -> dict[str, str] | None:
        async with gate:
            return await _distributions_of(record, client, cache)

    return list(await asyncio.gather(*(one(r) for r in records)))


async def _distributions_of(record: Any, client: Any, cache: Path | None) -> dict[str, str] | None:
    sha = record.sha256.hex() if isinstance(record.sha256, bytes) else str(record.sha256 or "")
    cached = _cache_file(cache, sha)
    if cached is not None and cached.is_file():
        try:
            data = json.loads(cached.read_text())
            if data.get("format") == _CACHE_FORMAT:
                return {str(k): str(v) for k, v in data["distributions"].items()}
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # unreadable cache entry: read the package again
    paths = await _package_paths(str(record.url), client)
    if paths is None:
        return None
    dists = distributions_in(paths)
    if cached is not None:
        blob = json.dumps({"format": _CACHE_FORMAT, "distributions": dists}, sort_keys=True)
        try:
            with atomic_write(cached) as tmp:
                tmp.write_text(blob)
        except OSError:
            pass  # a read-only cache only costs a second read next time
    return dists


async def _package_paths(url: str, client: Any) -> list[str] | None:
    from rattler.package_streaming import PackageArchive

    try:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            archive = await PackageArchive.from_path(Path(unquote(parsed.path)))
        elif parsed.scheme in ("http", "https"):
            archive = await PackageArchive.from_url(client, url, max_spool_size=_MAX_SPOOL)
        else:
            return None
        paths = await archive.paths_json()
    except Exception:  # any failure to read is handled by the naming rules
        return None
    return [Path(entry.relative_path).as_posix() for entry in paths.paths]


def _cache_file(cache: Path | None, sha256: str) -> Path | None:
    if cache is None or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return None
    return cache / sha256[:2] / f"{sha256}.json"
