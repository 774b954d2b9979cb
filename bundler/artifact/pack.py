"""Write a prefix into a relocatable, reproducible archive and its manifest.

conda-pack decides how files are relocated (its ``Packer`` and its ``conda-unpack``
script); bundler supplies the archive writers (``tarwriter``, ``zipwriter``) and, by
default, leaves out what executors do without (``content``: pyspark and py4j, unused
test suites, static libraries, docs, bytecode).  ``write_pack`` writes the archive and
its ``Manifest`` and its SBOM (``sbom``) under temporary names and renames all three
into place; it only writes:
``bundler.pipeline`` decides what to pack (a fresh lock, a built prefix).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, cast

from bundler.artifact.condaenv import conda_env
from bundler.artifact.content import (
    ContentPlan,
    compile_patterns,
    content_for,
    plan_content,
    read_prefix,
)
from bundler.artifact.formats import ArchiveFormat, archive_format
from bundler.artifact.manifest import (
    ArchiveRecord,
    Content,
    LeftOut,
    Manifest,
    PackageRecord,
    manifest_path,
)
from bundler.artifact.prefix import Prefix
from bundler.artifact.sbom import cyclonedx, dumps, inventory_of, is_metadata, sbom_path
from bundler.artifact.tarwriter import (
    GZIP_LEVEL,
    HashingWriter,
    TarWriter,
    gzip_stream,
    same_content,
)
from bundler.artifact.zipwriter import ZipWriter
from bundler.atomic import commit, discard, temp_path
from bundler.digest import sha256_file
from bundler.errors import (
    FileSystemError,
    PackError,
    free_bytes,
    mib,
    mount_point,
    os_error,
    os_errors,
)
from bundler.events import NullReporter, Reporter
from bundler.solve import cudacontent

ZIP_LEVEL = 1  # ISA-L's deflate, as for tar.gz (zipstream: 0-3 ISA-L, 4-9 zlib)


@dataclass(frozen=True)
class ArchiveOptions:
    """How to write one archive: compression, and what goes in."""

    level: int | None = None
    threads: int | None = None
    exclude_patterns: tuple[str, ...] = ()  # for conda-pack, besides the content plan's
    kept: tuple[str, ...] = ()  # content groups kept (GROUPS: everything, a full archive)
    # the variant sets cuda =: keep static libraries (CUDA's JIT links libcudadevrt.a);
    # CUDA content (bundler.solve.cudacontent) keeps them without it
    cuda: bool = False
    bytecode: bool = True  # leave *.pyc out

    @property
    def content(self) -> Content:
        return content_for(self.kept)


@dataclass(frozen=True)
class PackResult:
    path: Path
    manifest_path: Path
    manifest: Manifest
    sbom_path: Path | None = None
    components: int = 0  # in the SBOM

    @property
    def sha256(self) -> str:
        return self.manifest.archive.sha256 or ""

    @property
    def size(self) -> int:
        return self.manifest.archive.size or 0

    @property
    def content(self) -> Content:
        return self.manifest.content

    @property
    def left_out(self) -> dict[str, LeftOut]:
        return dict(self.manifest.left_out)

    @property
    def left_out_bytes(self) -> int:
        """Installed bytes left out of the archive."""
        return self.manifest.left_out_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "sbom": str(self.sbom_path) if self.sbom_path else None,
            "sha256": self.sha256,
            "size": self.size,
            "kind": self.content,
            "installed_size": self.manifest.installed_size,
            "left_out": {group: left.to_dict() for group, left in self.left_out.items()},
            "saved": self.left_out_bytes,
            "linked": {
                "files": self.manifest.archive.linked_files,
                "bytes": self.manifest.archive.linked_bytes,
            },
            "largest": [
                {"name": p.name, "version": p.version, "manager": p.manager, "size": p.size}
                for p in self.manifest.largest(5)
            ],
        }


def check_compression(level: int | None, threads: int | None) -> None:
    """PackError (one line, naming the flag) for a level or thread count out of range."""
    if level is not None and not 0 <= level <= 9:
        raise PackError(
            f"--level {level}: compression levels run 0-9",
            "tar.gz and zip: 0-3 use ISA-L (fast, default 1), 4-9 zlib (smaller); "
            ".tar is not compressed",
        )
    if threads is not None and threads < 0:
        raise PackError(f"--threads {threads}: give a positive number (0: all cores)")


# ---------------------------------------------------------------- archive writers


def write_archive(
    prefix: Prefix | Path,
    output: Path,
    *,
    level: int | None = None,
    threads: int | None = None,
    exclude_patterns: tuple[str, ...] = (),
    reporter: Reporter | None = None,
    fmt: ArchiveFormat | None = None,
    label: str | None = None,
    notes: dict[str, Any] | None = None,
) -> str:
    """Pack ``prefix`` (as read by ``Prefix.read``, or read here) into the file ``output``
    (format from its suffix or ``fmt``).

    Returns the archive's sha256; for a zip, ``notes["zip_symlinks"]`` says what became
    of the symlinks (stored as copies), for a tar ``notes["linked"]`` how many files
    (and bytes) were stored as hard links to an identical earlier file;
    ``notes["metadata"]`` holds the metadata files an SBOM is read from, as written.
    Callers write to a temporary name and rename (``write_pack`` does, together with
    the manifest and the SBOM).
    """
    from conda_pack.core import Packer

    reporter = reporter or NullReporter()
    fmt = fmt or archive_format(output, writing=True)
    check_compression(level, threads)
    if not isinstance(prefix, Prefix):
        prefix = Prefix.read(prefix)
    env = _conda_env(prefix)
    excluded = compile_patterns(exclude_patterns)  # one pass, however many patterns
    # conda-pack adds its own scripts (activate, conda-unpack) at the end; copies of
    # them in the prefix (an environment unpacked from a conda-pack archive) would be
    # duplicate entries, so the fresh ones replace them.
    own = _finish_targets(str(prefix.root))
    files = sorted(
        (f for f in env.files if f.target not in own and not excluded(f.target)),
        key=lambda f: f.target,
    )
    with open(output, "wb") as fh:
        raw = HashingWriter(fh)
        writer, stream = _open_writer(fmt, raw, files, level, threads, prefix)
        try:
            records = _PrunedRecords(writer, excluded)
            packer = Packer(str(prefix.root), records)
            _pack_files(packer, files, label or output.name, reporter, prefix)
            writer.close()
        except BaseException:
            # Let the compression threads drain (at most a few blocks) so none is
            # left behind; the caller removes the temporary file.
            with contextlib.suppress(Exception):
                if isinstance(writer, ZipWriter):
                    writer.abort()
                elif stream is not None:
                    stream.close()
            raise
        if stream is not None:
            stream.close()
    _take_notes(writer, records, notes, reporter)
    return raw.digest.hexdigest() if fmt != "zip" else sha256_file(output)


def _conda_env(prefix: Prefix) -> Any:
    """conda-pack's view of ``prefix`` (from what the walk found); a PackError when it
    cannot read it."""
    from conda_pack.core import CondaPackException

    damaged = "the environment's metadata is damaged; recreate the environment"
    if prefix.damaged:
        names = ", ".join(prefix.damaged)
        raise PackError(f"{prefix.root}/conda-meta: not a conda record: {names}", damaged)
    try:
        return conda_env(prefix)
    except CondaPackException as exc:
        raise PackError(f"conda-pack refused {prefix.root}: {' '.join(str(exc).split())}") from exc
    except (KeyError, ValueError, OSError) as exc:
        raise PackError(
            f"conda-pack cannot read {prefix.root}/conda-meta: {type(exc).__name__}: {exc}",
            damaged,
        ) from exc


def _open_writer(
    fmt: ArchiveFormat,
    raw: HashingWriter,
    files: list[Any],
    level: int | None,
    threads: int | None,
    prefix: Prefix,
) -> tuple[TarWriter | ZipWriter, IO[bytes] | None]:
    """The archive writer for ``fmt`` over ``raw``, and the stream between them (tar)."""
    if fmt == "zip":
        return ZipWriter(raw.raw, ZIP_LEVEL if level is None else level, threads), None
    stream: IO[bytes]
    if fmt == "tar.gz":
        stream = gzip_stream(raw, GZIP_LEVEL if level is None else level, threads)
    else:  # plain tar: tarfile writes 512-byte headers, buffer them
        stream = cast(IO[bytes], io.BufferedWriter(raw, 1 << 20))
    same = same_content(((f.source, f.target) for f in files), prefix.size_at)
    return TarWriter(stream, same), stream


def _take_notes(
    writer: TarWriter | ZipWriter,
    records: _PrunedRecords,
    notes: dict[str, Any] | None,
    reporter: Reporter,
) -> None:
    """What the writer learnt, for the manifest and the SBOM (see ``write_archive``)."""
    if isinstance(writer, ZipWriter) and writer.report.left_out:
        gone = ", ".join(sorted(writer.report.left_out)[:5])
        reporter.warn(f"left out of the zip: symlinks to nothing packed ({gone})")
    if notes is None:
        return
    notes["metadata"] = records.metadata
    if isinstance(writer, TarWriter):
        notes["linked"] = {"files": writer.linked, "bytes": writer.linked_bytes}
    else:
        notes["zip_symlinks"] = writer.report.to_dict()


class _Names:
    """An archive that only records the names written to it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def add(self, source: str, target: str) -> None:
        self.names.add(target)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        self.names.add(target)


def _finish_targets(prefix: str) -> set[str]:
    from conda_pack.core import Packer

    names = _Names()
    Packer(prefix, names).finish()
    return names.names


class _PrunedRecords:
    """The writer, with conda-meta records listing only the files that went in.

    An archive that leaves files out then unpacks into a consistent conda environment:
    ``conda list`` tells the truth and conda-pack packs it again.  The metadata files
    an SBOM is read from (``sbom.is_metadata``) are kept as written, in ``metadata``.
    """

    def __init__(self, writer: TarWriter | ZipWriter, excluded: Callable[[str], bool]) -> None:
        self.writer = writer
        self.excluded = excluded
        self.metadata: dict[str, bytes] = {}

    def add(self, source: str, target: str) -> None:
        if is_metadata(target) and os.path.isfile(source):
            self.metadata[target] = Path(source).read_bytes()
        self.writer.add(source, target)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        if target.startswith("conda-meta/") and target.endswith(".json"):
            data = prune_record(data, self.excluded)
        if is_metadata(target):
            self.metadata[target] = data
        self.writer.add_bytes(source, data, target)


def _add(packer: Any, file: Any, prefix: Prefix) -> None:
    """``packer.add(file)``, streaming the files that pip (not conda) installed.

    conda-pack reads each such file whole into memory to learn whether it is UTF-8 text
    (text gets a prefix record for ``conda-unpack``; binary is left alone) and then
    packs those bytes unchanged, unless it is a script in ``bin/``.  For the hundreds of
    MiB of wheels in a prefix that is a large allocation and an extra copy per file, so
    outside ``bin/`` the same decision is made here in blocks (a binary usually fails
    in its first block) and the file is streamed into the archive like a conda file.
    Scripts in ``bin/``, conda's files and anything else still take conda-pack's path.
    """
    from conda_pack.core import BIN_DIR, on_win

    if (
        file.file_mode != "unknown"
        or packer.has_dest
        or on_win
        or file.target.startswith(BIN_DIR)
        or not _is_regular(prefix, file.source)
    ):
        packer.add(file)
        return
    packer.archive.add(file.source, file.target)
    if is_utf8(file.source):
        packer.prefixes.append((file.target, packer.prefix, "text"))


def _is_regular(prefix: Prefix, source: str) -> bool:
    """Whether ``source`` is a regular file: from the walk when it is the prefix's."""
    entry = prefix.entry_at(source)
    return entry.is_file if entry else stat.S_ISREG(os.lstat(source).st_mode)


def is_utf8(path: str) -> bool:
    """Whether the whole file decodes as UTF-8 (conda-pack's test for text), read in blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 16):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def prune_record(data: bytes, excluded: Callable[[str], bool]) -> bytes:
    """A conda-meta record without the files ``excluded`` matches (unchanged if none)."""
    record = json.loads(data)
    files = record.get("files") or []
    kept = [f for f in files if not excluded(f)]
    if len(kept) == len(files):
        return data
    record["files"] = kept
    paths = (record.get("paths_data") or {}).get("paths")
    if isinstance(paths, list):
        record["paths_data"]["paths"] = [
            p for p in paths if not (isinstance(p, dict) and excluded(str(p.get("_path", ""))))
        ]
    # conda-pack's own rewrite of the record (rewrite_conda_meta) writes it this way.
    return json.dumps(record, indent=True, sort_keys=True).encode()


def _pack_files(
    packer: Any, files: list[Any], name: str, reporter: Reporter, prefix: Prefix
) -> None:
    total = len(files)
    reporter.step(f"packing {total} files into {name}")
    for i, f in enumerate(files):
        _add(packer, f, prefix)
        if i % 200 == 0:
            reporter.progress(f"packing {name}", i, total)
    packer.finish()
    reporter.progress(f"packing {name}", total, total)


# ---------------------------------------------------------------- package records


def installed_packages(prefix: Prefix) -> list[PackageRecord]:
    """Packages in ``prefix`` with their installed size (from the walk): conda records,
    then the pip distributions conda did not install (dist-info with a RECORD)."""
    pkgs = [
        PackageRecord(r.name, r.version, "conda", prefix.package_size(r), sha256=r.sha256)
        for r in prefix.conda
    ]
    pkgs.extend(
        PackageRecord(d.name, d.version, "pip", prefix.package_size(d))
        for d in prefix.pip
        if d.is_dist_info and d.files is not None and d.conda is None
    )
    return pkgs


# ---------------------------------------------------------------- archive + manifest


def write_pack(
    prefix: Path,
    output: Path,
    identity: Manifest,
    options: ArchiveOptions,
    reporter: Reporter | None = None,
) -> PackResult:
    """Write ``prefix`` to ``output``, its manifest and its SBOM beside it, all or none.

    ``identity`` holds what the caller knows (variant, platform, lock hashes, Python,
    imports); this adds what was packed, how, and the archive's own hash and size.
    """
    reporter = reporter or NullReporter()
    archive_format(output, writing=True)
    with os_errors(prefix):
        model = Prefix.read(prefix)  # the one walk of the prefix
    manifest = _plan(model, identity, options)
    check_space(output, (manifest.installed_size or 0) - manifest.left_out_bytes, options.level)
    created: list[Path] = []
    try:
        result = _write_pack(model, output, manifest, options, created, reporter)
    except BaseException as exc:
        discard(created)  # first: a full disk's free space is then what the user can use
        mapped = os_error(exc, output) if isinstance(exc, OSError) else None
        if mapped is not None:
            raise mapped from exc
        raise
    reporter.step(f"wrote {output}")
    return result


def _write_pack(
    prefix: Prefix,
    output: Path,
    manifest: Manifest,
    options: ArchiveOptions,
    created: list[Path],
    reporter: Reporter,
) -> PackResult:
    fmt = archive_format(output, writing=True)
    mpath = manifest_path(output)
    spath = sbom_path(output)
    tmp_archive = temp_path(output, created)
    tmp_manifest = temp_path(mpath, created)
    notes: dict[str, Any] = {}
    sha = write_archive(
        prefix,
        tmp_archive,
        level=options.level,
        threads=options.threads,
        exclude_patterns=manifest.exclude_patterns,
        reporter=reporter,
        fmt=fmt,
        label=output.name,
        notes=notes,
    )
    packages = _with_lock_hashes(
        tuple(
            replace(p, in_archive=False) if p.name in manifest.left_out_imports else p
            for p in installed_packages(prefix)
        ),
        manifest.packages,
    )
    python = manifest.python or next((p.version for p in packages if p.name == "python"), None)
    linked = notes.get("linked", {})
    record = ArchiveRecord(
        name=output.name,
        format=fmt,
        sha256=sha,
        size=tmp_archive.stat().st_size,
        linked_files=linked.get("files", 0),
        linked_bytes=linked.get("bytes", 0),
    )
    manifest = replace(
        manifest,
        archive=record,
        packages=packages,
        python=python,
        zip_symlinks=notes.get("zip_symlinks"),
    )
    manifest.write(tmp_manifest)
    tmp_sbom = temp_path(spath, created)
    sbom = inventory_of(output.name, sha, manifest, notes.get("metadata", {}))
    tmp_sbom.write_text(dumps(cyclonedx(sbom)), encoding="utf-8")
    commit([(tmp_archive, output), (tmp_manifest, mpath), (tmp_sbom, spath)])
    return PackResult(
        path=output,
        manifest_path=mpath,
        manifest=replace(manifest, path=mpath),
        sbom_path=spath,
        components=len(sbom.components),
    )


def _with_lock_hashes(
    installed: tuple[PackageRecord, ...], locked: tuple[PackageRecord, ...]
) -> tuple[PackageRecord, ...]:
    """Installed packages with the sha256 the lock gives each (same manager and name)."""
    from packaging.utils import canonicalize_name

    hashes = {(p.manager, canonicalize_name(p.name)): p.sha256 for p in locked if p.sha256}
    return tuple(
        replace(p, sha256=hashes.get((p.manager, canonicalize_name(p.name)), p.sha256))
        for p in installed
    )


def check_writable(output: Path) -> None:
    """Refuse before any work when ``output``'s directory cannot take a new file.

    Nothing is created: the probe is an unnamed temporary file in the nearest existing
    directory on the way to ``output``.
    """
    probe = output.parent.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    with os_errors(output):
        try:
            with tempfile.TemporaryFile(dir=probe, prefix=f".{output.name}."):
                pass
        except OSError as exc:  # name the output, not the probe file
            raise OSError(exc.errno, exc.strerror, os.fspath(output)) from exc


#: The smallest share of the packed bytes a compressed archive has been seen to take
#: (the probe environment: 0.41, the benchmark's --full: 0.69; level 0 stores them).
SMALLEST_RATIO = 4


def check_space(output: Path, packed: int, level: int | None) -> None:
    """Refuse before writing when ``output``'s file system cannot hold the archive.

    ``packed`` is the installed size of what goes in; a compressed archive takes at
    least a quarter of it (a stored one, ``--level 0`` or a plain ``.tar``, all of it),
    so less free space than that is sure to fail, after minutes of work.
    """
    stored = level == 0 or archive_format(output, writing=True) == "tar"
    need = packed if stored else packed // SMALLEST_RATIO
    with os_errors(output):
        free = free_bytes(output.parent)
        mount = mount_point(output.parent)
    if free < need:
        share = "all" if stored else "a quarter"
        raise FileSystemError(
            f"not enough space on {mount} for {output}: the archive needs at least "
            f"{mib(need)} ({share} of the {mib(packed)} packed), {mib(free)} free",
            f"free {mib(need - free)} on {mount} or choose another -o",
        )


def _plan(prefix: Prefix, identity: Manifest, options: ArchiveOptions) -> Manifest:
    """What goes in, recorded in the manifest (with the exclude patterns for conda-pack)."""
    listing = read_prefix(prefix, scan="tests" not in options.kept)
    found = cudacontent.from_paths(prefix.paths)  # the content decides, not cuda =
    plan: ContentPlan = plan_content(
        listing,
        keep=options.kept,
        cuda=options.cuda or found is not None,
        bytecode=options.bytecode,
    )
    return replace(
        identity,
        content=options.content,
        kept=tuple(options.kept),
        left_out=plan.left_out,
        # conda-meta records hold this machine's package cache paths (conda-pack strips
        # them in the archive): leave them out, so the manifest is the same everywhere.
        installed_size=prefix.installed_size(),
        # Spark provides these on the executors' path; verify imports them from Spark's.
        left_out_imports=tuple(sorted(set(plan.left_out_imports))),
        exclude_patterns=options.exclude_patterns + plan.exclude_patterns,
        cuda=found.version if found else None,
    )
