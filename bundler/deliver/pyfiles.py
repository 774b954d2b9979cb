"""A variant's pure-Python distributions as one zip for ``spark-submit --py-files``.

Python imports from a zip only pure-Python code (zipimport cannot load compiled
extensions), so every distribution is classified before anything is written:

- left out by policy: pyspark and py4j (Spark ships its own on the workers' path)
  and the installers pip, setuptools and wheel;
- native: a compiled file (``.so``, ``.pyd``, ``.dylib``, ``.dll``, or an ELF or
  Mach-O binary), a wheel tag that is not ``*-none-any``, ``Root-Is-Purelib:
  false``, or no record of its files.  Native distributions are refused by name
  (``NativeDistributionError``) unless ``skip_native`` leaves them out.

The zip holds the packages at its top level (no enclosing folder) with their
``.dist-info`` directories, so ``importlib.metadata`` works on the executors.  It
is reproducible: sorted entries, explicit directory entries (zipimport needs them
for namespace packages), fixed timestamps and modes, no ``__pycache__``.

``zip_site_packages`` works on any site-packages directory; ``make_pyfiles``
builds the variant's prefix from its lock first (``bundler.build.build_prefix``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from bundler.artifact.prefix import PipDist, Prefix, metadata_headers
from bundler.atomic import atomic_write
from bundler.digest import sha256_file
from bundler.errors import BundlerError, NativeDistributionError, UsageError
from bundler.events import NullReporter, Reporter
from bundler.platforms import choose_platform

#: Distributions never put in the zip: Spark provides pyspark/py4j; installers are useless.
EXCLUDED = frozenset(
    {"pyspark", "pyspark-client", "pyspark-connect", "py4j", "pip", "setuptools", "wheel"}
)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_NATIVE_SUFFIX = re.compile(r"\.(so|pyd|dylib|dll)(\.[0-9]+)*$", re.IGNORECASE)
_EXTENSION_MODULE = re.compile(r"\.(cpython-[^./]+|abi3|pypy[^./]*)\.so$|\.pyd$", re.IGNORECASE)
_BINARY_MAGIC = (
    b"\x7fELF",  # Linux shared objects and executables
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit
    b"\xca\xfe\xba\xbe",  # Mach-O universal (also Java class files: checked by suffix below)
)


@dataclass(frozen=True)
class Distribution:
    """One installed distribution in a site-packages directory."""

    name: str  # canonical (PEP 503) name
    version: str
    metadata_dir: str  # e.g. "six-1.17.0.dist-info"
    files: tuple[str, ...]  # posix paths relative to site-packages, existing, sorted
    native_reasons: tuple[str, ...] = ()

    @property
    def is_pure(self) -> bool:
        return not self.native_reasons


@dataclass(frozen=True)
class Skipped:
    name: str
    version: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "reason": self.reason}


@dataclass(frozen=True)
class PyfilesResult:
    path: Path
    size: int
    sha256: str
    included: tuple[tuple[str, str, int], ...]  # (name, version, number of files)
    skipped: tuple[Skipped, ...] = ()  # native, left out with skip_native
    excluded: tuple[str, ...] = ()  # left out by policy (pyspark, pip, ...)
    unowned: tuple[str, ...] = ()  # site-packages entries no distribution claims
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "included": [{"name": n, "version": v, "files": c} for n, v, c in self.included],
            "skipped": [s.to_dict() for s in self.skipped],
            "excluded": list(self.excluded),
            "unowned": list(self.unowned),
            "notes": list(self.notes),
        }


# --- reading a site-packages directory ----------------------------------------------


def _files_of(site: Prefix, dist: PipDist) -> list[str]:
    """The files a distribution's record lists that exist (a symlink: to a file), and
    everything in its metadata directory, which always travels with it; relative to
    the site, read as the root."""
    entries = site.entries
    listed = {p for p in dist.files or () if p in entries}
    files = {p for p in listed if entries[p].is_file or (site.root / p).is_file()}
    inside = dist.metadata_dir + "/"
    files.update(p for p in entries if p.startswith(inside))
    return sorted(files)


def _binary_magic(path: Path) -> bool:
    if path.suffix == ".class":
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head in _BINARY_MAGIC


def _wheel_reasons(meta_dir: Path) -> list[str]:
    wheel = meta_dir / "WHEEL"
    if not wheel.is_file():
        return []
    from packaging.tags import parse_tag

    headers = metadata_headers(wheel.read_text(encoding="utf-8", errors="replace"))
    reasons = []
    if str(headers.get("Root-Is-Purelib", "true")).strip().lower() == "false":
        reasons.append("wheel says Root-Is-Purelib: false")
    for tag_text in headers.get_all("Tag") or []:
        try:
            tags = parse_tag(str(tag_text).strip())
        except ValueError:
            continue
        for tag in tags:
            if tag.abi != "none" or tag.platform != "any" or not tag.interpreter.startswith("py"):
                reasons.append(f"wheel tag {tag} is not pure Python (*-none-any)")
                break
    return reasons


def scan_site_packages(site_packages: Path) -> tuple[list[Distribution], list[str]]:
    """The distributions installed in ``site_packages`` and the top-level entries none owns."""
    site = Prefix.read(site_packages, sites=[""])
    dists: list[Distribution] = []
    owned: set[str] = set()
    for dist in site.pip:
        meta_dir = site_packages / dist.metadata_dir
        reasons: list[str] = []
        if dist.files is None:
            reasons.append(f"{dist.metadata_dir} has no RECORD: cannot tell which files it owns")
        files = _files_of(site, dist)
        reasons.extend(_wheel_reasons(meta_dir))
        native = [p for p in files if _NATIVE_SUFFIX.search(p)]
        native += [p for p in files if p not in native and _binary_magic(site_packages / p)]
        # Name an extension module first: it says more than a vendored library does.
        native.sort(key=lambda p: not _EXTENSION_MODULE.search(p))
        if native:
            more = f" (and {len(native) - 1} more)" if len(native) > 1 else ""
            reasons.insert(0, f"compiled file {native[0]}{more}")
        owned.update(p.split("/", 1)[0] for p in files)
        dists.append(
            Distribution(
                name=dist.name,
                version=dist.version,
                metadata_dir=dist.metadata_dir,
                files=tuple(files),
                native_reasons=tuple(reasons),
            )
        )
    unowned = [
        name
        for name in site.children("")
        if name not in owned and name != "__pycache__" and not name.startswith("README")
    ]
    return dists, unowned


# --- writing the zip ----------------------------------------------------------------


def _zip_members(files: Iterable[str]) -> list[str]:
    """Files plus every parent directory ("pkg/"), sorted."""
    names = set(files)
    for f in list(names):
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            names.add("/".join(parts[:i]) + "/")
    return sorted(names)


def write_zip(site_packages: Path, files: Iterable[str], output: Path) -> tuple[int, str]:
    """Write ``files`` (relative to ``site_packages``) reproducibly; return size and sha256.

    The zip is written to a temporary file beside ``output`` and renamed into place.
    """
    with atomic_write(output) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for name in _zip_members(files):
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = 3  # unix, so the modes below are honoured
                if name.endswith("/"):
                    info.external_attr = (0o40755 << 16) | 0x10
                    info.compress_type = zipfile.ZIP_STORED
                    zf.writestr(info, b"")
                    continue
                src = site_packages / name
                mode = 0o755 if os.access(src, os.X_OK) else 0o644
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with src.open("rb") as fh, zf.open(info, "w") as dst:
                    shutil.copyfileobj(fh, dst, 1 << 20)
        size = tmp.stat().st_size
        sha = sha256_file(tmp)
    return size, sha


def _zippable(path: str) -> bool:
    parts = path.split("/")
    if "__pycache__" in parts or path.endswith((".pyc", ".pyo")):
        return False
    # .pth files are only read from site directories, never from a zip on sys.path.
    return not (len(parts) == 1 and path.endswith(".pth"))


def zip_site_packages(
    site_packages: Path,
    output: Path,
    *,
    skip_native: bool = False,
    exclude: Iterable[str] = EXCLUDED,
    reporter: Reporter | None = None,
) -> PyfilesResult:
    """Zip the pure-Python distributions of ``site_packages`` into ``output``."""
    reporter = reporter or NullReporter()
    if output.suffix.lower() != ".zip":
        raise BundlerError(f"{output}: --py-files needs a .zip", "name the output like deps.zip")
    if not site_packages.is_dir():
        raise BundlerError(f"{site_packages}: not a directory")
    reporter.step(f"Reading distributions in {site_packages}")
    dists, unowned = scan_site_packages(site_packages)
    excluded_names = {canonicalize_name(n) for n in exclude}
    excluded = sorted(d.name for d in dists if d.name in excluded_names)
    candidates = [d for d in dists if d.name not in excluded_names]
    native = [d for d in candidates if not d.is_pure]
    if native and not skip_native:
        described = "; ".join(f"{d.name} {d.version}: {d.native_reasons[0]}" for d in native)
        raise NativeDistributionError(
            f"cannot ship {len(native)} distribution(s) in a --py-files zip: {described}",
            "ship them in the conda archive (bundler pack, spark-submit --archives), "
            "or pass --skip-native to leave them out",
        )
    skipped = tuple(Skipped(d.name, d.version, d.native_reasons[0]) for d in native)
    for s in skipped:
        reporter.warn(f"left out {s.name} {s.version}: {s.reason}")
    pure = [d for d in candidates if d.is_pure]
    files: dict[str, None] = {}
    notes: list[str] = []
    for d in pure:
        for f in d.files:
            if _zippable(f):
                files.setdefault(f, None)
            elif f.endswith(".pth"):
                notes.append(f"{d.name}: {f} left out (a zip on sys.path does not read .pth files)")
    if unowned:
        reporter.warn(
            "left out site-packages entries that no distribution owns: " + ", ".join(unowned)
        )
    reporter.step(f"Writing {output} ({len(pure)} distributions)")
    size, sha256 = write_zip(site_packages, files, output)
    counts = {d.name: sum(1 for f in d.files if _zippable(f)) for d in pure}
    return PyfilesResult(
        path=output,
        size=size,
        sha256=sha256,
        included=tuple((d.name, d.version, counts[d.name]) for d in pure),
        skipped=skipped,
        excluded=tuple(excluded),
        unowned=tuple(unowned),
        notes=tuple(notes),
    )


# --- from a variant -----------------------------------------------------------------


@dataclass(frozen=True)
class PyfilesOptions:
    output: Path
    variant: str | None = None
    site_packages: Path | None = None  # zip this directory instead of building the variant
    platform: str | None = None
    skip_native: bool = False
    workspace: Path = Path(".")
    cache_dir: Path | None = None


def check_source(options: PyfilesOptions) -> None:
    """A variant or a site-packages directory, not both."""
    if (options.variant is None) == (options.site_packages is None):
        raise UsageError("name a VARIANT or pass --site-packages DIR (not both)")


def make_pyfiles(
    options: PyfilesOptions,
    reporter: Reporter | None = None,
) -> PyfilesResult:
    """Build the variant's prefix from its lock in a temporary directory and zip it."""
    reporter = reporter or NullReporter()
    check_source(options)
    if options.site_packages is not None:
        return zip_site_packages(
            options.site_packages,
            options.output,
            skip_native=options.skip_native,
            reporter=reporter,
        )
    assert options.variant is not None  # check_source
    from bundler.variants import load_workspace

    variant = load_workspace(options.workspace).get(options.variant)
    platform = choose_platform(variant.platforms, options.platform)
    from bundler.build import build_prefix

    with tempfile.TemporaryDirectory(prefix="bundler-pyfiles-") as tmp:
        built = build_prefix(
            variant, platform, Path(tmp) / "prefix", cache_dir=options.cache_dir, reporter=reporter
        )
        if built.site_packages is None:
            raise BundlerError(
                f"variant '{variant.name}' locks no conda python for {platform}: "
                "there is no site-packages to zip",
                "add python to the variant's dependencies",
            )
        return zip_site_packages(
            Path(built.site_packages),
            options.output,
            skip_native=options.skip_native,
            reporter=reporter,
        )
