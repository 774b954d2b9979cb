"""Dynamic linkage of the ELF files in an unpacked environment, without ``ldd``.

``check_linkage(root)`` walks a tree once, opens only the files something maps (named
like a shared object, or executable) that start with ``\\x7fELF``, and reads the
dynamic section of each (DT_NEEDED, DT_RPATH, DT_RUNPATH) with pyelftools: a few
kilobytes however large the file.  It decides, for every needed soname, whether the
loader would find it inside the environment or in the host's C runtime and driver
libraries.  Running ``ldd`` would execute the loader on foreign binaries and resolve
against whatever the host has installed; reading the tables says what the archive
itself provides, so a gpu archive is checked on a machine without a GPU or CUDA.

A needed soname resolves when, in this order:

1. a directory of the object's DT_RUNPATH (or DT_RPATH when it has no RUNPATH), with
   ``$ORIGIN`` substituted, holds it and the file found lies inside the tree;
2. the environment's ``lib/`` holds it (conda's convention: everything links there);
3. the object's own directory holds it (libraries that travel together);
4. it is a system library every Linux host provides: the glibc family, the GCC
   C/C++ runtime that manylinux wheels rely on (allowed, but counted), and the
   libraries only some hosts have (``HOST_LIBRARIES``: the NVIDIA driver, RDMA).

Beyond the loader, ``check_linkage`` models how wheels load each other's libraries
from Python (``bundler.check.dists``): see its docstring for every verdict.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.elf.elffile import ELFFile

from bundler.check.dists import DistIndex, display

ELF_MAGIC = b"\x7fELF"

# The glibc family: part of every glibc-based host, never shipped in an environment.
GLIBC_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
        "libcrypt.so.1",
        "libanl.so.1",
        "libmvec.so.1",
        "libthread_db.so.1",
    }
)
GLIBC_PATTERNS = ("ld-linux*.so*", "ld64.so.*")
# The GCC runtime: conda environments carry their own; manylinux wheels use the host's.
SYSTEM_RUNTIME_LIBRARIES = frozenset({"libgcc_s.so.1", "libstdc++.so.6"})
#: Libraries only a host provides, never any environment: the kind, who installs them,
#: and the sonames (fnmatch patterns).  verify lists each one an archive needs once, as
#: "needs on the host"; they are not failures.
HOST_LIBRARIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "driver",
        "the NVIDIA driver",
        ("libcuda.so.1", "libcudadebugger.so.1", "libnvidia-*", "libnvcuvid.so*", "libnvoptix.so*"),
    ),
    (
        "rdma",
        "RDMA/InfiniBand user space (rdma-core)",
        (
            "libibverbs.so.1", "librdmacm.so.1", "libmlx5.so.1", "libmlx4.so.1", "libefa.so.1",
            "libibumad.so.3", "libibmad.so.5", "libibnetdisc.so.5", "libmana.so.1",
        ),
    ),
)  # fmt: skip
HOST_KINDS = {kind: who for kind, who, _ in HOST_LIBRARIES}


def system_library_kind(soname: str) -> str | None:
    """``"glibc"``, ``"runtime"`` or a ``HOST_LIBRARIES`` kind when the host provides it."""
    if soname in GLIBC_LIBRARIES or any(fnmatch.fnmatchcase(soname, p) for p in GLIBC_PATTERNS):
        return "glibc"
    if soname in SYSTEM_RUNTIME_LIBRARIES:
        return "runtime"
    for kind, _, patterns in HOST_LIBRARIES:
        if any(fnmatch.fnmatchcase(soname, p) for p in patterns):
            return kind
    return None


@dataclass(frozen=True)
class DynamicInfo:
    """The loader-relevant entries of one object's dynamic section."""

    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None = None

    @property
    def search_path(self) -> tuple[str, ...]:
        """The directories the loader tries first: RUNPATH, or RPATH when there is none."""
        return self.runpath or self.rpath


class ElfReadError(Exception):
    """A file starts like an ELF file but its dynamic section cannot be read."""


def is_elf(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def _split_path_list(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(":") if p)


def read_dynamic(path: str | os.PathLike[str]) -> DynamicInfo | None:
    """The dynamic section of an executable or shared object.

    None for files the loader never maps by soname: relocatable objects, core files,
    and statically linked programs (no PT_DYNAMIC).  Raises ``ElfReadError`` when
    the file is truncated or malformed.

    Only what the loader reads is read, as the loader reads it: the ELF header, the
    program headers, the PT_DYNAMIC entries, and the few strings they name (found
    through DT_STRTAB and the PT_LOAD segments, not the section headers, which a
    stripped file may lack and which pyelftools would parse all of).  A 1 GB CUDA
    library costs a few kilobytes.
    """
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
                return None
            return _dynamic_info(elf, f)
    except (ELFError, ValueError, KeyError, UnicodeDecodeError, OSError, AssertionError) as exc:
        # pyelftools raises a handful of types on truncated input (construct's
        # StreamError is a ValueError subclass); all mean "not readable as ELF".
        raise ElfReadError(f"{type(exc).__name__}: {exc}") from exc


def _dynamic_info(elf: ELFFile, f: IO[bytes]) -> DynamicInfo | None:
    structs = elf.structs
    loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
    dynamic = None
    for i in range(elf["e_phnum"]):
        header = struct_parse(structs.Elf_Phdr, f, elf["e_phoff"] + i * elf["e_phentsize"])
        if header["p_type"] == "PT_LOAD":
            loads.append((header["p_vaddr"], header["p_filesz"], header["p_offset"]))
        elif header["p_type"] == "PT_DYNAMIC":
            dynamic = header
    if dynamic is None:
        return None
    entries: list[tuple[str, int]] = []
    size = structs.Elf_Dyn.sizeof()
    for i in range(max(dynamic["p_filesz"] // size, 0)):
        entry = struct_parse(structs.Elf_Dyn, f, dynamic["p_offset"] + i * size)
        if entry["d_tag"] == "DT_NULL":
            break
        entries.append((entry["d_tag"], entry["d_val"]))
    strtab = next((v for t, v in entries if t == "DT_STRTAB"), -1)
    table = next((strtab - v + o for v, size, o in loads if v <= strtab < v + size), None)
    if table is None:
        if any(t in _STRING_TAGS for t, _ in entries):
            raise ElfReadError("DT_STRTAB lies in no PT_LOAD segment")
        return DynamicInfo((), (), ())
    values: dict[str, list[str]] = {t: [] for t in _STRING_TAGS}
    for tag, value in entries:
        if tag in values:
            values[tag].append(_string_at(f, table + value))
    return DynamicInfo(
        tuple(values["DT_NEEDED"]),
        tuple(p for v in values["DT_RPATH"] for p in _split_path_list(v)),
        tuple(p for v in values["DT_RUNPATH"] for p in _split_path_list(v)),
        values["DT_SONAME"][0] if values["DT_SONAME"] else None,
    )


_STRING_TAGS = ("DT_NEEDED", "DT_RPATH", "DT_RUNPATH", "DT_SONAME")


def _string_at(f: IO[bytes], offset: int) -> str:
    """The NUL-terminated string at ``offset`` (ElfReadError when the file ends first)."""
    f.seek(offset)
    data = b""
    while b"\0" not in data:
        chunk = f.read(256)
        if not chunk:
            raise ElfReadError(f"a dynamic string at offset {offset} runs past the end")
        data += chunk
    return data.split(b"\0", 1)[0].decode("utf-8")


def iter_elf_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` that start with the ELF magic and that something
    maps: named like a shared object, or executable.

    Symbolic links are not followed (their targets are visited as regular files)
    and a file with several hard links is visited once.
    """
    yield from _Tree.scan(root).elf_files


@dataclass
class _Tree:
    """One walk of the tree: its ELF files, and where each shared-object name lies."""

    elf_files: list[Path] = field(default_factory=list)
    # file name -> paths relative to the root (files and links named like a library)
    libraries: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> _Tree:
        tree = cls()
        seen: set[tuple[int, int]] = set()
        top = os.fspath(root)
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                if ".so" in entry.name:
                    rel = os.path.relpath(entry.path, top).replace(os.sep, "/")
                    tree.libraries.setdefault(entry.name, []).append(rel)
                if entry.is_file(follow_symlinks=False) and tree._new(
                    entry, seen, ".so" in entry.name
                ):
                    tree.elf_files.append(Path(entry.path))
        return tree

    @staticmethod
    def _new(entry: os.DirEntry[str], seen: set[tuple[int, int]], library: bool) -> bool:
        """A regular file seen for the first time (hard links once) that is ELF.

        Only files the loader or Python can map are opened: named like a shared
        object (``.so`` in the name: libraries and extension modules) or executable.
        The rest of a large environment (data, sources, headers) costs no read.
        """
        st = entry.stat(follow_symlinks=False)
        if st.st_size < 52 or not (library or st.st_mode & 0o111):
            return False  # smaller than any ELF header, or nothing maps it
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                return False
            seen.add(key)
        return is_elf(entry.path)


@dataclass(frozen=True)
class Unresolved:
    """A needed library the loader would not find from inside the environment."""

    file: str  # relative to the environment root, POSIX separators
    soname: str
    installed_by: str | None = None  # a distribution that installed it: the file is gone

    def __str__(self) -> str:
        text = f"{self.file} -> {self.soname}"
        if self.installed_by:
            text += f" ({display(self.installed_by)} installed it; the file is gone)"
        return text


@dataclass(frozen=True)
class OptionalModule:
    """An extension module that needs a library nothing here installs, and that its
    package's ``__init__`` does not import: only ``import MODULE`` itself fails."""

    file: str
    module: str
    soname: str

    def __str__(self) -> str:
        return (
            f"{self.module} needs {self.soname}, which no distribution here installs: "
            f"'import {self.module}' would fail ({self.file})"
        )


@dataclass(frozen=True)
class Unrequired:
    """A needed library found only in a distribution the needing file's does not require."""

    file: str
    soname: str
    found: str  # where it is, relative to the root
    owner: str | None  # who installed it (None: no distribution lists it)

    def __str__(self) -> str:
        who = display(self.owner) if self.owner else "no distribution"
        return (
            f"{self.file} -> {self.soname} only at {self.found} ({who}), which its "
            "distribution does not require: it loads only if something loads that first"
        )


@dataclass(frozen=True)
class LinkageReport:
    root: Path
    elf_files: int
    dynamic_objects: int
    unresolved: tuple[Unresolved, ...]
    # soname of the GCC runtime -> how many objects take it from the host
    system_runtime: Mapping[str, int] = field(default_factory=dict)
    # HOST_LIBRARIES kind -> {soname: how many objects need it}
    host: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    unreadable: tuple[tuple[str, str], ...] = ()  # (file, reason)
    # distribution -> needs met by its libraries, loaded by the Python package first
    by_package: Mapping[str, int] = field(default_factory=dict)
    optional: tuple[OptionalModule, ...] = ()
    unrequired: tuple[Unrequired, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unresolved

    @property
    def driver(self) -> Mapping[str, int]:
        return self.host.get("driver", {})

    def to_dict(self) -> dict[str, object]:
        return {
            "elf_files": self.elf_files,
            "dynamic_objects": self.dynamic_objects,
            "unresolved": [
                {"file": u.file, "soname": u.soname, "installed_by": u.installed_by}
                for u in self.unresolved
            ],
            "system_runtime": dict(self.system_runtime),
            "host": {k: dict(v) for k, v in self.host.items()},
            "loaded_by_package": dict(self.by_package),
            "optional": [
                {"file": o.file, "module": o.module, "soname": o.soname} for o in self.optional
            ],
            "unrequired": [
                {"file": u.file, "soname": u.soname, "found": u.found, "owner": u.owner}
                for u in self.unrequired
            ],
            "unreadable": [{"file": f, "reason": r} for f, r in self.unreadable],
        }


class _Resolver:
    """Answers "does the loader find SONAME for the object at PATH inside ROOT"."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.lib = os.path.join(self.root, "lib")
        self.machine = os.uname().machine
        self._inside: dict[str, bool] = {}

    def found_inside(self, candidate: str) -> bool:
        """``candidate`` exists (following links) and its real path is in the tree."""
        cached = self._inside.get(candidate)
        if cached is None:
            real = os.path.realpath(candidate)
            cached = (real == self.root or real.startswith(self.root + os.sep)) and os.path.isfile(
                real
            )
            self._inside[candidate] = cached
        return cached

    def _expand(self, entry: str, origin: str) -> list[str]:
        text = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        text = text.replace("${PLATFORM}", self.machine).replace("$PLATFORM", self.machine)
        if "$LIB" in text or "${LIB}" in text:
            return [text.replace("${LIB}", lib).replace("$LIB", lib) for lib in ("lib64", "lib")]
        return [text]

    def resolves(self, soname: str, origin: str, info: DynamicInfo) -> bool:
        if "/" in soname:  # a path, looked up relative to the working directory
            return False
        for entry in info.search_path:
            for directory in self._expand(entry, origin):
                if os.path.isabs(directory) and self.found_inside(
                    os.path.join(os.path.normpath(directory), soname)
                ):
                    return True
        return self.found_inside(os.path.join(self.lib, soname)) or self.found_inside(
            os.path.join(origin, soname)
        )


#: An extension module inside a package: ``pkg/sub/name.cpython-311-x86_64-linux-gnu.so``,
#: ``name.abi3.so`` or ``name.so`` (a ``lib*.so`` is taken for a library, not a module).
_EXTENSION = re.compile(
    r"^lib/python\d+\.\d+/site-packages/(.+)/"
    r"(?:([A-Za-z_]\w*)(?:\.cpython-[^/]*|\.abi3)\.so|(?!lib)([A-Za-z_]\w*)\.so)$"
)
#: An import statement, with a parenthesised name list over several lines.
_IMPORT = re.compile(r"^[ \t]*(?:from|import)\b[^\n(]*(?:\([^)]*\)|[^\n]*)", re.M)


class _Classifier:
    """What a needed library that is not on the search path means (see ``check_linkage``)."""

    def __init__(self, root: Path, tree: _Tree, resolver: _Resolver) -> None:
        self.root = root
        self.tree = tree
        self.resolver = resolver
        self._dists: DistIndex | None = None
        self._imported: dict[str, str] = {}
        self.by_package: Counter[str] = Counter()
        self.unresolved: list[Unresolved] = []
        self.optional: list[OptionalModule] = []
        self.unrequired: list[Unrequired] = []

    @property
    def dists(self) -> DistIndex:
        if self._dists is None:
            self._dists = DistIndex.read(self.root)
        return self._dists

    def classify(self, rel: str, soname: str) -> None:
        present = [
            p
            for p in self.tree.libraries.get(soname, [])
            if p != rel and self.resolver.found_inside(os.path.join(self.resolver.root, p))
        ]
        if present:
            self._found_elsewhere(rel, soname, present)
        elif listed := self.dists.listing(soname):
            self.unresolved.append(Unresolved(rel, soname, sorted(listed)[0]))
        elif module := self._optional_module(rel):
            self.optional.append(OptionalModule(rel, module, soname))
        else:
            self.unresolved.append(Unresolved(rel, soname))

    def _found_elsewhere(self, rel: str, soname: str, present: list[str]) -> None:
        required: set[str] = set()
        for owner in self.dists.owners(rel):
            required |= self.dists.requires(owner)
        first_owner = None
        for path in present:
            owners = self.dists.owners(path)
            first_owner = first_owner or min(owners, default=None)
            loaded = sorted(owners & required)
            if loaded:
                self.by_package[loaded[0]] += 1
                return
        self.unrequired.append(Unrequired(rel, soname, present[0], first_owner))

    def _optional_module(self, rel: str) -> str | None:
        """The dotted name of the extension module ``rel`` when its package's
        ``__init__`` does not import it (None: not such a module, or imported)."""
        match = _EXTENSION.match(rel)
        if match is None:
            return None
        package, name = match.group(1), match.group(2) or match.group(3)
        init = self.root / rel.rsplit("/", 1)[0] / "__init__.py"
        if package not in self._imported:
            try:
                self._imported[package] = init.read_text("utf-8", "replace")
            except OSError:
                return None  # a namespace or top-level module: nothing makes it optional
        word = re.compile(rf"\b{re.escape(name)}\b")
        if any(word.search(m.group(0)) for m in _IMPORT.finditer(self._imported[package])):
            return None
        return ".".join([*package.split("/"), name])


def check_linkage(
    root: Path, *, progress: Callable[[int, int | None], None] | None = None
) -> LinkageReport:
    """Check that every ELF object under ``root`` finds its needed libraries.

    A needed soname that is not on the object's search path (module docstring) is:

    - a host library (glibc, the GCC runtime, ``HOST_LIBRARIES``): counted, not failed;
    - found elsewhere in the tree, installed by a distribution that the needing file's
      distribution requires (``bundler.check.dists``): loaded by the Python package
      first, as RAPIDS' and NVIDIA's wheels do; counted, not failed;
    - found elsewhere, but in no distribution the needing file's requires: it loads only
      when something else loaded it first; a warning (``unrequired``);
    - listed by a distribution but not on disk: the file is gone; a failure;
    - in no distribution at all, needed by an extension module that its package's
      ``__init__`` does not import: an optional module; a warning;
    - anything else: not found; a failure.

    ``progress(done, total)`` is called while scanning.
    """
    root = Path(root)
    resolver = _Resolver(root)
    tree = _Tree.scan(root)
    classifier = _Classifier(root, tree, resolver)
    total = len(tree.elf_files)
    runtime: Counter[str] = Counter()
    host: dict[str, Counter[str]] = {}
    unreadable: list[tuple[str, str]] = []
    dynamic = 0
    for i, path in enumerate(tree.elf_files):
        if progress is not None and i % 200 == 0:
            progress(i, total)
        rel = path.relative_to(root).as_posix()
        try:
            info = read_dynamic(path)
        except ElfReadError as exc:
            unreadable.append((rel, str(exc)))
            continue
        if info is None:
            continue
        dynamic += 1
        origin = os.path.dirname(os.path.realpath(path))
        for soname in info.needed:
            if resolver.resolves(soname, origin, info):
                continue
            kind = system_library_kind(soname)
            if kind == "runtime":
                runtime[soname] += 1
            elif kind in HOST_KINDS:
                host.setdefault(kind, Counter())[soname] += 1
            elif kind is None:
                classifier.classify(rel, soname)
    if progress is not None:
        progress(total, total)
    return LinkageReport(
        root=root,
        elf_files=total,
        dynamic_objects=dynamic,
        unresolved=tuple(classifier.unresolved),
        system_runtime=dict(sorted(runtime.items())),
        host={k: dict(sorted(host[k].items())) for k in HOST_KINDS if k in host},
        unreadable=tuple(unreadable),
        by_package=dict(sorted(classifier.by_package.items())),
        optional=tuple(classifier.optional),
        unrequired=tuple(classifier.unrequired),
    )
