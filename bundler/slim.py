"""What an executor image can do without: plan the files to leave out of an archive.

``read_listing`` reads a packed archive once (sizes, which package owns what, which
Python files name which modules); ``plan_slim`` turns it into conda-pack exclude
patterns: pyspark when the base image carries Spark, test suites that no other module
imports, static libraries (not for CUDA variants) and man/info pages.  Headers and
licences stay.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bundler.events import NullReporter, Reporter


@dataclass
class Listing:
    """What an archive holds, read once: sizes, package file lists, test references."""

    sizes: dict[str, int] = field(default_factory=dict)
    package_files: dict[str, list[str]] = field(default_factory=dict)  # pyspark's files
    modules_used: set[str] = field(default_factory=set)  # imported by non-test code
    strings: dict[str, set[str]] = field(default_factory=dict)  # directory -> constants


_TEST_DIRS = ("tests", "test")
_PY_ROOT = re.compile(r"^lib/python\d+\.\d+/(?:site-packages/)?")
_DOC_DIRS = ("share/man/", "share/info/", "share/gtk-doc/", "man/")


def _module_path(path: str) -> list[str] | None:
    """Dotted parts of the module a path under lib/pythonX.Y belongs to, else None."""
    m = _PY_ROOT.match(path)
    if not m:
        return None
    parts = path[m.end() :].split("/")
    if parts[-1] == "__init__.py":
        parts = parts[:-1]
    elif parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    return parts


def _test_dir(path: str) -> str | None:
    """The outermost tests/test directory under lib/pythonX.Y that holds ``path``."""
    m = _PY_ROOT.match(path)
    if not m:
        return None
    parts = path[m.end() :].split("/")
    for i, part in enumerate(parts[:-1]):
        if part in _TEST_DIRS:
            return path[: m.end()] + "/".join(parts[: i + 1])
    return None


def _is_test_code(path: str) -> bool:
    return _test_dir(path) is not None or path.endswith("/conftest.py")


_FROM_RE = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORT_RE = re.compile(r"^[ \t]*import[ \t]+([^\n]*)", re.M)
_DOTTED_RE = re.compile(r"[A-Za-z_][\w.]*\.tests?\b")
_STRING_RE = re.compile(r"""(['"])([^'"\\\n]*test[^'"\\\n]*)\1""")


def _names(text: str) -> list[str]:
    """``a as b, c`` (maybe in parentheses, with comments) -> ``["a", "c"]``."""
    text = re.sub(r"#[^\n]*", "", text).strip().strip("()").replace("\\\n", " ")
    return [item.split()[0] for item in text.split(",") if item.strip()]


def _scan_python(path: str, source: bytes, listing: Listing) -> None:
    """Record the test modules and test-like strings that one non-test module names.

    Regular expressions, not ``ast``: only files that say "test" get here, and the
    net is wide on purpose (a dotted ``x.tests`` anywhere counts as an import).
    """
    text = source.decode("utf-8", "replace")
    parts = _module_path(path) or []
    package = parts if path.endswith("/__init__.py") else parts[:-1]
    used = listing.modules_used
    used.update(_DOTTED_RE.findall(text))
    for dots, module, names in _FROM_RE.findall(text):
        if "test" not in module + names:
            continue
        base = package[: len(package) - len(dots) + 1] if dots else []
        mod = ".".join([*base, module] if module else base)
        used.add(mod)
        used.update(f"{mod}.{name}" for name in _names(names))
    for names in _IMPORT_RE.findall(text):
        if "test" in names:
            used.update(_names(names))
    strings = listing.strings.setdefault(path.rsplit("/", 1)[0], set())
    strings.update(m.group(2) for m in _STRING_RE.finditer(text))


def read_listing(archive: Path, reporter: Reporter | None = None) -> Listing:
    """Read a tar.gz archive once: every file's size, pyspark's files, test references."""
    from isal import igzip

    reporter = reporter or NullReporter()
    reporter.step(f"reading {archive.name}")
    listing = Listing()
    records: dict[str, bytes] = {}
    with igzip.open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if member.isdir():
                continue
            name = member.name.removeprefix("./")
            listing.sizes[name] = member.size if member.isfile() else 0
            if not member.isfile():
                continue
            wanted = name.endswith(".py") and _PY_ROOT.match(name) and not _is_test_code(name)
            hooks = name.endswith(("/entry_points.txt", ".pth")) and _PY_ROOT.match(name)
            meta = re.match(r"conda-meta/pyspark-\d.*\.json$", name) or re.search(
                r"/pyspark-[^/]*\.dist-info/RECORD$", name
            )
            if not (wanted or meta or hooks):
                continue
            fh = tar.extractfile(member)
            data = fh.read() if fh else b""
            if meta:
                records[name] = data
            elif hooks:  # entry points and .pth lines name modules that get imported
                listing.modules_used.update(_DOTTED_RE.findall(data.decode("utf-8", "replace")))
            elif b"test" in data:
                _scan_python(name, data, listing)
    for name, data in records.items():
        if name.startswith("conda-meta/"):
            files = json.loads(data).get("files", [])
            listing.package_files.setdefault("pyspark", []).extend([*files, name])
        else:
            site = name.rsplit("/", 2)[0]
            for line in data.decode("utf-8", "replace").splitlines():
                rel = line.split(",", 1)[0]
                if rel:
                    target = os.path.normpath(f"{site}/{rel}")
                    listing.package_files.setdefault("pyspark", []).append(target)
    return listing


def _test_dir_used(test_dir: str, listing: Listing) -> bool:
    """Whether non-test code may reach ``test_dir``: by import, or by a path in a string.

    A bare ``"tests"`` counts only in modules beside the directory (``os.path.join(
    here, "tests", ...)``); elsewhere in the package the string must name the
    directory's parent too (``"f2py/tests"``) or its dotted module name.
    """
    parts = _module_path(test_dir + "/__init__.py") or []
    dotted, base = ".".join(parts), parts[-1]
    if any(m == dotted or m.startswith(dotted + ".") for m in listing.modules_used):
        return True
    parent = test_dir.rsplit("/", 1)[0]
    m = _PY_ROOT.match(test_dir)
    top = test_dir[: m.end()] + parts[0] if m and len(parts) > 1 else parent
    named = f"{parent.rsplit('/', 1)[-1]}/{base}"
    for directory, strings in listing.strings.items():
        if directory == parent:
            for s in strings:
                if s == base or s.startswith(base + "/") or s.endswith("." + base):
                    return True
        in_package = directory == top or directory.startswith(top + "/")
        if in_package and any(dotted in s or named in s for s in strings):
            return True
    return False


def _collapse(paths: Iterable[str], sizes: dict[str, int]) -> list[str]:
    """Few glob patterns covering exactly ``paths``: whole directories where possible."""
    chosen = {p for p in paths if p in sizes}
    per_dir: Counter[str] = Counter()
    for p in sizes:
        for d in _parents(p):
            per_dir[d] += 1
    mine: Counter[str] = Counter()
    for p in chosen:
        for d in _parents(p):
            mine[d] += 1
    patterns = set()
    for p in chosen:
        top = None
        for d in _parents(p):  # shallowest first
            if mine[d] == per_dir[d] and d.count("/") >= 1:
                top = d
                break
        patterns.add(glob.escape(top) + "/*" if top else glob.escape(p))
    return sorted(patterns)


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


@dataclass(frozen=True)
class SlimPlan:
    """What the image leaves out: glob patterns for conda-pack, bytes per group."""

    exclude: tuple[str, ...] = ()
    removed: dict[str, int] = field(default_factory=dict)
    dropped_modules: tuple[str, ...] = ()
    kept_test_dirs: tuple[str, ...] = ()


def plan_slim(listing: Listing, *, drop_pyspark: bool, slim: bool, cuda: bool) -> SlimPlan:
    """Decide what an executor image can do without, from an archive's listing.

    - pyspark (its files as its conda record or dist-info RECORD lists them) when
      the base image carries Spark, which puts its own pyspark first anyway;
    - with ``slim``: test suites (``tests``/``test`` directories under lib/pythonX.Y)
      unless a non-test module imports them or names them in a string (numexpr's
      ``__init__`` imports ``numexpr.tests``, for instance); static libraries
      (``lib/*.a``, ``lib/*.la``) except for CUDA variants, whose JIT compilers link
      ``libcudadevrt.a`` at run time; man and info pages.
    Headers stay: CuPy, cuDF and torch.compile compile against them at run time.
    """
    groups: dict[str, list[str]] = {}
    sizes = listing.sizes
    if drop_pyspark and listing.package_files.get("pyspark"):
        groups["pyspark"] = _collapse(listing.package_files["pyspark"], sizes)
    kept: tuple[str, ...] = ()
    if slim:
        test_dirs = sorted({d for p in sizes if (d := _test_dir(p))})
        kept = tuple(d for d in test_dirs if _test_dir_used(d, listing))
        groups["tests"] = [glob.escape(d) + "/*" for d in test_dirs if d not in kept]
        if not cuda and any(p.startswith("lib/") and p.endswith((".a", ".la")) for p in sizes):
            groups["static-libs"] = ["lib/*.a", "lib/*.la"]
        docs = [d for d in _DOC_DIRS if any(p.startswith(d) for p in sizes)]
        groups["docs"] = [glob.escape(d) + "*" for d in docs]
    removed: dict[str, int] = {}
    exclude: list[str] = []
    gone: set[str] = set()
    for group, patterns in groups.items():
        if not patterns:
            continue
        matched = {p for p in sizes if p not in gone and _matches(p, patterns)}
        gone |= matched
        removed[group] = sum(sizes[p] for p in matched)
        exclude.extend(patterns)
    dropped = ("pyspark",) if "pyspark" in groups else ()
    return SlimPlan(tuple(exclude), removed, dropped, kept)


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pat) for pat in patterns)
