"""The one table of archive formats: what bundler writes, what it reads, what Spark unpacks.

Adding a format means a row here, a writer in ``pack`` and a reader in ``readers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bundler.errors import PackError, VerifyError

#: An archive's file format: which reader and writer it takes.  Not what it holds
#: (``content.Content``: executor or full).
ArchiveFormat = Literal["tar.gz", "tar", "zip"]


@dataclass(frozen=True)
class Format:
    suffix: str
    name: ArchiveFormat
    written: bool  # bundler pack writes it
    # Why Spark's own unpack of --archives (Java: Kubernetes, standalone, local-cluster,
    # Connect) would not give a runnable environment; None when it does.
    spark_problem: str | None = None
    # YARN's NodeManager unpacks it runnable even so (Hadoop's FileUtil runs the shell's tar)
    yarn_unpacks: bool = False


FORMATS = (
    Format(".tar.gz", "tar.gz", written=True),
    Format(".tgz", "tar.gz", written=True),
    Format(".zip", "zip", written=True),
    Format(
        ".tar",
        "tar",
        written=True,
        spark_problem=(
            "Spark unpacks .tar with Java outside YARN (Kubernetes, standalone, "
            "local-cluster, Connect), which drops the exec bit of bin/python and breaks "
            "relative symlinks"
        ),
        yarn_unpacks=True,
    ),
)

#: The readers of tar streams, gzipped or plain: what a container image's ADD unpacks.
TAR_FORMATS: tuple[ArchiveFormat, ...] = ("tar.gz", "tar")

#: Suffixes that Spark unpacks from ``--archives`` (Utils.unpack) into a runnable
#: environment on every cluster manager; anything else is copied as a file (``.tar``:
#: see its row).
SPARK_UNPACKED_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".jar")


def format_of(name: str) -> Format | None:
    """The table's row for a file name's suffix; None when no row has it."""
    lower = name.lower()
    return next((f for f in FORMATS if lower.endswith(f.suffix)), None)


def is_tar(name: str) -> bool:
    """Whether an archive of this name is a tar stream (``TAR_FORMATS``)."""
    fmt = format_of(name)
    return fmt is not None and fmt.name in TAR_FORMATS


def tar_suffixes() -> str:
    """``.tar.gz, .tgz, .tar``: the suffixes ``is_tar`` takes, for messages."""
    return ", ".join(f.suffix for f in FORMATS if f.name in TAR_FORMATS)


def archive_format(path: Path, *, writing: bool = False) -> ArchiveFormat:
    """``tar.gz``, ``tar`` or ``zip`` from the suffix of ``path``.

    Any other suffix is an error: a PackError for an output (``writing``: a suffix
    ``bundler pack`` does not write), else a VerifyError (an archive bundler cannot read).
    """
    fmt = format_of(path.name)
    if writing and (fmt is None or not fmt.written):
        written = ", ".join(f.suffix for f in FORMATS if f.written)
        raise PackError(
            f"{path}: unsupported archive suffix",
            f"use {written} (Spark unpacks only those; zstd is copied, not unpacked)",
        )
    if fmt is None:
        readable = ", ".join(f.suffix for f in FORMATS)
        raise VerifyError(f"{path}: unsupported archive suffix", f"bundler reads {readable}")
    return fmt.name


def spark_unpack_problem(name: str, *, yarn: bool = False) -> tuple[str, str] | None:
    """(problem, hint) when Spark would not unpack an archive of this name into a
    runnable environment (on YARN when ``yarn``); None when it would."""
    hint = "pack it as .tar.gz (bundler pack VARIANT -o NAME.tar.gz)"
    fmt = format_of(name)
    if fmt is not None and fmt.spark_problem:
        if yarn and fmt.yarn_unpacks:
            return None
        if fmt.yarn_unpacks:
            hint += f"; {fmt.suffix} suits --master yarn only"
        return fmt.spark_problem, hint
    if not name.lower().endswith(SPARK_UNPACKED_SUFFIXES):
        return (
            "Spark only unpacks .tar.gz, .tgz, .zip and .jar; anything else is copied as a file",
            hint,
        )
    return None
