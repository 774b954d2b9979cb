"""Pack a prefix into a relocatable, reproducible archive with conda-pack.

conda-pack decides what goes in and how it is relocated (its ``Packer`` and its
``conda-unpack`` script); bundler supplies the archive writer.  The writer sorts
entries, zeroes owners and times, fixes modes, and compresses with ISA-L's
threaded gzip (deterministic header), so the same lock gives the same bytes,
several times faster than conda-pack's own gzip.  Levels above ISA-L's range (4-9)
go to ``bundler.pgzip``, a threaded writer over the standard library's zlib.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bundler import __version__
from bundler.archive import manifest_path
from bundler.atomic import commit, discard, temp_path
from bundler.build import build_location, build_prefix, build_prefix_path, host_platform
from bundler.errors import PackError
from bundler.events import NullReporter, Reporter
from bundler.lockfile import require_fresh
from bundler.pgzip import ParallelGzipWriter
from bundler.variants import load_workspace
from bundler.zipwriter import ZipWriter

# ISA-L level 1: within 4% of conda-pack's zlib level 4 in size, several times faster
# (bench/pack.py).  ISA-L levels run 0-3; 4-9 are zlib's (slower, smaller).
GZIP_LEVEL = 1
ISAL_MAX_LEVEL = 3
ZIP_LEVEL = 4  # zipfile's deflate (zlib), as conda-pack's default gzip level
FIXED_MTIME = 315532800  # 1980-01-01, also the earliest time a zip can hold (zipwriter)
FORMATS = {".tar.gz": "tar.gz", ".tgz": "tar.gz", ".zip": "zip"}
# Bytecode differs between two installs of one lock; executors compile on import.
BYTECODE = ("*.pyc", "*/__pycache__")


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
    keep_bytecode: bool | None = None  # default: keep for --prefix, strip for locks
    # Modules left out on purpose (pyspark in an image whose base has Spark): they are
    # removed from the manifest's imports so that verify checks what is really there.
    drop_imports: tuple[str, ...] = ()


@dataclass
class PackResult:
    path: Path
    manifest_path: Path
    sha256: str
    size: int
    manifest: dict[str, Any] = field(default_factory=dict)

    def largest(self, n: int) -> list[dict[str, Any]]:
        pkgs = sorted(self.manifest.get("packages", []), key=lambda p: -p["size"])
        return pkgs[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "sha256": self.sha256,
            "size": self.size,
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
    try:
        env = CondaEnv.from_prefix(str(prefix))
    except CondaPackException as exc:
        raise PackError(f"conda-pack refused {prefix}: {' '.join(str(exc).split())}") from exc
    except (KeyError, ValueError, OSError) as exc:
        raise PackError(
            f"conda-pack cannot read {prefix}/conda-meta: {type(exc).__name__}: {exc}",
            "the environment's metadata is damaged; recreate the environment",
        ) from exc
    for pattern in exclude:
        env = env.exclude(pattern)
    # conda-pack adds its own scripts (activate, conda-unpack) at the end; copies of
    # them in the prefix (an environment unpacked from a conda-pack archive) would be
    # duplicate entries, so the fresh ones replace them.
    own = _finish_targets(str(prefix))
    files = sorted((f for f in env.files if f.target not in own), key=lambda f: f.target)
    with open(output, "wb") as fh:
        raw = _HashingWriter(fh)
        writer: _TarWriter | ZipWriter
        if fmt == "zip":
            check_compression(level, threads)
            writer = ZipWriter(fh, ZIP_LEVEL if level is None else level)
            stream: IO[bytes] | None = None
        else:
            stream = _gzip_stream(raw, GZIP_LEVEL if level is None else level, threads)
            writer = _TarWriter(stream)
        try:
            _pack_files(Packer(str(prefix), writer), files, label or output.name, reporter)
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
    """A threaded gzip writer: ISA-L for levels 0-3, ``bundler.pgzip`` (zlib) for 4-9.

    Both cut the input into fixed blocks and write no time into the header, so the
    bytes depend neither on the number of threads nor on the clock.
    """
    check_compression(level, threads)
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
    keep_bytecode = bool(options.keep_bytecode)
    exclude = options.exclude + (() if keep_bytecode else BYTECODE)
    prefix = build_prefix_path(variant.name, platform)
    dropped = set(options.drop_imports)
    manifest: dict[str, Any] = {
        "bundler_version": __version__,
        "variant": variant.name,
        "platform": platform,
        "inputs_hash": variant.inputs_hash(),
        "lock_sha256": sha256_file(variant.lock_path),
        "python": None,
        "imports": [m for m in variant.imports if m not in dropped],
        "gpu_imports": [m for m in variant.gpu_imports if m not in dropped],
        "dropped_imports": sorted(dropped),
        "excluded": list(exclude),
        "build_prefix": str(prefix),
    }
    with build_location(prefix):
        result = build_prefix(variant, platform, prefix, reporter=reporter)
        manifest["python"] = result.python_version
        return _write_outputs(prefix, output, manifest, options, exclude, reporter)


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
    exclude = options.exclude + (BYTECODE if options.keep_bytecode is False else ())
    archive_format(options.output)
    manifest: dict[str, Any] = {
        "bundler_version": __version__,
        "variant": None,
        "platform": host_platform(),
        # no lock, so no inputs_hash nor lock_sha256: absent, never null or "None"
        "python": None,
        "imports": [],
        "gpu_imports": [],
        "dropped_imports": [],
        "excluded": list(exclude),
        "build_prefix": str(prefix.resolve()),
    }
    return _write_outputs(prefix, options.output, manifest, options, exclude, reporter)


def _write_outputs(
    prefix: Path,
    output: Path,
    manifest: dict[str, Any],
    options: PackOptions,
    exclude: tuple[str, ...],
    reporter: Reporter,
) -> PackResult:
    """Archive and manifest under temporary names, then both renamed into place."""
    mpath = manifest_path(output)
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
