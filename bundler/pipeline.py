"""``bundler pack`` as explicit steps: fresh lock -> build -> pack -> manifest.

``plan_pack`` turns the options into a frozen ``PackPlan`` without a solver, a build
or a byte written (unit-tested on its own); ``run_pack`` executes it:

1. **fresh lock**: the variant's lock must match its inputs (``require_fresh``);
2. **build**: the prefix is installed from the lock at the fixed build location;
3. **pack**: ``artifact.pack.write_pack`` writes the archive;
4. **manifest**: ... and the manifest beside it, both renamed into place together.

Packing an existing prefix (``--prefix``) skips steps 1 and 2.  The CLI, ``bundler
image`` and ``bench/`` all pack through ``pack_archive``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bundler import __version__
from bundler.artifact.content import GROUPS, content_for
from bundler.artifact.formats import archive_format
from bundler.artifact.manifest import Manifest, PackageRecord
from bundler.artifact.pack import (
    ArchiveOptions,
    PackResult,
    check_compression,
    check_writable,
    write_pack,
)
from bundler.build import build_location, build_prefix, build_prefix_path
from bundler.digest import sha256_file
from bundler.errors import PackError, UsageError
from bundler.events import NullReporter, Reporter
from bundler.platforms import choose_platform, host_platform
from bundler.solve.lockfile import locked_packages, require_fresh
from bundler.variants import Variant, load_workspace


@dataclass(frozen=True)
class PackOptions:
    workspace: Path = Path(".")
    variant: str | None = None
    output: Path | None = None
    platform: str | None = None
    prefix: Path | None = None
    level: int | None = None
    threads: int | None = None
    exclude: tuple[str, ...] = ()
    # Default: strip (executors compile on import; bytecode differs between installs),
    # except for a --full pack of an existing prefix.
    keep_bytecode: bool | None = None
    # An executor archive (the default) leaves out content.GROUPS; full keeps them all,
    # keep only the groups named (the image layer for a base without Spark keeps pyspark).
    full: bool = False
    keep: tuple[str, ...] = ()

    @property
    def kept(self) -> tuple[str, ...]:
        return GROUPS if self.full else tuple(g for g in GROUPS if g in self.keep)


@dataclass(frozen=True)
class PackPlan:
    """Everything one pack will do, decided before anything runs."""

    prefix: Path  # the build location (a variant) or the existing prefix (--prefix)
    output: Path
    identity: Manifest  # what the manifest says before the archive exists
    archive: ArchiveOptions
    variant: Variant | None = None  # None: pack an existing prefix, no lock, no build
    platform: str | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        build = ("fresh lock", "build") if self.variant is not None else ()
        return (*build, "pack", "manifest")


def plan_pack(options: PackOptions) -> PackPlan:
    """The ``PackPlan`` for these options; UsageError/PackError/WorkspaceError for bad input."""
    check_source(options)
    check_compression(options.level, options.threads)
    if options.prefix is not None:
        return _plan_prefix(options, options.prefix)
    assert options.variant is not None  # check_source
    ws = load_workspace(options.workspace)
    variant = ws.get(options.variant)
    platform = choose_platform(variant.platforms, options.platform)
    output = options.output or ws.root / "dist" / f"{variant.name}-{platform}.tar.gz"
    archive_format(output, writing=True)
    prefix = build_prefix_path(variant.name, platform)
    identity = Manifest(
        bundler_version=__version__,
        variant=variant.name,
        platform=platform,
        inputs_hash=variant.inputs_hash(),
        imports=tuple(variant.imports),
        gpu_imports=tuple(variant.gpu_imports),
        build_prefix=str(prefix),
    )
    archive = ArchiveOptions(
        level=options.level,
        threads=options.threads,
        exclude_patterns=options.exclude,
        kept=options.kept,
        cuda=variant.cuda is not None,
        bytecode=not options.keep_bytecode,
    )
    return PackPlan(prefix, output, identity, archive, variant=variant, platform=platform)


def check_source(options: PackOptions) -> None:
    """A variant or an existing prefix, not both; a prefix names its archive."""
    if (options.variant is None) == (options.prefix is None):
        raise UsageError("name a VARIANT or pass --prefix DIR (not both)")
    if options.prefix is not None and options.output is None:
        raise UsageError("--prefix needs -o PATH")


def _plan_prefix(options: PackOptions, prefix: Path) -> PackPlan:
    assert options.output is not None  # check_source
    if not (prefix / "conda-meta").is_dir():
        raise PackError(
            f"{prefix} is not a conda environment (no conda-meta/)",
            "pass the prefix of an environment made by conda, mamba, pixi or bundler",
        )
    archive_format(options.output, writing=True)
    keep_bytecode = (
        content_for(options.kept) == "full"
        if options.keep_bytecode is None
        else options.keep_bytecode
    )
    identity = Manifest(
        bundler_version=__version__,
        platform=host_platform(),
        # no lock, so no inputs_hash nor lock_sha256: absent, never null or "None"
        build_prefix=str(prefix.resolve()),
    )
    archive = ArchiveOptions(
        level=options.level,
        threads=options.threads,
        exclude_patterns=options.exclude,
        kept=options.kept,
        bytecode=not keep_bytecode,
    )
    return PackPlan(prefix, options.output, identity, archive)


def run_pack(plan: PackPlan, reporter: Reporter | None = None) -> PackResult:
    """Execute the plan's steps in order; nothing is left under the output's name on failure."""
    reporter = reporter or NullReporter()
    variant = plan.variant
    check_writable(plan.output)  # a read-only -o fails now, not after the build
    if variant is None:
        return write_pack(plan.prefix, plan.output, plan.identity, plan.archive, reporter)
    assert plan.platform is not None
    require_fresh(variant)  # 1. fresh lock
    locked = tuple(
        PackageRecord(p.name, p.version, p.manager, sha256=p.sha256)
        for p in locked_packages(variant, plan.platform)
    )
    identity = replace(plan.identity, lock_sha256=sha256_file(variant.lock_path), packages=locked)
    with build_location(plan.prefix, reporter):
        built = build_prefix(variant, plan.platform, plan.prefix, reporter=reporter)  # 2. build
        identity = replace(identity, python=built.python_version)
        # 3. pack and 4. manifest: written together, renamed into place together
        return write_pack(plan.prefix, plan.output, identity, plan.archive, reporter)


def pack_archive(options: PackOptions, reporter: Reporter | None = None) -> PackResult:
    """``bundler pack``: a variant from its lock, or an existing prefix."""
    return run_pack(plan_pack(options), reporter)
