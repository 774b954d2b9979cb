"""Which distribution installed which file of an unpacked environment, and what each requires.

The loader is not the only thing that loads libraries in a Python environment.  Wheels
carry no RPATH to each other: RAPIDS' ``libcudf`` package dlopens ``libcudf.so`` (and
the ``nvidia/*/lib`` libraries) from Python before the extension modules that NEED them
are imported, and glibc then finds them by soname among the objects already loaded.  So
a library that is not on an object's search path still loads when the distribution
that installed it is one the needing file's distribution requires, directly or through
others: it is imported first.

``DistIndex.read(root)`` takes, from one ``Prefix.read`` of the root:

- every ``site-packages/*.dist-info``: its name, its ``Requires-Dist`` (names, extras
  and markers parsed by ``packaging``, markers evaluated for the environment's Python
  on Linux) and its ``RECORD`` (the files it installed);
- every ``conda-meta/*.json`` record: its name, ``depends`` and ``files``.

It answers who owns a path, which distributions list a file of a given name (so a
library that a distribution installed but that is gone is told apart from one that
nothing here ever had), and whether one distribution requires another.
"""

from __future__ import annotations

import fnmatch
import platform
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler.artifact.prefix import PipDist, Prefix

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
    def read(cls, root: Path | Prefix) -> DistIndex:
        """The index of an environment: an unpacked archive's root, or a read ``Prefix``."""
        prefix = root if isinstance(root, Prefix) else Prefix.read(root)
        python = None
        for site in prefix.sites:
            if match := _SITE.match(site):
                python = (match.group(1), match.group(2))
        dists = [_pip_distribution(d) for d in prefix.pip if _SITE.match(d.site) and d.is_dist_info]
        dists.extend(
            Distribution(f"conda:{r.name}", _conda_needs(r.depends), list(r.files))
            for r in prefix.conda
        )
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


def _pip_distribution(dist: PipDist) -> Distribution:
    requires: list[Needs] = []
    for line in dist.requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        requires.append(Needs(str(canonicalize_name(req.name)), frozenset(req.extras), req.marker))
    return Distribution(dist.name, requires, list(dist.files or ()))


def _conda_needs(depends: Iterable[str]) -> list[Needs]:
    matches = (_CONDA_NAME.match(spec) for spec in depends)
    return [Needs(f"conda:{m.group(0)}") for m in matches if m]


def display(name: str) -> str:
    """A distribution's name as the report shows it (conda packages say so)."""
    return f"{name.removeprefix('conda:')} (conda)" if name.startswith("conda:") else name
