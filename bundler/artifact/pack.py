"""Pack a prefix into a relocatable, reproducible archive with conda-pack.

conda-pack decides how files are relocated (its ``Packer`` and its ``conda-unpack``
script); bundler supplies the archive writer and, by default, leaves out what
executors do without (``bundler.artifact.content``: pyspark and py4j, unused test suites, static
libraries, docs, bytecode); ``full`` keeps everything but bytecode.  The writer sorts
entries, zeroes owners and times, fixes modes, and compresses with ISA-L's
threaded gzip (deterministic header), so the same lock gives the same bytes,
several times faster than conda-pack's own gzip.  Levels above ISA-L's range (4-9)
go to ``bundler.artifact.pgzip``, a threaded writer over the standard library's zlib.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bundler import __version__
from bundler.artifact.content import GROUPS, SlimPlan, compile_patterns, plan_content, read_prefix
from bundler.artifact.pgzip import ParallelGzipWriter
from bundler.artifact.readers import manifest_path
from bundler.artifact.zipwriter import ZipWriter
from bundler.atomic import commit, discard, temp_path
from bundler.build import build_location, build_prefix, build_prefix_path, host_platform
from bundler.errors import PackError
from bundler.events import NullReporter, Reporter
from bundler.solve.lockfile import require_fresh
from bundler.variants import load_workspace

# ISA-L level 1: within 4% of conda-pack's zlib level 4 in size, several times faster
# (bench/pack.py).  ISA-L levels run 0-3; 4-9 are zlib's (slower, smaller).
GZIP_LEVEL = 1
ISAL_MAX_LEVEL = 3
ZIP_LEVEL = 4  # zipfile's deflate (zlib), as conda-pack's default gzip level
FIXED_MTIME = 315532800  # 1980-01-01, also the earliest time a zip can hold (zipwriter)
FORMATS = {".tar.gz": "tar.gz", ".tgz": "tar.gz", ".zip": "zip"}


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
    # An executor archive (the default) leaves out slim.GROUPS; full keeps them all,
    # keep only the groups named (the image layer for a base without Spark keeps pyspark).
    full: bool = False
    keep: tuple[str, ...] = ()

    @property
    def kept(self) -> tuple[str, ...]:
        return GROUPS if self.full else tuple(g for g in GROUPS if g in self.keep)

    @property
    def kind(self) -> str:
        """``full`` when nothing executors do without is left out, else ``executor``."""
        return "full" if self.kept == GROUPS else "executor"


@dataclass
class PackResult:
    path: Path
    manifest_path: Path
    sha256: str
    size: int
    manifest: dict[str, Any] = field(default_factory=dict)

    def largest(self, n: int) -> list[dict[str, Any]]:
        """The largest packages in the archive (left-out ones not counted)."""
        pkgs = [p for p in self.manifest.get("packages", []) if p.get("in_archive", True)]
        return sorted(pkgs, key=lambda p: -p["size"])[:n]

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "full"))

    @property
    def left_out(self) -> dict[str, dict[str, int]]:
        return dict(self.manifest.get("left_out") or {})

    @property
    def saved(self) -> int:
        """Installed bytes left out of the archive."""
        return sum(g["bytes"] for g in self.left_out.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "sha256": self.sha256,
            "size": self.size,
            "kind": self.kind,
            "installed_size": self.manifest.get("installed_size"),
            "left_out": self.left_out,
            "saved": self.saved,
            "largest": self.largest(5),
        }


def check_compression(level: int | None, threads: int | None) -> None:
    """PackError (one line, naming the flag) for a level or thread count out of range."""
    if level is not None and not 0 <= level <= 9:
        raise PackError(
            f"--level {level}: compression levels run 0-9",
            "tar.gz: 0-3 use ISA-L (fast, default 1), 4-9 zlib (smaller); "
            f"zip: zlib's deflate 0-9 (default {ZIP_LEVEL})",
        )
    if threads is not None and threads < 0:
        raise PackError(f"--threads {threads}: give a positive number (0: all cores)")


def archive_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise PackError(
        f"{path}: unsupported archive suffix",
        "use .tar.gz, .tgz or .zip (Spark unpacks only those; zstd is copied, not unpacked)",
    )


# ---------------------------------------------------------------- archive writers


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isdir():
        info.mode = 0o755
    elif info.issym():
        info.mode = 0o777
    else:
        info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


class _TarWriter:
    """A conda-pack archive (``add``/``add_bytes``) writing a normalised tar stream.

    Headers are built from ``lstat`` directly (no user/group lookups, hard links
    stored as files) and file data is copied in 1 MiB blocks.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        # Not stream mode ("w|"): its 10 KiB re-buffering copies every block many times.
        self.tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=_Tell(stream),  # type: ignore[call-overload]
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=1 << 20,
        )

    @staticmethod
    def _info(source: str, target: str) -> tarfile.TarInfo:
        st = os.lstat(source)
        info = tarfile.TarInfo(target)
        if stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(source)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
        else:
            raise PackError(f"{source}: not a file, directory or symlink", "remove it")
        info.mode = stat.S_IMODE(st.st_mode)
        return _normalize(info)

    def add(self, source: str, target: str) -> None:
        info = self._info(source, target)
        if info.isreg():
            with open(source, "rb") as fh:
                self.tar.addfile(info, fh)
        else:
            self.tar.addfile(info)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        info = self._info(source, target)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


class _Tell:
    """Write-only file with ``tell``: all that tarfile's "w" mode needs."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.pos += len(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.pos


class _HashingWriter(io.RawIOBase):
    """Pass-through file that hashes and counts what is written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def write_archive(
    prefix: Path,
    output: Path,
    *,
    level: int | None = None,
    threads: int | None = None,
    exclude: tuple[str, ...] = (),
    reporter: Reporter | None = None,
    fmt: str | None = None,
    label: str | None = None,
    notes: dict[str, Any] | None = None,
) -> str:
    """Pack ``prefix`` into the file ``output`` (format from its suffix or ``fmt``).

    Returns the archive's sha256; for a zip, ``notes["zip_symlinks"]`` says what became
    of the symlinks (stored as copies). Callers write to a temporary name and rename
    (``pack_archive`` does, together with the manifest).
    """
    from conda_pack.core import CondaEnv, CondaPackException, Packer

    reporter = reporter or NullReporter()
    fmt = fmt or archive_format(output)
    check_compression(level, threads)
    try:
        env = CondaEnv.from_prefix(str(prefix))
    except CondaPackException as exc:
        raise PackError(f"conda-pack refused {prefix}: {' '.join(str(exc).split())}") from exc
    except (KeyError, ValueError, OSError) as exc:
        raise PackError(
            f"conda-pack cannot read {prefix}/conda-meta: {type(exc).__name__}: {exc}",
            "the environment's metadata is damaged; recreate the environment",
        ) from exc
    excluded = compile_patterns(exclude)  # one pass, however many patterns
    # conda-pack adds its own scripts (activate, conda-unpack) at the end; copies of
    # them in the prefix (an environment unpacked from a conda-pack archive) would be
    # duplicate entries, so the fresh ones replace them.
    own = _finish_targets(str(prefix))
    files = sorted(
        (f for f in env.files if f.target not in own and not excluded(f.target)),
        key=lambda f: f.target,
    )
    with open(output, "wb") as fh:
        raw = _HashingWriter(fh)
        writer: _TarWriter | ZipWriter
        if fmt == "zip":
            writer = ZipWriter(fh, ZIP_LEVEL if level is None else level)
            stream: IO[bytes] | None = None
        else:
            stream = _gzip_stream(raw, GZIP_LEVEL if level is None else level, threads)
            writer = _TarWriter(stream)
        try:
            packer = Packer(str(prefix), _PrunedRecords(writer, excluded))
            _pack_files(packer, files, label or output.name, reporter)
            writer.close()
        except BaseException:
            # Let the compression threads drain (at most a few blocks) so none is
            # left behind; the caller removes the temporary file.
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
            raise
        if stream is not None:
            stream.close()
    if isinstance(writer, ZipWriter):
        if writer.report.left_out:
            gone = ", ".join(sorted(writer.report.left_out)[:5])
            reporter.warn(f"left out of the zip: symlinks to nothing packed ({gone})")
        if notes is not None:
            notes["zip_symlinks"] = writer.report.to_dict()
    return raw.digest.hexdigest() if fmt != "zip" else sha256_file(output)


def _gzip_stream(raw: Any, level: int, threads: int | None) -> IO[bytes]:
    """A threaded gzip writer: ISA-L for levels 0-3, ``bundler.artifact.pgzip`` (zlib) for 4-9.

    Both cut the input into fixed blocks and write no time into the header, so the
    bytes depend neither on the number of threads nor on the clock.
    """
    count = threads or os.cpu_count() or 1
    if level <= ISAL_MAX_LEVEL:
        from isal import igzip_threaded

        return igzip_threaded.open(raw, "wb", compresslevel=level, threads=count)
    return ParallelGzipWriter(raw, level, count)  # type: ignore[return-value]


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
    ``conda list`` tells the truth and conda-pack packs it again.
    """

    def __init__(self, writer: _TarWriter | ZipWriter, excluded: Callable[[str], bool]) -> None:
        self.writer = writer
        self.excluded = excluded

    def add(self, source: str, target: str) -> None:
        self.writer.add(source, target)

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        if target.startswith("conda-meta/") and target.endswith(".json"):
            data = prune_record(data, self.excluded)
        self.writer.add_bytes(source, data, target)


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


def _pack_files(packer: Any, files: list[Any], name: str, reporter: Reporter) -> None:
    total = len(files)
    reporter.step(f"packing {total} files into {name}")
    for i, f in enumerate(files):
        packer.add(f)
        if i % 200 == 0:
            reporter.progress(f"packing {name}", i, total)
    packer.finish()
    reporter.progress(f"packing {name}", total, total)


# ---------------------------------------------------------------- manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def installed_packages(prefix: Path) -> list[dict[str, Any]]:
    """Packages in ``prefix`` with their installed size: conda-meta, then pip dist-infos."""
    pkgs: list[dict[str, Any]] = []
    owned: set[str] = set()
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        files = data.get("files", [])
        owned.update(files)
        size = sum(_lsize(prefix / f) for f in files)
        pkgs.append(
            {"name": data["name"], "version": data["version"], "manager": "conda", "size": size}
        )
    for dist in sorted(prefix.glob("lib/python*/site-packages/*.dist-info")):
        record = dist / "RECORD"
        if not record.is_file():
            continue
        rel_dist = str(dist.relative_to(prefix))
        if f"{rel_dist}/RECORD" in owned or f"{rel_dist}/METADATA" in owned:
            continue
        name, version = _dist_name_version(dist)
        size = 0
        for line in record.read_text().splitlines():
            rel = line.split(",", 1)[0]
            if rel:
                size += _lsize(dist.parent / rel)
        pkgs.append({"name": name, "version": version, "manager": "pip", "size": size})
    return pkgs


def _dist_name_version(dist: Path) -> tuple[str, str]:
    name = version = ""
    for line in (dist / "METADATA").read_text(errors="replace").splitlines():
        if line.startswith("Name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()
        elif not line.strip():
            break
    return name.lower().replace("_", "-"), version


def _lsize(path: Path) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


# ---------------------------------------------------------------- the command


def pack_archive(options: PackOptions, reporter: Reporter | None = None) -> PackResult:
    """``bundler pack``: a variant from its lock, or an existing prefix."""
    reporter = reporter or NullReporter()
    check_compression(options.level, options.threads)
    if options.prefix is not None:
        return _pack_prefix(options, reporter)
    if options.variant is None:
        raise PackError("name a variant or pass --prefix DIR")
    ws = load_workspace(options.workspace)
    variant = ws.get(options.variant)
    platform = options.platform or (
        host_platform() if host_platform() in variant.platforms else variant.platforms[0]
    )
    output = options.output or ws.root / "dist" / f"{variant.name}-{platform}.tar.gz"
    archive_format(output)
    require_fresh(variant)
    prefix = build_prefix_path(variant.name, platform)
    manifest: dict[str, Any] = {
        "bundler_version": __version__,
        "variant": variant.name,
        "platform": platform,
        "inputs_hash": variant.inputs_hash(),
        "lock_sha256": sha256_file(variant.lock_path),
        "python": None,
        "imports": list(variant.imports),
        "gpu_imports": list(variant.gpu_imports),
        "build_prefix": str(prefix),
    }
    with build_location(prefix):
        result = build_prefix(variant, platform, prefix, reporter=reporter)
        manifest["python"] = result.python_version
        content = _Content(cuda=variant.cuda is not None, bytecode=not options.keep_bytecode)
        return _write_outputs(prefix, output, manifest, options, content, reporter)


def _pack_prefix(options: PackOptions, reporter: Reporter) -> PackResult:
    prefix = options.prefix
    assert prefix is not None
    if options.output is None:
        raise PackError("--prefix needs -o PATH")
    if not (prefix / "conda-meta").is_dir():
        raise PackError(
            f"{prefix} is not a conda environment (no conda-meta/)",
            "pass the prefix of an environment made by conda, mamba, pixi or bundler",
        )
    keep_bytecode = (
        options.kind == "full" if options.keep_bytecode is None else options.keep_bytecode
    )
    archive_format(options.output)
    manifest: dict[str, Any] = {
        "bundler_version": __version__,
        "variant": None,
        "platform": host_platform(),
        # no lock, so no inputs_hash nor lock_sha256: absent, never null or "None"
        "python": None,
        "imports": [],
        "gpu_imports": [],
        "build_prefix": str(prefix.resolve()),
    }
    content = _Content(cuda=_has_cuda(prefix), bytecode=not keep_bytecode)
    return _write_outputs(prefix, options.output, manifest, options, content, reporter)


def _has_cuda(prefix: Path) -> bool:
    """An existing prefix with CUDA packages (their JIT links static device runtimes)."""
    meta = prefix / "conda-meta"
    return any(meta.glob("cuda-version-*.json")) or (prefix / "lib" / "libcudadevrt.a").exists()


@dataclass(frozen=True)
class _Content:
    cuda: bool  # keep static libraries
    bytecode: bool  # leave *.pyc out


def _plan(
    prefix: Path, options: PackOptions, content: _Content, manifest: dict[str, Any]
) -> tuple[str, ...]:
    """Decide what goes in, record it in the manifest; the exclude patterns for conda-pack."""
    listing = read_prefix(prefix, scan="tests" not in options.kept)
    plan: SlimPlan = plan_content(
        listing, keep=options.kept, cuda=content.cuda, bytecode=content.bytecode
    )
    exclude = options.exclude + plan.exclude
    dropped = set(plan.dropped_modules)
    manifest.update(
        kind=options.kind,
        kept=list(options.kept),
        left_out=plan.left_out(),
        # conda-meta records hold this machine's package cache paths (conda-pack strips
        # them in the archive): leave them out, so the manifest is the same everywhere.
        installed_size=sum(
            size for name, size in listing.sizes.items() if not name.startswith("conda-meta/")
        ),
        # Spark provides these on the executors' path; verify imports them from Spark's.
        dropped_imports=sorted(dropped),
        excluded=list(exclude),
    )
    return exclude


def _write_outputs(
    prefix: Path,
    output: Path,
    manifest: dict[str, Any],
    options: PackOptions,
    content: _Content,
    reporter: Reporter,
) -> PackResult:
    """Archive and manifest under temporary names, then both renamed into place."""
    mpath = manifest_path(output)
    exclude = _plan(prefix, options, content, manifest)
    created: list[Path] = []
    try:
        tmp_archive = temp_path(output, created)
        tmp_manifest = temp_path(mpath, created)
        sha = write_archive(
            prefix,
            tmp_archive,
            level=options.level,
            threads=options.threads,
            exclude=exclude,
            reporter=reporter,
            fmt=archive_format(output),
            label=output.name,
            notes=manifest,
        )
        packages = installed_packages(prefix)
        for p in packages:
            if p["name"] in manifest["dropped_imports"]:
                p["in_archive"] = False
        if manifest["python"] is None:
            manifest["python"] = next(
                (p["version"] for p in packages if p["name"] == "python"), None
            )
        size = tmp_archive.stat().st_size
        manifest["archive"] = {
            "name": output.name,
            "format": archive_format(output),
            "sha256": sha,
            "size": size,
        }
        manifest["packages"] = packages
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        commit([(tmp_archive, output), (tmp_manifest, mpath)])
    except BaseException:
        discard(created)
        raise
    reporter.step(f"wrote {output}")
    return PackResult(path=output, manifest_path=mpath, sha256=sha, size=size, manifest=manifest)
