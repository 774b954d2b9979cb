"""One bundler archive for one Spark Connect session (``bundler.spark.attach``).

Spark Connect has no spark-submit: the client streams the archive to the server as
an artifact of its own session (``addArtifacts("/abs/env.tar.gz#env", archive=True)``),
the server unpacks it into that session's artifact directory, and the session's
runtime conf ``spark.sql.execution.pyspark.python`` = ``env/bin/python`` makes the
session's Python UDF workers start from there.  Other sessions on the same server
keep their own Python.

This module imports neither pyspark nor the solver nor conda-pack at import time:
a notebook that has only ``pyspark[connect]`` and bundler can use it.  It does not
import ``bundler.deliver.spark`` either; ``bundler.spark`` re-exports ``attach``.
"""

from __future__ import annotations

import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bundler.artifact.formats import archive_format, spark_unpack_problem
from bundler.artifact.manifest import manifest_path, read_manifest
from bundler.artifact.readers import zip_symlinks
from bundler.deliver.layout import ENV_ALIAS
from bundler.errors import AttachError, ClassicSessionError, ManifestError
from bundler.solve.guards import minor_version

__all__ = ["PYTHON_CONF", "Attached", "PythonMismatchWarning", "attach", "session_kind"]

#: The session conf that names the Python of a Connect session's UDF workers.
PYTHON_CONF = "spark.sql.execution.pyspark.python"


class PythonMismatchWarning(UserWarning):
    """The archive's Python minor version is not the client's."""


@dataclass(frozen=True)
class Attached:
    """What ``attach`` did to the session."""

    archive: Path  # the local archive that was uploaded
    artifact: str  # the argument given to addArtifacts (URI#name)
    name: str  # the directory it is unpacked under, in the session's artifact root
    python: str  # the value set for spark.sql.execution.pyspark.python
    variant: str | None  # from the archive's manifest
    archive_python: str | None  # the archive's Python version, from its manifest
    session_id: str | None  # the Connect session's id, when it has one


def session_kind(session: object) -> Literal["connect", "classic", "other"]:
    """Whether ``session`` is a Spark Connect or a classic SparkSession.

    Decided from the class hierarchy without importing pyspark, so that subclasses
    (Databricks' ``DatabricksSession`` extends the Connect one) count too.
    """
    for cls in type(session).__mro__:
        if cls.__name__ != "SparkSession":
            continue
        module = cls.__module__
        if module.startswith("pyspark.sql.connect."):
            return "connect"
        if module == "pyspark.sql.session" or module.startswith("pyspark.sql.classic."):
            return "classic"
    return "other"


def python_mismatch(
    archive: Path, archive_python: str | None, client: tuple[int, int]
) -> str | None:
    """The warning to give when the archive's Python minor version is not ``client``."""
    here = f"{client[0]}.{client[1]}"
    if archive_python is None or minor_version(archive_python) is None:
        return (
            f"{manifest_path(archive).name} records no Python version: cannot check that "
            f"it matches this client's Python {here} (PySpark needs the same minor version)"
        )
    minor = minor_version(archive_python)
    if minor == client:
        return None
    assert minor is not None
    want = f"{minor[0]}.{minor[1]}"
    return (
        f"{archive.name} holds Python {archive_python} but this client runs Python {here}; "
        "PySpark needs the same minor version on the client and the UDF workers: "
        f"use a Python {want} client, or pack a variant that locks Python {here}"
    )


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or any(c in name for c in "/\\#"):
        raise AttachError(
            f"name={name!r}: must be a plain directory name",
            "use a name such as 'env'",
        )


def _check_archive(archive: Path) -> None:
    lower = archive.name.lower()
    if not archive.is_file():
        raise AttachError(
            f"{archive}: no such archive", "pack one with 'bundler pack VARIANT -o PATH.tar.gz'"
        )
    problem = spark_unpack_problem(archive.name)
    if problem is not None or lower.endswith(".jar"):
        message, hint = problem or ("a .jar is not an environment archive", "")
        raise AttachError(f"{archive}: {message}", hint or "pack it as .tar.gz")
    if "#" in str(archive):
        raise AttachError(
            f"{archive}: Spark Connect cannot upload a path that contains '#'",
            "rename or move the archive and its manifest",
        )
    if archive_format(archive) == "zip":
        _check_zip_links(archive)


def _check_zip_links(archive: Path) -> None:
    """Spark unpacks .zip with Hadoop's unzip, which writes a symlink as a text file."""
    try:
        links = zip_symlinks(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise AttachError(f"{archive}: not a readable zip archive ({exc})") from None
    if links:
        raise AttachError(
            f"{archive}: holds {len(links)} symlink(s) (e.g. {links[0]}), which Spark's unzip "
            "writes as text files, so the session's Python would not start",
            "pack it as .tar.gz (bundler pack VARIANT -o NAME.tar.gz)",
        )


def attach(session: Any, archive: str | Path, *, name: str = ENV_ALIAS) -> Attached:
    """Make ``session``'s Python UDFs run from the bundler archive ``archive``.

    ``session`` is a Spark Connect ``SparkSession`` (``SparkSession.builder.remote(...)``).
    The archive must have been written by ``bundler pack`` (its manifest
    ``<archive>.json`` beside it).  It is uploaded as an artifact of this session only,
    unpacked by the server under ``name``, and ``spark.sql.execution.pyspark.python``
    is set to ``<name>/bin/python`` for this session.  A ``PythonMismatchWarning`` is
    given when the archive's Python minor version is not this client's.
    """
    kind = session_kind(session)
    if kind == "classic":
        raise ClassicSessionError(
            "attach() is for Spark Connect sessions; a classic SparkSession gets its "
            "archive from spark-submit",
            f"spark-submit $(bundler spark-conf VARIANT --archive {archive}) app.py",
        )
    if kind == "other":
        raise AttachError(
            f"attach() needs a Spark Connect SparkSession, got {type(session).__name__}",
            "create one with SparkSession.builder.remote('sc://HOST:PORT').getOrCreate()",
        )
    _check_name(name)
    path = Path(archive).expanduser().resolve()
    _check_archive(path)

    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        raise AttachError(exc.message, exc.hint) from exc
    if manifest is None:
        raise AttachError(
            f"{path}: not a bundler archive (no {manifest_path(path).name} beside it)",
            "pack it with 'bundler pack', which writes the manifest next to the archive",
        )
    size = manifest.archive.size
    if size is not None and size != path.stat().st_size:
        raise AttachError(
            f"{path} is {path.stat().st_size} bytes but {manifest_path(path).name} says {size}: "
            "the manifest belongs to another archive",
            f"run 'bundler verify {path}', or pack it again",
        )
    note = python_mismatch(path, manifest.python, sys.version_info[:2])
    if note is not None:
        warnings.warn(note, PythonMismatchWarning, stacklevel=2)

    artifact = f"{path.as_uri()}#{name}"
    python = f"{name}/bin/python"
    session.addArtifacts(artifact, archive=True)
    session.conf.set(PYTHON_CONF, python)
    session_id = getattr(session, "session_id", None)
    return Attached(
        archive=path,
        artifact=artifact,
        name=name,
        python=python,
        variant=manifest.variant,
        archive_python=manifest.python,
        session_id=session_id if isinstance(session_id, str) else None,
    )
