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
from typing import Any

from bundler.errors import ManifestError
from bundler.solve.guards import versions_of

MANIFEST_VERSION = 1


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
    kind: str = "full"  # "executor" leaves out what Spark's executors do without
    kept: tuple[str, ...] = ()  # content groups kept (artifact.content.GROUPS)
    left_out: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # group: bytes/files
    installed_size: int | None = None
    dropped_imports: tuple[str, ...] = ()  # Spark provides these on executors
    excluded: tuple[str, ...] = ()  # the exclude patterns the archive was written with
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
    def saved(self) -> int:
        """Installed bytes left out of the archive."""
        return sum(int(g.get("bytes", 0)) for g in self.left_out.values())

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
            kind=self.kind,
            kept=list(self.kept),
            left_out={k: dict(v) for k, v in self.left_out.items()},
            installed_size=self.installed_size,
            dropped_imports=list(self.dropped_imports),
            excluded=list(self.excluded),
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
            kind=fields.text("kind") or "full",
            kept=fields.names("kept"),
            left_out={
                group: fields.counts(group, record)
                for group, record in fields.mapping("left_out").items()
            },
            installed_size=fields.number("installed_size"),
            dropped_imports=fields.names("dropped_imports"),
            excluded=fields.names("excluded"),
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

    def counts(self, group: str, record: Any) -> dict[str, int]:
        if not isinstance(record, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in record.values()
        ):
            raise self.error(f"left_out.{group} is not an object of byte and file counts")
        return record

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
