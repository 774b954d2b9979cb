"""Dynamic linkage of the ELF files in an unpacked environment, without ``ldd``.

``check_linkage(root)`` walks a tree, opens only files that start with ``\\x7fELF``,
reads the dynamic section of each (DT_NEEDED, DT_RPATH, DT_RUNPATH) with pyelftools
and decides, for every needed soname, whether the loader would find it inside the
environment or in the system's C runtime and driver libraries.  Running ``ldd`` would
execute the loader on foreign binaries and resolve against whatever the host has
installed; reading the tables says what the archive itself provides, so a gpu archive
is checked on a machine without a GPU or CUDA.

A needed soname resolves when, in this order:

1. a directory of the object's DT_RUNPATH (or DT_RPATH when it has no RUNPATH), with
   ``$ORIGIN`` substituted, holds it and the file found lies inside the tree;
2. the environment's ``lib/`` holds it (conda's convention: everything links there);
3. the object's own directory holds it (libraries that travel together);
4. it is a system library every Linux host provides: the glibc family, the GCC
   C/C++ runtime that manylinux wheels rely on (allowed, but counted), and the
   NVIDIA driver libraries that only exist where the GPU does.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

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
# The NVIDIA driver: installed with the kernel module on GPU hosts, never packaged.
DRIVER_LIBRARIES = frozenset({"libcuda.so.1"})
DRIVER_PATTERNS = ("libnvidia-*", "libnvcuvid*")


def system_library_kind(soname: str) -> str | None:
    """``"glibc"``, ``"runtime"`` or ``"driver"`` when the host provides ``soname``."""
    if soname in GLIBC_LIBRARIES or any(fnmatch.fnmatchcase(soname, p) for p in GLIBC_PATTERNS):
        return "glibc"
    if soname in SYSTEM_RUNTIME_LIBRARIES:
        return "runtime"
    if soname in DRIVER_LIBRARIES or any(fnmatch.fnmatchcase(soname, p) for p in DRIVER_PATTERNS):
        return "driver"
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
    """
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
                return None
            for segment in elf.iter_segments():
                if not isinstance(segment, DynamicSegment):
                    continue
                needed: list[str] = []
                rpath: list[str] = []
                runpath: list[str] = []
                soname = None
                for tag in segment.iter_tags():
                    # pyelftools sets .needed/.rpath/.runpath/.soname per tag kind
                    kind, value = tag.entry.d_tag, cast(Any, tag)
                    if kind == "DT_NEEDED":
                        needed.append(value.needed)
                    elif kind == "DT_RPATH":
                        rpath.extend(_split_path_list(value.rpath))
                    elif kind == "DT_RUNPATH":
                        runpath.extend(_split_path_list(value.runpath))
                    elif kind == "DT_SONAME":
                        soname = value.soname
                return DynamicInfo(tuple(needed), tuple(rpath), tuple(runpath), soname)
            return None
    except (ELFError, ValueError, KeyError, UnicodeDecodeError, OSError, AssertionError) as exc:
        # pyelftools raises a handful of types on truncated input (construct's
        # StreamError is a ValueError subclass); all mean "not readable as ELF".
        raise ElfReadError(f"{type(exc).__name__}: {exc}") from exc


def iter_elf_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` that start with the ELF magic.

    Symbolic links are not followed (their targets are visited as regular files)
    and a file with several hard links is visited once.
    """
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if st.st_size < 52:  # smaller than any ELF header
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                if is_elf(entry.path):
                    yield Path(entry.path)


@dataclass(frozen=True)
class Unresolved:
    """A needed library the loader would not find from inside the environment."""

    file: str  # relative to the environment root, POSIX separators
    soname: str

    def __str__(self) -> str:
        return f"{self.file} -> {self.soname}"


@dataclass(frozen=True)
class LinkageReport:
    root: Path
    elf_files: int
    dynamic_objects: int
    unresolved: tuple[Unresolved, ...]
    # soname of the GCC runtime -> how many objects take it from the host
    system_runtime: Mapping[str, int] = field(default_factory=dict)
    # driver sonames needed (libcuda.so.1, libnvidia-*) -> how many objects need them
    driver: Mapping[str, int] = field(default_factory=dict)
    unreadable: tuple[tuple[str, str], ...] = ()  # (file, reason)

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def to_dict(self) -> dict[str, object]:
        return {
            "elf_files": self.elf_files,
            "dynamic_objects": self.dynamic_objects,
            "unresolved": [{"file": u.file, "soname": u.soname} for u in self.unresolved],
            "system_runtime": dict(self.system_runtime),
            "driver": dict(self.driver),
            "unreadable": [{"file": f, "reason": r} for f, r in self.unreadable],
        }


class _Resolver:
    """Answers "does the loader find SONAME for the object at PATH inside ROOT"."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.lib = os.path.join(self.root, "lib")
        self.machine = os.uname().machine
        self._inside: dict[str, bool] = {}

    def _found_inside(self, candidate: str) -> bool:
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
                if os.path.isabs(directory) and self._found_inside(
                    os.path.join(os.path.normpath(directory), soname)
                ):
                    return True
        return self._found_inside(os.path.join(self.lib, soname)) or self._found_inside(
            os.path.join(origin, soname)
        )


def check_linkage(
    root: Path, *, progress: Callable[[int, int | None], None] | None = None
) -> LinkageReport:
    """Check that every ELF object under ``root`` finds its needed libraries.

    ``progress(done, total)`` is called while scanning (``total`` None while the
    tree is still being walked).
    """
    root = Path(root)
    resolver = _Resolver(root)
    files = list(iter_elf_files(root))
    total = len(files)
    unresolved: list[Unresolved] = []
    runtime: Counter[str] = Counter()
    driver: Counter[str] = Counter()
    unreadable: list[tuple[str, str]] = []
    dynamic = 0
    for i, path in enumerate(files):
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
            elif kind == "driver":
                driver[soname] += 1
            elif kind is None:
                unresolved.append(Unresolved(rel, soname))
    if progress is not None:
        progress(total, total)
    return LinkageReport(
        root=root,
        elf_files=total,
        dynamic_objects=dynamic,
        unresolved=tuple(unresolved),
        system_runtime=dict(sorted(runtime.items())),
        driver=dict(sorted(driver.items())),
        unreadable=tuple(unreadable),
    )
