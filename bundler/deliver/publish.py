"""``bundler publish``: an archive and its manifest, under an immutable name, where
executors fetch them.

The name is the content: ``<variant>-<platform>-<executor|full>-<sha256 prefix><suffix>``
changes whenever the bytes do, so an application that localised an archive never
sees it change under it (YARN fails such containers with ``Resource ... changed on
src filesystem``), and a finished job's archive says which environment it ran.

- Publishing bytes that are there already uploads nothing: the remote manifest's
  sha256 (or, when the manifest is missing, the remote bytes' own) and size decide.
- An object of other bytes under the name is refused, never overwritten.
- No reader sees a partial archive: object stores complete a put (or a multipart
  upload) at once; on file systems the bytes go to a temporary name in the same
  directory and are renamed.  The manifest goes after the archive.
- On ``file://`` and ``hdfs://`` the archive is made readable by others and the
  directories publish creates executable by others, which YARN needs to keep one copy
  per node in its PUBLIC cache; every ancestor is checked and the one that prevents it
  is named.
- The placement is recorded beside the local archive (``deliver/published``) for
  ``spark-conf --published``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.artifact.formats import format_of
from bundler.artifact.manifest import Manifest, read_manifest
from bundler.deliver.published import (
    Placement,
    new_record,
    read_record,
    write_record,
)
from bundler.deliver.stores import (
    Destination,
    Modes,
    modes_for,
    open_filesystem,
    parse_destination,
    remote_errors,
)
from bundler.digest import sha256_file, sha256_of
from bundler.errors import BundlerError, PublishedRecordError, PublishError
from bundler.events import NullReporter, Reporter
from bundler.platforms import choose_platform

#: Hex digits of the sha256 in a published name: 64 bits, no accidental collision.
SHA_PREFIX = 16
_CHUNK = 8 << 20
_READABLE = 0o044  # group and others may read
_TRAVERSABLE = 0o011  # group and others may enter


@dataclass(frozen=True)
class PublishOptions:
    """What ``bundler publish`` was asked for."""

    target: str  # a variant name, or the path of an archive
    to: str  # the destination directory's URI
    platform: str | None = None
    private: bool = False  # leave permissions as created (no PUBLIC-cache rule)
    workspace: Path = Path(".")


@dataclass(frozen=True)
class PublishResult:
    archive: Path
    uri: str
    spark_uri: str
    manifest_uri: str
    sha256: str
    size: int
    uploaded: bool
    public: bool | None  # YARN PUBLIC cache possible; None: object store; False: private or blocked
    blocker: str | None  # the path that keeps the archive out of the PUBLIC cache
    record: Path
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "uri": self.uri,
            "spark_uri": self.spark_uri,
            "manifest_uri": self.manifest_uri,
            "sha256": self.sha256,
            "size": self.size,
            "uploaded": self.uploaded,
            "public": self.public,
            "blocker": self.blocker,
            "record": str(self.record),
            "warnings": list(self.warnings),
        }


def published_name(manifest: Manifest, archive: Path, sha256: str) -> str:
    """``<variant>-<platform>-<executor|full>-<sha256 prefix><suffix>`` for the archive's bytes."""
    fmt = format_of(archive.name)
    if fmt is None:
        raise PublishError(f"{archive}: not an archive bundler writes", "publish a .tar.gz or .zip")
    stem = manifest.variant or archive.name[: -len(fmt.suffix)]
    parts = [stem]
    if manifest.platform and manifest.variant:
        parts.append(manifest.platform)
    parts += [manifest.content, sha256[:SHA_PREFIX]]
    return "-".join(parts) + fmt.suffix


def local_archive(options: PublishOptions) -> Path:
    """The archive to publish: a path as given, else the variant's default pack output."""
    target = options.target
    as_path = Path(target).expanduser()
    if as_path.is_file() or "/" in target or format_of(target) is not None:
        if not as_path.is_file():
            raise PublishError(f"{target} not found", "pack it first (bundler pack)")
        return as_path.resolve()
    from bundler.variants import load_workspace

    ws = load_workspace(options.workspace)
    variant = ws.get(target)
    platform = choose_platform(variant.platforms, options.platform)
    archive = ws.root / "dist" / f"{variant.name}-{platform}.tar.gz"
    if not archive.is_file():
        raise PublishError(
            f"variant {variant.name}: {archive} not found", f"run bundler pack {variant.name}"
        )
    return archive


def publish(options: PublishOptions, reporter: Reporter | None = None) -> PublishResult:
    """Copy the archive and its manifest to ``options.to`` under their immutable name."""
    reporter = reporter or NullReporter()
    dest = parse_destination(options.to)
    archive = local_archive(options)
    manifest, size, sha = _read_local(archive, reporter)
    name = published_name(manifest, archive, sha)
    remote = dataclasses.replace(
        manifest, archive=dataclasses.replace(manifest.archive, name=name, sha256=sha, size=size)
    )
    fs = open_filesystem(dest)
    upload = _Upload(fs, dest, name, archive, size, sha, reporter)
    with remote_errors(dest.uri_of(name)):
        uploaded = upload.place(remote.dumps().encode())
        public: bool | None = None
        blocker: str | None = None
        warnings: list[str] = []
        if dest.backend.yarn_cache:
            public, blocker, warnings = _visibility(fs, dest, name, options.private, upload.created)
    for message in warnings:
        reporter.warn(message)
    uri = dest.uri_of(name)
    placement = Placement(uri, dest.spark_uri(uri), dest.uri_of(name + ".json"))
    return PublishResult(
        archive=archive,
        uri=uri,
        spark_uri=placement.spark_uri,
        manifest_uri=placement.manifest_uri,
        sha256=sha,
        size=size,
        uploaded=uploaded,
        public=public,
        blocker=blocker,
        record=_record(archive, sha, placement),
        warnings=tuple(warnings),
    )


def _read_local(archive: Path, reporter: Reporter) -> tuple[Manifest, int, str]:
    """The archive's manifest, size and sha256, checked against each other."""
    manifest = read_manifest(archive)
    if manifest is None:
        raise PublishError(
            f"{archive}: no manifest beside it ({archive.name}.json)",
            "publish archives written by bundler pack, which writes both",
        )
    size = archive.stat().st_size
    sha = _hash_local(archive, size, reporter)
    if manifest.archive.sha256 not in (None, sha):
        raise PublishError(
            f"{archive} changed after it was packed: its manifest says sha256 "
            f"{manifest.archive.sha256[:16]}..., the file is {sha[:16]}...",
            "pack it again",
        )
    return manifest, size, sha


def _record(archive: Path, sha: str, placement: Placement) -> Path:
    """Add ``placement`` to the archive's record (a new record when the bytes changed)."""
    try:
        record = read_record(archive)
    except PublishedRecordError:
        record = None  # an unreadable record is replaced by this publish's
    if record is None or record.sha256 != sha:
        record = new_record(archive, sha)
    return write_record(archive, record.with_placement(placement))


def _hash_local(archive: Path, size: int, reporter: Reporter) -> str:
    task = f"sha256 of {archive.name}"
    reporter.step(task)
    return sha256_file(archive, lambda done: reporter.progress(task, done, size))


class _Upload:
    """Putting one archive and its manifest at ``dest``, or finding them there already."""

    def __init__(
        self,
        fs: Any,
        dest: Destination,
        name: str,
        archive: Path,
        size: int,
        sha256: str,
        reporter: Reporter,
    ) -> None:
        self.fs, self.dest, self.name = fs, dest, name
        self.archive, self.size, self.sha256 = archive, size, sha256
        self.reporter = reporter
        self.path = dest.path_of(name)
        self.manifest_path = self.path + ".json"
        self.created: list[str] = []  # directories this publish made, deepest last

    def place(self, manifest: bytes) -> bool:
        """Upload unless the same bytes are there; True when something was uploaded."""
        uri = self.dest.uri_of(self.name)
        remote_size = self._size(self.path)
        if remote_size is not None:
            self._check_same(uri, remote_size)
            if self._size(self.manifest_path) is None:
                self._put_bytes(self.manifest_path, manifest)
            self.reporter.step(f"{uri} already holds these bytes: nothing uploaded")
            return False
        if not self.dest.backend.atomic_put:
            self._make_dirs()
        self._put_archive(uri)
        self._put_bytes(self.manifest_path, manifest)
        return True

    def _size(self, path: str) -> int | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return int(info.get("size") or 0)

    def _check_same(self, uri: str, remote_size: int) -> None:
        theirs = self._remote_sha256() if remote_size == self.size else None
        if theirs != self.sha256:
            what = f"sha256 {theirs[:16]}..." if theirs else f"{remote_size} bytes"
            raise PublishError(
                f"{uri} already exists with other bytes ({what}; this archive has "
                f"{self.size} bytes, sha256 {self.sha256[:16]}...): published names are "
                "never overwritten",
                "it was not written by bundler publish; remove it yourself if it is wrong",
            )

    def _remote_sha256(self) -> str | None:
        """The remote manifest's sha256 for the archive, else the remote bytes' own."""
        try:
            data = json.loads(self.fs.cat_file(self.manifest_path))
            recorded = data["archive"]["sha256"]
            if isinstance(recorded, str) and recorded:
                return recorded
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            pass  # not a manifest of ours: the bytes decide
        self.reporter.step(f"no manifest beside {self.name}: hashing the remote copy")
        with self.fs.open(self.path, "rb") as fh:
            return sha256_of(fh)

    def _make_dirs(self) -> None:
        missing: list[str] = []
        path = self.dest.path
        while path not in ("", "/") and not self.fs.exists(path):
            missing.append(path)
            path = posixpath.dirname(path)
        self.fs.makedirs(self.dest.path, exist_ok=True)
        self.created = list(reversed(missing))

    def _put_archive(self, uri: str) -> None:
        task = f"upload {self.archive.name} to {uri}"
        self.reporter.step(task)
        if self.dest.backend.atomic_put:
            self.fs.put_file(
                str(self.archive),
                self.path,
                callback=_upload_callback(self.reporter, task, self.size),
            )
            return
        tmp = self.dest.path_of(f".{self.name}.{uuid.uuid4().hex}.part")
        try:
            with self.archive.open("rb") as src, self.fs.open(tmp, "wb") as out:
                done = 0
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    self.reporter.progress(task, done, self.size)
            self.fs.mv(tmp, self.path)
        except BaseException:
            _remove_quietly(self.fs, tmp)
            raise

    def _put_bytes(self, path: str, data: bytes) -> None:
        if self.dest.backend.atomic_put:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}.part"
        try:
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        except BaseException:
            _remove_quietly(self.fs, tmp)
            raise


def _remove_quietly(fs: Any, path: str) -> None:
    with contextlib.suppress(Exception):  # the first error is the one to report
        fs.rm_file(path)


def _upload_callback(reporter: Reporter, task: str, size: int) -> Any:
    """An fsspec callback that reports an upload's bytes as progress events."""
    from fsspec.callbacks import Callback

    class _Reported(Callback):
        def call(self, *args: Any, **kwargs: Any) -> None:
            reporter.progress(task, self.value, self.size or size)

    return _Reported()


# ------------------------------------------------------------------ YARN PUBLIC cache


def _visibility(
    fs: Any, dest: Destination, name: str, private: bool, created: list[str]
) -> tuple[bool, str | None, list[str]]:
    """Widen permissions as YARN's PUBLIC cache needs (unless private), then check them.

    Returns (public, the path that prevents it, warnings).
    """
    modes = modes_for(dest, fs)
    if modes is None or private:
        return False, None, []
    path = dest.path_of(name)
    warnings: list[str] = []
    try:
        for file in (path, path + ".json"):
            modes.chmod(file, modes.mode(file) | _READABLE)
        for directory in dict.fromkeys([*created, dest.path]):
            modes.chmod(directory, modes.mode(directory) | _TRAVERSABLE)
    except (OSError, BundlerError) as exc:
        warnings.append(f"could not widen permissions at {dest.uri}: {exc}")
    blocker = public_blocker(modes, path)
    if blocker is not None:
        warnings.append(
            f"{blocker[0]} (mode {blocker[1]:04o}) keeps {name} out of YARN's PUBLIC cache: "
            "each application downloads and unpacks it again "
            f"(the archive must be readable by others, every directory above it executable "
            f"by others; chmod o+x {blocker[0]}, or publish elsewhere)"
        )
    return blocker is None, blocker[0] if blocker else None, warnings


def public_blocker(modes: Modes, path: str) -> tuple[str, int] | None:
    """The first of ``path`` (not readable by others) or its ancestors (not executable by
    others) that breaks Spark's PUBLIC-visibility rule, with its mode; None when none does."""
    mode = modes.mode(path)
    if not mode & 0o004:
        return path, mode
    parent = posixpath.dirname(path)
    while True:
        mode = modes.mode(parent or "/")
        if not mode & 0o001:
            return parent or "/", mode
        if parent in ("", "/"):
            return None
        parent = posixpath.dirname(parent)
