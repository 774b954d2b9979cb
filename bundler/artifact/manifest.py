"""``<archive>.json``: what an archive is, written by ``pack`` beside every archive.

This module is the only code that reads or writes a manifest; ``verify``, ``image``,
``spark-conf``'s Connect counterpart ``attach`` and the pack summary all go through
``Manifest``.  The layout is versioned (``manifest_version``): a manifest without the
field was written before it existed and has the layout of version 1; a later version
is refused with a clear error instead of being half-understood.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from bundler.errors import ManifestError
from bundler.solve.guards import versions_of

MANIFEST_VERSION = 1

#: What an archive holds: ``full`` keeps every group, ``executor`` leaves some out
#: (the manifest's ``kind``).  Not its format (``formats.ArchiveFormat``: tar.gz, ...).
Content = Literal["executor", "full"]
CONTENTS: tuple[Content, ...] = get_args(Content)


def manifest_path(archive: Path) -> Path:
    """Where pack writes an archive's manifest: beside it, its name plus ``.json``."""
    return archive.with_name(archive.name + ".json")


@dataclass(frozen=True)
class ArchiveRecord:
    """The archive file itself, as written."""

    name: str | None = None
    format: str | None = None
    sha256: str | None = None
    size: int | None = None
    # Files stored as hard links to an identical earlier file (tar only), and their bytes.
    linked_files: int = 0
    linked_bytes: int = 0


@dataclass(frozen=True)
class PackageRecord:
    """One installed package (conda record or pip distribution) and its installed bytes."""

    name: str
    version: str
    manager: str = "conda"
    size: int = 0
    in_archive: bool = True  # False: left out because Spark provides it (pyspark, py4j)
    sha256: str | None = None  # of the package file, from the lock (or the conda record)


@dataclass(frozen=True)
class LeftOut:
    """What one group leaves out of an archive: installed bytes, and files."""

    bytes: int = 0
    files: int = 0

    def to_dict(self) -> dict[str, int]:
        """The manifest's and ``--json``'s ``{"bytes": n, "files": k}``."""
        return {"bytes": self.bytes, "files": self.files}


@dataclass(frozen=True)
class Manifest:
    bundler_version: str | None = None
    variant: str | None = None  # None for a pack of an existing prefix
    platform: str | None = None
    inputs_hash: str | None = None  # of the variant's inputs; absent for a prefix pack
    lock_sha256: str | None = None  # of the lock file; absent for a prefix pack
    python: str | None = None
    imports: tuple[str, ...] = ()
    gpu_imports: tuple[str, ...] = ()
    build_prefix: str | None = None
    # JSON "kind": "executor" leaves out what Spark's executors do without
    content: Content = "full"
    kept: tuple[str, ...] = ()  # content groups kept (artifact.content.GROUPS)
    left_out: Mapping[str, LeftOut] = field(default_factory=dict)  # per group that matched
    installed_size: int | None = None
    # JSON "dropped_imports": left out, Spark provides them on executors (pyspark, py4j)
    left_out_imports: tuple[str, ...] = ()
    # JSON "excluded": the conda-pack exclude patterns the archive was written with
    exclude_patterns: tuple[str, ...] = ()
    zip_symlinks: Mapping[str, Any] | None = None  # a zip's symlinks, stored as copies
    # The CUDA the content carries ("12.9"; "12" when only the major is known), whatever
    # the variant's cuda = says; None: not a CUDA environment, or its version unknown.
    cuda: str | None = None
    archive: ArchiveRecord = field(default_factory=ArchiveRecord)
    packages: tuple[PackageRecord, ...] = ()
    path: Path | None = field(default=None, compare=False)  # where it was read from

    # ------------------------------------------------------------ derived facts

    def package_versions(self) -> dict[str, str]:
        """Lower-case name -> version; a conda record wins over a pip one of the same name."""
        versions = versions_of((p.name, p.version, p.manager) for p in self.packages)
        if self.python:
            versions.setdefault("python", self.python)
        return versions

    def largest(self, n: int) -> list[PackageRecord]:
        """The largest packages in the archive (left-out ones not counted)."""
        return sorted((p for p in self.packages if p.in_archive), key=lambda p: -p.size)[:n]

    @property
    def left_out_bytes(self) -> int:
        """Installed bytes left out of the archive (JSON ``saved`` in ``pack --json``)."""
        return sum(g.bytes for g in self.left_out.values())

    # ------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "bundler_version": self.bundler_version,
            "variant": self.variant,
            "platform": self.platform,
        }
        # A prefix pack has no lock: absent, never null or "None".
        if self.inputs_hash is not None:
            data["inputs_hash"] = self.inputs_hash
        if self.lock_sha256 is not None:
            data["lock_sha256"] = self.lock_sha256
        data.update(
            python=self.python,
            imports=list(self.imports),
            gpu_imports=list(self.gpu_imports),
            build_prefix=self.build_prefix,
            kind=self.content,
            kept=list(self.kept),
            left_out={k: v.to_dict() for k, v in self.left_out.items()},
            installed_size=self.installed_size,
            dropped_imports=list(self.left_out_imports),
            excluded=list(self.exclude_patterns),
        )
        if self.zip_symlinks is not None:
            data["zip_symlinks"] = dict(self.zip_symlinks)
        if self.cuda is not None:  # absent otherwise: older readers never see it
            data["cuda"] = self.cuda
        data["archive"] = {
            k: v
            for k, v in (
                ("name", self.archive.name),
                ("format", self.archive.format),
                ("sha256", self.archive.sha256),
                ("size", self.archive.size),
                ("linked_files", self.archive.linked_files or None),
                ("linked_bytes", self.archive.linked_bytes or None),
            )
            if v is not None
        }
        data["packages"] = [_package_dict(p) for p in self.packages]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> Manifest:
        """A manifest from its JSON object; ManifestError names the field that is wrong."""
        fields = _Fields(data, str(path) if path else "(in memory)")
        version = data.get("manifest_version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise fields.error(f"manifest_version is {version!r}, not a number")
        if version > MANIFEST_VERSION:
            raise ManifestError(
                f"manifest {fields.where}: version {version}, this bundler reads version "
                f"{MANIFEST_VERSION} and older",
                "upgrade bundler, or pack the archive again with this one",
            )
        archive = _Fields(fields.mapping("archive"), fields.where, "archive.")
        return cls(
            bundler_version=fields.text("bundler_version"),
            variant=fields.text("variant"),
            platform=fields.text("platform"),
            inputs_hash=fields.text("inputs_hash"),
            lock_sha256=fields.text("lock_sha256"),
            python=fields.text("python"),
            imports=fields.names("imports"),
            gpu_imports=fields.names("gpu_imports"),
            build_prefix=fields.text("build_prefix"),
            content=fields.content("kind"),
            kept=fields.names("kept"),
            left_out={
                group: fields.left_out(group, record)
                for group, record in fields.mapping("left_out").items()
            },
            installed_size=fields.number("installed_size"),
            left_out_imports=fields.names("dropped_imports"),
            exclude_patterns=fields.names("excluded"),
            zip_symlinks=fields.mapping("zip_symlinks") if "zip_symlinks" in data else None,
            cuda=fields.text("cuda"),
            archive=ArchiveRecord(
                name=archive.text("name"),
                format=archive.text("format"),
                sha256=archive.text("sha256"),
                size=archive.number("size"),
                linked_files=archive.number("linked_files") or 0,
                linked_bytes=archive.number("linked_bytes") or 0,
            ),
            packages=tuple(fields.package(i, p) for i, p in enumerate(fields.items("packages"))),
            path=path,
        )

    def write(self, path: Path) -> None:
        """Write to ``path`` (callers pass a temporary name and rename it into place)."""
        path.write_text(self.dumps(), encoding="utf-8")


def _package_dict(p: PackageRecord) -> dict[str, Any]:
    data: dict[str, Any] = {"name": p.name, "version": p.version, "manager": p.manager}
    data["size"] = p.size
    if not p.in_archive:
        data["in_archive"] = False
    if p.sha256:
        data["sha256"] = p.sha256
    return data


def read_manifest(archive: Path) -> Manifest | None:
    """The manifest beside ``archive``; None when there is none, ManifestError when bad."""
    path = manifest_path(archive)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path} is not a JSON object")
    return Manifest.from_dict(data, path)


class _Fields:
    """Typed access to a manifest's JSON object; a wrong type is a ManifestError."""

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data = data
        self.where = where
        self.prefix = prefix

    def error(self, problem: str) -> ManifestError:
        return ManifestError(
            f"manifest {self.where}: {problem}",
            "the file was not written by bundler pack, or was edited; pack the archive again",
        )

    def _get(self, key: str, kinds: type | tuple[type, ...], what: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise self.error(f"{self.prefix}{key} is {type(value).__name__}, not {what}")
        return value

    def text(self, key: str) -> str | None:
        value = self._get(key, str, "a string")
        return value or None

    def number(self, key: str) -> int | None:
        value: int | None = self._get(key, int, "a number")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, dict, "an object") or {})

    def items(self, key: str) -> list[Any]:
        return list(self._get(key, list, "a list") or [])

    def names(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise self.error(f"{self.prefix}{key} holds something other than names")
        return tuple(values)

    def content(self, key: str) -> Content:
        value = self.text(key) or "full"
        for content in CONTENTS:
            if value == content:
                return content
        raise self.error(f"{key} is {value!r}, not {' or '.join(CONTENTS)}")

    def left_out(self, group: str, record: Any) -> LeftOut:
        if not isinstance(record, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in record.values()
        ):
            raise self.error(f"left_out.{group} is not an object of byte and file counts")
        return LeftOut(bytes=record.get("bytes", 0), files=record.get("files", 0))

    def package(self, index: int, record: Any) -> PackageRecord:
        if not isinstance(record, dict):
            raise self.error(f"packages[{index}] is not an object")
        fields = _Fields(record, self.where, f"packages[{index}].")
        name, version = fields.text("name"), fields.text("version")
        if name is None or version is None:
            raise self.error(f"packages[{index}] has no name or version")
        return PackageRecord(
            name=name,
            version=version,
            manager=fields.text("manager") or "conda",
            size=fields.number("size") or 0,
            in_archive=record.get("in_archive", True) is not False,
            sha256=fields.text("sha256"),
        )
