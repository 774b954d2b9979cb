"""Which distribution installed which file of an unpacked environment, and what each requires.

The loader is not the only thing that loads libraries in a Python environment.  Wheels
carry no RPATH to each other: RAPIDS' ``libcudf`` package dlopens ``libcudf.so`` (and
the ``nvidia/*/lib`` libraries) from Python before the extension modules that NEED them
are imported, and glibc then finds them by soname among the objects already loaded.  So
a library that is not on an object's search path still loads when the distribution
that installed it is one the needing file's distribution requires, directly or through
others: it is imported first.

``DistIndex.read(root)`` reads, once:

- every ``site-packages/*.dist-info``: its name, its ``Requires-Dist`` (names, extras
  and markers parsed by ``packaging``, markers evaluated for the environment's Python
  on Linux) and its ``RECORD`` (the files it installed);
- every ``conda-meta/*.json`` record: its name, ``depends`` and ``files``.

It answers who owns a path, which distributions list a file of a given name (so a
library that a distribution installed but that is gone is told apart from one that
nothing here ever had), and whether one distribution requires another.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import os
import platform
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

#: Loaders: a distribution that requires one of these (directly or not) loads the
#: libraries of every installed distribution whose name matches its patterns.  CuPy and
#: cuda-python find ``nvidia/*/lib`` with NVIDIA's cuda-pathfinder, whatever requires them.
LIBRARY_LOADERS: dict[str, tuple[str, ...]] = {"cuda-pathfinder": ("nvidia-*",)}
_SITE = re.compile(r"^lib/python(\d+)\.(\d+)/site-packages$")
_CONDA_NAME = re.compile(r"^[A-Za-z0-9_.+-]+")


@dataclass(frozen=True)
class Needs:
    """One requirement: a distribution name, the extras asked of it, and when it applies."""

    name: str
    extras: frozenset[str] = frozenset()
    marker: object = None  # a packaging Marker, or None: always


@dataclass
class Distribution:
    name: str  # canonical (pip) or the conda package name, prefixed "conda:"
    requires: list[Needs] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # relative to the root, POSIX


class DistIndex:
    """Owners of files, and the requirement graph between the distributions."""

    def __init__(self, dists: Iterable[Distribution], python: tuple[str, str] | None) -> None:
        self.dists = {d.name: d for d in dists}
        self.python = python
        self._owner: dict[str, set[str]] = {}
        self._listed: dict[str, set[str]] = {}
        for dist in self.dists.values():
            for path in dist.files:
                self._owner.setdefault(path, set()).add(dist.name)
                self._listed.setdefault(path.rsplit("/", 1)[-1], set()).add(dist.name)
        self._closure: dict[str, frozenset[str]] = {}

    @classmethod
    def read(cls, root: Path) -> DistIndex:
        dists: list[Distribution] = []
        python = None
        lib = root / "lib"
        for site in sorted(lib.glob("python*/site-packages")) if lib.is_dir() else []:
            rel = site.relative_to(root).as_posix()
            match = _SITE.match(rel)
            if match is None:
                continue
            python = (match.group(1), match.group(2))
            dists.extend(_read_dist_info(d, rel) for d in sorted(site.glob("*.dist-info")))
        meta = root / "conda-meta"
        for record in sorted(meta.glob("*.json")) if meta.is_dir() else []:
            conda = _read_conda_record(record)
            if conda is not None:
                dists.append(conda)
        return cls(dists, python)

    def owners(self, path: str) -> set[str]:
        """The distributions whose file lists hold ``path`` (relative, POSIX)."""
        return self._owner.get(path, set())

    def listing(self, filename: str) -> set[str]:
        """The distributions that installed a file called ``filename``, anywhere."""
        return self._listed.get(filename, set())

    def requires(self, name: str) -> frozenset[str]:
        """``name`` and every distribution it requires, transitively (installed ones only),
        with the distributions a required loader (``LIBRARY_LOADERS``) loads from."""
        cached = self._closure.get(name)
        if cached is None:
            names = set(self._walk(name))
            for loader, patterns in LIBRARY_LOADERS.items():
                if loader in names:
                    names.update(
                        d for d in self.dists if any(fnmatch.fnmatchcase(d, p) for p in patterns)
                    )
            cached = frozenset(names)
            self._closure[name] = cached
        return cached

    def _walk(self, start: str) -> Iterator[str]:
        seen: set[tuple[str, frozenset[str]]] = set()
        stack: list[tuple[str, frozenset[str]]] = [(start, frozenset())]
        names: set[str] = set()
        while stack:
            name, extras = stack.pop()
            if (name, extras) in seen or name not in self.dists:
                continue
            seen.add((name, extras))
            if name not in names:
                names.add(name)
                yield name
            for need in self.dists[name].requires:
                if self._applies(need, extras):
                    stack.append((need.name, need.extras))

    def _applies(self, need: Needs, extras: frozenset[str]) -> bool:
        marker = need.marker
        if marker is None:
            return True
        env = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
        env["platform_machine"] = platform.machine()
        if self.python:
            env["python_version"] = ".".join(self.python)
            env["python_full_version"] = ".".join(self.python) + ".0"
        try:
            return any(marker.evaluate({**env, "extra": e}) for e in (extras or {""}))  # type: ignore[attr-defined]
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            return True  # a marker this cannot judge: count the requirement


def _read_dist_info(directory: Path, site: str) -> Distribution:
    name = directory.name.removesuffix(".dist-info").split("-")[0]
    requires: list[Needs] = []
    metadata = directory / "METADATA"
    if metadata.is_file():
        headers = HeaderParser().parsestr(metadata.read_text("utf-8", "replace"))
        name = headers.get("Name") or name
        for line in headers.get_all("Requires-Dist") or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            requires.append(
                Needs(str(canonicalize_name(req.name)), frozenset(req.extras), req.marker)
            )
    files: list[str] = []
    record = directory / "RECORD"
    if record.is_file():
        rows = csv.reader(record.read_text("utf-8", "replace").splitlines())
        for row in rows:
            if row and row[0]:
                files.append(os.path.normpath(f"{site}/{row[0]}").replace(os.sep, "/"))
    return Distribution(str(canonicalize_name(name)), requires, files)


def _read_conda_record(path: Path) -> Distribution | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    requires = []
    for spec in data.get("depends") or []:
        match = _CONDA_NAME.match(str(spec))
        if match:
            requires.append(Needs(f"conda:{match.group(0)}"))
    files = [str(f) for f in data.get("files") or [] if isinstance(f, str)]
    return Distribution(f"conda:{data['name']}", requires, files)


def display(name: str) -> str:
    """A distribution's name as the report shows it (conda packages say so)."""
    return f"{name.removeprefix('conda:')} (conda)" if name.startswith("conda:") else name
