"""What an executor does without: the one rule set for ``bundler pack`` and ``bundler image``.

Executors (and an image layer for them) need less than the environment holds:

- ``pyspark`` (with its ``py4j``): Spark puts its own pyspark and py4j first on every
  executor's ``PYTHONPATH`` (YARN, Kubernetes, standalone), so the environment's
  copy is never imported there;
- ``tests``: test suites that no module of the package imports or names;
- ``static-libs``: ``*.a``, ``*.la`` right in the prefix's ``lib/`` (conda's; never a
  wheel's under site-packages), kept in a CUDA environment, whose JIT compilers link
  ``libcudadevrt.a`` at run time;
- ``docs``: man, info and gtk-doc pages;
- ``bytecode``: ``*.pyc``, which differs between installs; Python compiles on import.

``read_listing`` (a packed archive, read once) and ``read_prefix`` (an installed
prefix, from its ``prefix.Prefix``) give the same ``Listing``: sizes, which files pyspark
and py4j own, which Python files name which test modules.  ``plan_content`` turns a
listing into conda-pack exclude patterns and what each group leaves out (``LeftOut``:
bytes and files).  Headers and licences stay.
"""

from __future__ import annotations

import fnmatch
import glob
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bundler.artifact.formats import archive_format
from bundler.artifact.manifest import Content, LeftOut
from bundler.artifact.prefix import Prefix, conda_record, parse_record
from bundler.events import NullReporter, Reporter


@dataclass
class Listing:
    """What an archive holds, read once: sizes, package file lists, test references."""

    sizes: dict[str, int] = field(default_factory=dict)
    package_files: dict[str, list[str]] = field(default_factory=dict)  # pyspark, py4j
    modules_used: set[str] = field(default_factory=set)  # imported by non-test code
    strings: dict[str, set[str]] = field(default_factory=dict)  # directory -> constants


_TEST_DIRS = ("tests", "test")
#: conda's static libraries: right in the prefix's ``lib/``.  Patterns would not do:
#: fnmatch's ``*`` crosses ``/``, so ``lib/*.a`` also matched every ``.a`` under
#: site-packages, where wheels keep the ones they link at run time (numba-cuda links
#: ``nvidia/cuda_runtime/lib/libcudadevrt.a``).  Wheels' files are never this rule's.
_STATIC_LIB = re.compile(r"^lib/[^/]+\.(?:a|la)$")
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
_TESTS_SUFFIX_RE = re.compile(r"\.tests?\b")
_NAME_START_RE = re.compile(r"[A-Za-z_]")
_STRING_RE = re.compile(r"""(['"])([^'"\\\n]*test[^'"\\\n]*)\1""")


def _names(text: str) -> list[str]:
    """``a as b, c`` (maybe in parentheses, with comments) -> ``["a", "c"]``."""
    text = re.sub(r"#[^\n]*", "", text).strip().strip("()").replace("\\\n", " ")
    return [item.split()[0] for item in text.split(",") if item.strip()]


def _dotted_tests(text: str) -> Iterator[str]:
    """Dotted names ending in ``.test``/``.tests`` (``numexpr.tests``, ``a.b.test``).

    Found from each ``.test`` by walking back over the name: a regular expression that
    tries every identifier start is several times slower on large sources.
    """
    for m in _TESTS_SUFFIX_RE.finditer(text):
        i = m.start()
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
            i -= 1
        start = _NAME_START_RE.search(text, i, m.start())
        if start:
            yield text[start.start() : m.end()]


def _scan_python(path: str, source: bytes, listing: Listing) -> None:
    """Record the test modules and test-like strings that one non-test module names.

    Regular expressions, not ``ast``: only files that say "test" get here, and the
    net is wide on purpose (a dotted ``x.tests`` anywhere counts as an import).
    """
    text = source.decode("utf-8", "replace")
    parts = _module_path(path) or []
    package = parts if path.endswith("/__init__.py") else parts[:-1]
    used = listing.modules_used
    used.update(_dotted_tests(text))
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


#: What Spark puts first on its executors' PYTHONPATH: pyspark.zip and py4j's zip.
SPARK_PACKAGES = ("pyspark", "py4j")
_SPARK_META = re.compile(r"^conda-meta/(pyspark|py4j)-\d[^/]*\.json$")
_SPARK_RECORD = re.compile(r"/(pyspark|py4j)-\d[^/]*\.dist-info/RECORD$")


class _ListingReader:
    """Feeds one file at a time into a Listing; shared by archives and prefixes."""

    def __init__(self, scan: bool = True) -> None:
        self.listing = Listing()
        self.records: dict[str, tuple[str, bytes]] = {}  # path -> (package, data)
        self.scan = scan  # read Python sources for test references

    def scans(self, name: str) -> bool:
        """Whether ``name`` is a source read for test references."""
        if not self.scan:
            return False
        if name.endswith(".py"):
            return bool(_PY_ROOT.match(name)) and not _is_test_code(name)
        if name.endswith(("/entry_points.txt", ".pth")):
            return bool(_PY_ROOT.match(name))
        return False

    def wants(self, name: str) -> bool:
        """Whether ``name``'s content is needed (else only its size is)."""
        return self.scans(name) or bool(_SPARK_META.match(name) or _SPARK_RECORD.search(name))

    def add(self, name: str, size: int, data: bytes | None = None) -> None:
        self.listing.sizes[name] = size
        if data is None:
            return
        meta = _SPARK_META.match(name) or _SPARK_RECORD.search(name)
        if meta:
            self.records[name] = (meta.group(1), data)
        elif not name.endswith(".py"):  # entry points and .pth lines name imported modules
            self.listing.modules_used.update(_dotted_tests(data.decode("utf-8", "replace")))
        elif b"test" in data:
            _scan_python(name, data, self.listing)

    def finish(self) -> Listing:
        owned = self.listing.package_files
        for name, (package, data) in sorted(self.records.items()):
            if name.startswith("conda-meta/"):
                record = conda_record(name, data)
                files = list(record.files) if record else []
                owned.setdefault(package, []).extend([*files, name])
            else:
                site = name.rsplit("/", 2)[0]
                text = data.decode("utf-8", "replace")
                owned.setdefault(package, []).extend(parse_record(text, site))
        return self.listing


def read_listing(archive: Path, reporter: Reporter | None = None) -> Listing:
    """Read a tar.gz (or plain .tar) archive once: every file's size, pyspark's files,
    test references."""
    from isal import igzip

    reporter = reporter or NullReporter()
    reporter.step(f"reading {archive.name}")
    reader = _ListingReader()
    plain = archive_format(archive) == "tar"
    opened = open(archive, "rb") if plain else igzip.open(archive, "rb")  # noqa: SIM115
    with opened as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if member.isdir():
                continue
            name = member.name.removeprefix("./")
            if not member.isfile():
                reader.add(name, 0)
            elif reader.wants(name):
                fh = tar.extractfile(member)
                reader.add(name, member.size, fh.read() if fh else b"")
            else:
                reader.add(name, member.size)
    return reader.finish()


def read_prefix(prefix: Prefix | Path, scan: bool = True) -> Listing:
    """The same for an installed prefix (symlinks count as entries of size 0): sizes
    and pyspark's and py4j's files from the ``Prefix``; Python sources read here.

    Without ``scan`` no Python source is read (enough when test suites stay).
    """
    if not isinstance(prefix, Prefix):
        prefix = Prefix.read(prefix)
    reader = _ListingReader(scan)
    for name, entry in prefix.entries.items():
        if entry.is_file and reader.scans(name):
            reader.add(name, entry.size, (prefix.root / name).read_bytes())
        else:
            reader.add(name, entry.size)
    listing = reader.finish()
    owned = listing.package_files
    for record in prefix.conda:
        if record.name in SPARK_PACKAGES:
            owned.setdefault(record.name, []).extend([*record.files, record.meta])
    for dist in prefix.pip:
        if dist.name in SPARK_PACKAGES and dist.is_dist_info and dist.files:
            owned.setdefault(dist.name, []).extend(dist.files or ())
    return listing


def _test_dir_used(test_dir: str, listing: Listing) -> bool:
    """Whether non-test code may reach ``test_dir``: by import, or by a path in a string.

    A bare ``"tests"`` counts only in modules beside the directory (``os.path.join(
    here, "tests", ...)``); elsewhere in the package the string must start with the
    directory's parent too (``"f2py/tests"``) or name its dotted module name.
    """
    parts = _module_path(test_dir + "/__init__.py") or []
    dotted, base = ".".join(parts), parts[-1]
    if any(m == dotted or m.startswith(dotted + ".") for m in listing.modules_used):
        return True
    parent = test_dir.rsplit("/", 1)[0]
    m = _PY_ROOT.match(test_dir)
    top = test_dir[: m.end()] + parts[0] if m and len(parts) > 1 else parent
    # "f2py/tests/data", "../io/tests", f"{here}/io/tests"; not the middle of a URL
    # ("https://.../pandas/main/pandas/tests/io/data/csv/iris.csv" in pandas' docstrings).
    named = re.compile(
        r"(?:^[./]*|\}/|\./)" + re.escape(f"{parent.rsplit('/', 1)[-1]}/{base}") + "(?:/|$)"
    )
    for directory, strings in listing.strings.items():
        if directory == parent:
            for s in strings:
                if s == base or s.startswith(base + "/") or s.endswith("." + base):
                    return True
        in_package = directory == top or directory.startswith(top + "/")
        if in_package and any(dotted in s or named.search(s) for s in strings):
            return True
    return False


def _collapse(paths: Iterable[str], sizes: dict[str, int], bytecode: bool = False) -> list[str]:
    """Few glob patterns covering exactly ``paths``: whole directories where possible.

    With ``bytecode`` (left out anyway) ``*.pyc`` files do not keep a directory whole.
    """
    chosen = {p for p in paths if p in sizes}
    per_dir: Counter[str] = Counter()
    for p in sizes:
        if bytecode and p not in chosen and _is_bytecode(p):
            continue
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


def _is_bytecode(path: str) -> bool:
    return path.endswith(".pyc") or "/__pycache__/" in path


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


#: Groups an executor archive leaves out, in the order they are matched; ``--full``
#: keeps them all.  Bytecode is decided separately (``bytecode=``).
GROUPS = ("pyspark", "tests", "static-libs", "docs")
#: Bytecode differs between two installs of one lock; executors compile on import.
BYTECODE = ("*.pyc", "*/__pycache__")


def content_for(kept: Iterable[str]) -> Content:
    """``full`` when every group is kept (nothing executors do without is left out),
    else ``executor``."""
    return "full" if set(kept) >= set(GROUPS) else "executor"


@dataclass(frozen=True)
class ContentPlan:
    """What an archive leaves out: the glob patterns for conda-pack, what each group
    that matched files leaves out, and the modules Spark provides instead."""

    exclude_patterns: tuple[str, ...] = ()
    left_out: dict[str, LeftOut] = field(default_factory=dict)  # in the order of GROUPS
    left_out_imports: tuple[str, ...] = ()  # pyspark, py4j: executors import Spark's
    kept_test_dirs: tuple[str, ...] = ()  # test suites that non-test code reaches


def plan_content(
    listing: Listing, *, keep: Iterable[str] = (), cuda: bool, bytecode: bool = False
) -> ContentPlan:
    """The plan for an archive that keeps the groups in ``keep`` (all of GROUPS: full).

    Each group not kept is left out:

    - ``pyspark``: pyspark and py4j (their files as their conda records or dist-info
      RECORDs list them), as Spark puts its own first on the executors' path;
    - ``tests``: test suites (``tests``/``test`` directories under lib/pythonX.Y)
      unless a non-test module imports them or names them in a string (numexpr's
      ``__init__`` imports ``numexpr.tests``, for instance);
    - ``static-libs``: ``*.a``, ``*.la`` right in ``lib/``, listed file by file, except
      with ``cuda``, whose JIT compilers link ``libcudadevrt.a`` at run time;
    - ``docs``: man and info pages.

    ``bytecode`` leaves ``*.pyc`` files out too.  Headers stay: CuPy, cuDF and
    torch.compile compile against them at run time.  Unknown group names are a
    programming error.
    """
    kept = set(keep)
    unknown = kept - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown content groups: {sorted(unknown)}")
    sizes = listing.sizes
    groups: dict[str, list[str]] = {}
    spark = () if "pyspark" in kept else _spark_packages(listing)
    if spark:
        owned = listing.package_files
        groups["pyspark"] = _collapse([f for n in spark for f in owned[n]], sizes, bytecode)
    kept_tests: tuple[str, ...] = ()
    if "tests" not in kept:
        kept_tests, groups["tests"] = _test_patterns(listing)
    if "static-libs" not in kept and not cuda:
        groups["static-libs"] = [glob.escape(p) for p in sorted(sizes) if _STATIC_LIB.match(p)]
    if "docs" not in kept:
        docs = [d for d in _DOC_DIRS if any(p.startswith(d) for p in sizes)]
        groups["docs"] = [glob.escape(d) + "*" for d in docs]
    if bytecode:
        groups["bytecode"] = list(BYTECODE)
    patterns, left_out = _leave_out(groups, sizes)
    return ContentPlan(patterns, left_out, spark, kept_tests)


def _spark_packages(listing: Listing) -> tuple[str, ...]:
    """pyspark and py4j when the listing holds pyspark's files, else nothing."""
    owned = listing.package_files
    if not owned.get("pyspark"):
        return ()
    return tuple(n for n in SPARK_PACKAGES if owned.get(n))


def _test_patterns(listing: Listing) -> tuple[tuple[str, ...], list[str]]:
    """The test directories non-test code reaches (kept), and patterns for the rest."""
    test_dirs = sorted({d for p in listing.sizes if (d := _test_dir(p))})
    kept = tuple(d for d in test_dirs if _test_dir_used(d, listing))
    return kept, [glob.escape(d) + "/*" for d in test_dirs if d not in kept]


def _leave_out(
    groups: dict[str, list[str]], sizes: dict[str, int]
) -> tuple[tuple[str, ...], dict[str, LeftOut]]:
    """All the groups' patterns, and what each leaves out (a file counts for the first
    group that matches it; a group that matches nothing is not listed)."""
    patterns: list[str] = []
    left_out: dict[str, LeftOut] = {}
    gone: set[str] = set()
    for group, group_patterns in groups.items():
        if not group_patterns:
            continue
        match = compile_patterns(group_patterns)
        matched = {p for p in sizes if p not in gone and match(p)}
        gone |= matched
        patterns.extend(group_patterns)
        if matched:
            left_out[group] = LeftOut(sum(sizes[p] for p in matched), len(matched))
    return tuple(patterns), left_out


def compile_patterns(patterns: Iterable[str]) -> Callable[[str], bool]:
    """One matcher for many conda-pack exclude patterns (``fnmatch`` on the target path)."""
    regex = "|".join(fnmatch.translate(p) for p in patterns)
    if not regex:
        return lambda _path: False
    return re.compile(regex).match  # type: ignore[return-value]
