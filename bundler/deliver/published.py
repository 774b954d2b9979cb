"""``<archive>.published.json``: where ``bundler publish`` put an archive.

The record lies beside the local archive (``dist/base-linux-64.tar.gz.published.json``)
and names the bytes it was made for (sha256, size, and the file's size and
modification time to skip re-hashing an unchanged file).  ``spark-conf --published``
reads it, checks it against the archive as it is now, and refuses a stale one: an
archive packed again after publishing is not what the recorded URI holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.atomic import atomic_write
from bundler.digest import sha256_file
from bundler.errors import PublishedRecordError

RECORD_VERSION = 1


def record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".published.json")


@dataclass(frozen=True)
class Placement:
    """One published copy: its URI, the URI Spark reads (s3a:// for s3://), its manifest."""

    uri: str
    spark_uri: str
    manifest_uri: str

    def to_dict(self) -> dict[str, str]:
        return {"uri": self.uri, "spark_uri": self.spark_uri, "manifest_uri": self.manifest_uri}


@dataclass(frozen=True)
class PublishedRecord:
    archive: str  # the local archive's file name
    sha256: str
    size: int
    mtime_ns: int
    placements: tuple[Placement, ...] = ()  # most recent last

    def with_placement(self, placement: Placement) -> PublishedRecord:
        others = tuple(p for p in self.placements if p.uri != placement.uri)
        return PublishedRecord(
            self.archive, self.sha256, self.size, self.mtime_ns, (*others, placement)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_version": RECORD_VERSION,
            "archive": self.archive,
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "published": [p.to_dict() for p in self.placements],
        }


def new_record(archive: Path, sha256: str) -> PublishedRecord:
    st = archive.stat()
    return PublishedRecord(archive.name, sha256, st.st_size, st.st_mtime_ns)


def read_record(archive: Path) -> PublishedRecord | None:
    """The record beside ``archive``; None when there is none."""
    path = record_path(archive)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("record_version", 1)
        if version > RECORD_VERSION:
            raise PublishedRecordError(
                f"{path}: record version {version}, this bundler reads {RECORD_VERSION}",
                "upgrade bundler, or publish again with this one",
            )
        placements = tuple(
            Placement(str(p["uri"]), str(p.get("spark_uri") or p["uri"]), str(p["manifest_uri"]))
            for p in data["published"]
        )
        return PublishedRecord(
            str(data["archive"]),
            str(data["sha256"]),
            int(data["size"]),
            int(data["mtime_ns"]),
            placements,
        )
    except PublishedRecordError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublishedRecordError(
            f"{path} is unreadable or malformed ({type(exc).__name__}: {exc})",
            "delete it and run bundler publish again",
        ) from exc


def write_record(archive: Path, record: PublishedRecord) -> Path:
    path = record_path(archive)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def current_sha256(archive: Path, record: PublishedRecord) -> str:
    """The archive's sha256 now: the record's when size and mtime are unchanged, else hashed."""
    st = archive.stat()
    if st.st_size == record.size and st.st_mtime_ns == record.mtime_ns:
        return record.sha256
    return sha256_file(archive)


def published_uri(archive: Path) -> str:
    """The URI Spark should read for ``archive``: the most recent publish of these bytes.

    PublishedRecordError when the archive or its record is missing, or when the
    archive changed after it was published (the record is stale).
    """
    if not archive.is_file():
        raise PublishedRecordError(
            f"{archive} not found: --published checks the record against the local archive",
            "pack it (bundler pack VARIANT), then bundler publish VARIANT --to URI",
        )
    record = read_record(archive)
    if record is None or not record.placements:
        raise PublishedRecordError(
            f"{archive} was never published (no {record_path(archive).name})",
            "run bundler publish VARIANT --to URI first",
        )
    sha = current_sha256(archive, record)
    if sha != record.sha256:
        raise PublishedRecordError(
            f"{record_path(archive)} is stale: it was written for sha256 "
            f"{record.sha256[:16]}..., {archive.name} is now {sha[:16]}...",
            "run bundler publish again for the archive as it is now",
        )
    placement = record.placements[-1]
    if record.sha256[:16] not in placement.uri.rsplit("/", 1)[-1]:
        raise PublishedRecordError(
            f"{record_path(archive)}: {placement.uri} does not name sha256 {record.sha256[:16]}",
            "delete the record and run bundler publish again",
        )
    return placement.spark_uri
