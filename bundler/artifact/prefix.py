"""One installed prefix, read once: its files, its conda records, its pip distributions.

``Prefix.read(root)`` walks ``root`` once (``os.scandir``: directories by their entry
type, one ``lstat`` per other entry) and reads the metadata that says what is there:

- every file (everything that is not a directory: regular files, symlinks, others) with
  its size (a regular file's bytes, 0 for anything else) and its ``lstat`` mode, and
  the directories, empty ones told apart (conda-pack packs those too);
- every ``conda-meta/*.json`` record: name, version, sha256, files, depends, and the
  record as conda wrote it (conda-pack loads each package from it);
- every distribution in a site-packages directory (``lib/pythonX.Y/site-packages``, or
  the ``sites`` given): its canonical name (``packaging``), the name and version its
  ``METADATA`` (``PKG-INFO``) headers give, its ``Requires-Dist``, and the files its
  ``RECORD`` (``installed-files.txt`` for an egg-info) lists, read with ``csv``;
- who owns each file: the conda package that lists it, else the pip distribution
  whose ``RECORD`` does (or whose metadata directory holds it), else nobody.

Everything else (the content rules, the manifest's package list, ``--py-files``,
verify's ownership questions, CUDA detection, conda-pack's file list) is derived from
this one object.  ``parse_record``/``parse_metadata`` are the one way dist-info is read,
also for archives (``content.read_listing``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from packaging.utils import canonicalize_name

#: Where pip installs into a conda prefix (POSIX); ``Prefix.read`` reads these.
SITE_PACKAGES = re.compile(r"^lib/python\d+\.\d+/site-packages$")
_META_DIR = (".dist-info", ".egg-info")
#: A RECORD path that is already normal: no backslash, colon, leading "/" or ".",
#: trailing "/" (and, checked apart, no "/." or "//" inside).
_PLAIN = re.compile(r"^[^/.\\:][^\\:]*(?<!/)$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a prefix (anything but a directory), as ``lstat`` saw it."""

    path: str  # relative to the root, POSIX
    size: int  # a regular file's bytes; 0 for a symlink or anything else
    mode: int  # st_mode

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)


@dataclass(frozen=True)
class CondaRecord:
    """One ``conda-meta/*.json`` record."""

    name: str
    version: str
    meta: str  # "conda-meta/six-1.17.0-pyh_0.json"
    files: tuple[str, ...]  # as the record lists them (relative, POSIX)
    sha256: str | None = None
    depends: tuple[str, ...] = ()
    #: the record as conda wrote it (read-only by convention: conda-pack reads it)
    info: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    manager: ClassVar[str] = "conda"


@dataclass(frozen=True)
class PipDist:
    """One distribution's metadata directory in a site-packages directory."""

    name: str  # canonical (PEP 503): "python-dateutil"
    display: str  # as its metadata says: "python_dateutil", "zope.interface"
    version: str
    metadata_dir: str  # relative to the root: "lib/python3.11/site-packages/six-1.17.0.dist-info"
    site: str  # the site-packages directory it is in, relative to the root ("" for the root)
    #: what RECORD (or an egg-info's installed-files.txt) lists, relative to the root,
    #: in its order; None when nothing records its files.  Paths outside the root are left out.
    files: tuple[str, ...] | None
    requires: tuple[str, ...] = ()  # Requires-Dist, as written
    conda: str | None = None  # the conda package whose record lists its metadata, if any
    manager: ClassVar[str] = "pip"

    @property
    def is_dist_info(self) -> bool:
        return self.metadata_dir.endswith(".dist-info")


Package = CondaRecord | PipDist


@dataclass(frozen=True)
class Prefix:
    """An installed prefix as read once by ``Prefix.read``; every view is derived."""

    root: Path
    entries: Mapping[str, Entry]  # every file by relative path, sorted
    dirs: frozenset[str]  # every directory (not through symlinks), relative
    empty_dirs: frozenset[str]  # the directories with nothing in them
    conda: tuple[CondaRecord, ...] = ()  # by record file name
    pip: tuple[PipDist, ...] = ()  # by metadata directory
    damaged: tuple[str, ...] = ()  # conda-meta/*.json files that are not a readable record
    sites: tuple[str, ...] = ()  # the site-packages directories read
    owners: Mapping[str, Package] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, root: Path, *, sites: Iterable[str] | None = None) -> Prefix:
        """Walk ``root`` once.  ``sites``: the site-packages directories to read, relative
        (``""``: ``root`` is one); by default every ``lib/pythonX.Y/site-packages``."""
        entries, dirs, empty = _walk(str(root))
        found = sorted(d for d in dirs if SITE_PACKAGES.match(d)) if sites is None else list(sites)
        conda, damaged = _read_conda(root, entries)
        pip = [d for site in found for d in _read_site(root, site, entries, dirs)]
        owners = _owners(entries, conda, pip)
        pip = [_installed_by(d, owners) for d in pip]
        return cls(
            root=root,
            entries=MappingProxyType(dict(sorted(entries.items()))),
            dirs=frozenset(dirs),
            empty_dirs=frozenset(empty),
            conda=tuple(conda),
            pip=tuple(pip),
            damaged=tuple(damaged),
            sites=tuple(found),
            owners=MappingProxyType(owners),
        )

    @property
    def paths(self) -> Iterator[str]:
        """Every file's relative path, sorted."""
        return iter(self.entries)

    def size_of(self, path: str) -> int:
        """A regular file's size; 0 for a symlink, anything else, or nothing there."""
        entry = self.entries.get(path)
        return entry.size if entry else 0

    def installed_size(self) -> int:
        """Bytes of every file but conda-meta's (its records hold this machine's package
        cache paths, and conda-pack rewrites them): the same everywhere for one lock."""
        return sum(e.size for p, e in self.entries.items() if not p.startswith("conda-meta/"))

    def package_size(self, package: Package) -> int:
        """Bytes of the files a package lists (each time it lists one)."""
        return sum(self.size_of(p) for p in package.files or ())

    @cached_property
    def _top(self) -> str:
        return os.path.abspath(self.root) + os.sep

    def entry_at(self, path: str) -> Entry | None:
        """The entry of the file at ``path`` (absolute: conda-pack's sources), None when
        it is not one of this prefix's files (a package cache's, a script's)."""
        top = self._top
        return self.entries.get(path[len(top) :]) if path.startswith(top) else None

    def size_at(self, path: str) -> int | None:
        """``entry_at``'s size (0: not a regular file), None when it is not this prefix's."""
        entry = self.entry_at(path)
        return entry.size if entry else None

    def owner_of(self, path: str) -> Package | None:
        """The conda package that lists ``path``, else the pip distribution that does."""
        return self.owners.get(path)

    def unowned(self) -> list[str]:
        """Files no conda record and no pip distribution lists, sorted."""
        return [p for p in self.entries if p not in self.owners]

    def children(self, directory: str) -> list[str]:
        """Names directly in ``directory`` (relative; ``""``: the root), files and
        directories, sorted."""
        base = directory + "/" if directory else ""
        names = {
            p[len(base) :].split("/", 1)[0]
            for p in (*self.entries, *self.dirs)
            if p.startswith(base) and p != directory
        }
        return sorted(names)


# ---------------------------------------------------------------- the walk


def _walk(root: str) -> tuple[dict[str, Entry], set[str], set[str]]:
    """Every file (one lstat each), every directory, and the empty ones."""
    entries: dict[str, Entry] = {}
    dirs: set[str] = set()
    empty: set[str] = set()
    stack = [("", root)]
    while stack:
        rel, path = stack.pop()
        with os.scandir(path) as listing:
            children = list(listing)
        if rel and not children:
            empty.add(rel[:-1])
        for child in children:
            name = rel + child.name
            if child.is_dir(follow_symlinks=False):
                dirs.add(name)
                stack.append((name + "/", child.path))
                continue
            st = child.stat(follow_symlinks=False)
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            entries[name] = Entry(name, size, st.st_mode)
    return entries, dirs, empty


# ---------------------------------------------------------------- conda records


def _read_conda(root: Path, entries: Mapping[str, Entry]) -> tuple[list[CondaRecord], list[str]]:
    records: list[CondaRecord] = []
    damaged: list[str] = []
    metas = sorted(p for p in entries if p.startswith("conda-meta/") and p.endswith(".json"))
    for meta in metas:
        if meta.count("/") != 1:
            continue
        record = conda_record(meta, (root / meta).read_bytes())
        if record is None:
            damaged.append(meta)
        else:
            records.append(record)
    return records, damaged


def conda_record(meta: str, data: bytes) -> CondaRecord | None:
    """A conda-meta record from its bytes; None when it is not one (not a JSON object
    with a name)."""
    try:
        info = json.loads(data)
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    name, version = info.get("name"), info.get("version")
    if not isinstance(name, str):
        return None
    sha = info.get("sha256")
    return CondaRecord(
        name=name,
        version=version if isinstance(version, str) else "",
        meta=meta,
        files=tuple(f for f in info.get("files") or () if isinstance(f, str)),
        sha256=sha if isinstance(sha, str) else None,
        depends=tuple(str(d) for d in info.get("depends") or ()),
        info=info,
    )


# ---------------------------------------------------------------- pip distributions


def metadata_headers(text: str | bytes) -> Message:
    """The headers of a ``METADATA``, ``PKG-INFO`` or ``WHEEL`` file (the body is skipped)."""
    if isinstance(text, bytes):
        return BytesHeaderParser().parsebytes(text)
    return HeaderParser().parsestr(text)


def parse_metadata(text: str) -> tuple[str, str, tuple[str, ...]]:
    """``METADATA``/``PKG-INFO`` headers: name, version, Requires-Dist ("" if absent)."""
    headers = metadata_headers(text)
    requires = tuple(str(r) for r in headers.get_all("Requires-Dist") or ())
    return str(headers.get("Name") or ""), str(headers.get("Version") or ""), requires


def record_path(site: str, rel: str) -> str | None:
    """A path a RECORD lists, relative to the root; None for one outside it."""
    if not rel:
        return None
    if _PLAIN.match(rel) and "/." not in rel and "//" not in rel:  # nothing to normalise
        return f"{site}/{rel}" if site else rel
    rel = rel.replace("\\", "/")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    norm = posixpath.normpath(posixpath.join(site, rel))
    if norm in (".", "..") or norm.startswith("../"):
        return None
    return norm


def parse_record(text: str, site: str) -> tuple[str, ...]:
    """The paths a ``RECORD`` lists (``csv``: a path may be quoted and hold commas),
    relative to the root when ``site`` is the site-packages directory's path in it."""
    rows = csv.reader(io.StringIO(text))
    return tuple(p for row in rows if row and (p := record_path(site, row[0])) is not None)


def _read_site(
    root: Path, site: str, entries: Mapping[str, Entry], dirs: set[str]
) -> Iterator[PipDist]:
    base = site + "/" if site else ""
    inside = (d for d in dirs if d.startswith(base) and "/" not in d[len(base) :])
    for meta_dir in sorted(d for d in inside if d.endswith(_META_DIR)):
        yield _read_dist(root, site, meta_dir, entries)


def _read_text(root: Path, path: str, entries: Mapping[str, Entry]) -> str | None:
    if path not in entries:
        return None
    try:
        return (root / path).read_text(encoding="utf-8", errors="replace")
    except (IsADirectoryError, FileNotFoundError):  # a link to a directory, or to nothing
        return None


def _read_dist(root: Path, site: str, meta_dir: str, entries: Mapping[str, Entry]) -> PipDist:
    name = version = ""
    requires: tuple[str, ...] = ()
    for fname in ("METADATA", "PKG-INFO"):
        text = _read_text(root, f"{meta_dir}/{fname}", entries)
        if text is not None:
            name, version, requires = parse_metadata(text)
            if name:
                break
    if not name:  # "name-version.dist-info"
        stem = meta_dir.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    files: tuple[str, ...] | None = None
    record = _read_text(root, f"{meta_dir}/RECORD", entries)
    if record is not None:
        files = parse_record(record, site)
    elif (installed := _read_text(root, f"{meta_dir}/installed-files.txt", entries)) is not None:
        lines = (line.strip() for line in installed.splitlines())
        files = tuple(p for line in lines if line and (p := record_path(meta_dir, line)))
    return PipDist(
        name=str(canonicalize_name(name)),
        display=name,
        version=version,
        metadata_dir=meta_dir,
        site=site,
        files=files,
        requires=requires,
    )


# ---------------------------------------------------------------- owners


def _owners(
    entries: Mapping[str, Entry], conda: list[CondaRecord], pip: list[PipDist]
) -> dict[str, Package]:
    """Each file's owner: a conda package first (the first record that lists it), then a
    pip distribution (its listed files, then whatever is in its metadata directory)."""
    owners: dict[str, Package] = {}
    for record in conda:
        for path in (*record.files, record.meta):
            if path in entries:
                owners.setdefault(path, record)
    for dist in pip:
        for path in dist.files or ():
            if path in entries:
                owners.setdefault(path, dist)
    inside = {d.metadata_dir + "/": d for d in pip}
    for path in entries:
        if path not in owners and (d := _metadata_dir_of(path, inside)) is not None:
            owners[path] = d
    return owners


def _metadata_dir_of(path: str, inside: Mapping[str, PipDist]) -> PipDist | None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        found = inside.get("/".join(parts[:i]) + "/")
        if found is not None:
            return found
    return None


def _installed_by(dist: PipDist, owners: Mapping[str, Package]) -> PipDist:
    """``dist``, saying which conda package installed it (its RECORD or METADATA is
    in that package's record)."""
    for fname in ("RECORD", "METADATA"):
        owner = owners.get(f"{dist.metadata_dir}/{fname}")
        if isinstance(owner, CondaRecord):
            return replace(dist, conda=owner.name)
    return dist
