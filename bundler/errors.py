"""The one exception hierarchy of bundler.

Every error a user can cause is a ``BundlerError`` with a one-line message and a
hint saying what to do.  The CLI maps them to exit codes in one place
(``exit_code``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class BundlerError(Exception):
    """A mistake or an environmental problem the user can fix."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text


class UsageError(BundlerError):
    """Command-line options that contradict each other or are missing."""


class WorkspaceError(BundlerError):
    """variants.toml or an environment file is missing or malformed."""


class UnknownVariantError(WorkspaceError):
    """A variant name that the workspace does not define."""


class SolveError(BundlerError):
    """The solver or the pip resolver could not satisfy the specs."""


class ChannelError(BundlerError):
    """A channel or index could not be reached."""


class LockStateError(BundlerError):
    """A lock is missing or stale for the operation asked for."""


class BuildError(BundlerError):
    """Installing the locked packages into a prefix failed."""


class PackError(BundlerError):
    """conda-pack refused the prefix or the archive could not be written."""


class VerifyError(BundlerError):
    """An archive failed verification."""

    exit_code = 1


class ManifestError(BundlerError):
    """An archive's manifest (``<archive>.json``) is unreadable, malformed or too new."""


class SbomError(BundlerError):
    """An SBOM cannot be made as asked (no such archive, unknown format)."""


class LicensePolicyError(BundlerError):
    """A --deny-license value that is not an SPDX licence expression."""


class GuardError(BundlerError):
    """A locked combination of packages that PySpark does not support."""


class ToolMissingError(BundlerError):
    """An external tool (an image builder, spark-submit) is not installed."""


class SparkConfError(BundlerError):
    """The asked-for Spark setup cannot work (wrong master, mode, archive or GPU numbers)."""


class ImageError(BundlerError):
    """The image cannot be built as asked (base image, archive, platform, Spark version)."""


class NativeDistributionError(BundlerError):
    """A distribution with compiled code cannot go into a --py-files zip."""


class AttachError(BundlerError):
    """An archive cannot be attached to a Spark Connect session (bundler.spark.attach).

    Raised in a notebook rather than through the CLI, so the text shown with the
    exception carries the hint as well.
    """

    def __str__(self) -> str:
        return self.one_line()


class ClassicSessionError(AttachError):
    """attach was given a classic SparkSession, which takes its archive from spark-submit."""


class SubprocessError(BundlerError):
    """A command bundler ran failed; its output tail is in ``output``."""

    def __init__(self, message: str, hint: str = "", output: str = "") -> None:
        super().__init__(message, hint)
        self.output = output


class PublishError(BundlerError):
    """An archive cannot be published where it was asked to go (scheme, extra,
    credentials, endpoint, or an object of other bytes under its immutable name)."""


class PublishedRecordError(BundlerError):
    """``<archive>.published.json`` is missing, unreadable, or for other bytes than the archive."""


class FileSystemError(BundlerError):
    """The operating system refused a file: disk full, read-only, permission, no directory.

    With ``free_on``, the hint starts with the free space there, measured when the line
    is shown: by then the temporary files of the failed work are gone.
    """

    def __init__(self, message: str, hint: str = "", free_on: Path | None = None) -> None:
        super().__init__(message, hint)
        self.free_on = free_on

    def one_line(self) -> str:
        if self.free_on is None:
            return super().one_line()
        try:
            free = mib(free_bytes(self.free_on))
        except OSError:
            return super().one_line()
        return BundlerError(self.message, f"{free} free there; {self.hint}").one_line()


_WRITE_HINT = "choose a writable -o or workspace, or remount it read-write"
_FS_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
    errno.ENOTDIR,
}


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point holding ``path`` (or its nearest existing ancestor), bind mounts too."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    here = here.resolve()
    try:
        with open("/proc/self/mounts") as fh:
            points = [_unescape(line.split()[1]) for line in fh if line.strip()]
    except OSError:
        points = []
    inside = [m for m in points if here == Path(m) or Path(m) in here.parents]
    return Path(max(inside, key=len)) if inside else Path(here.anchor)


def _unescape(field: str) -> str:
    """/proc/self/mounts writes a space as ``\\040`` (octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still put under ``path``'s file system."""
    st = os.statvfs(mount_point(path))
    return st.f_bavail * st.f_frsize


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def shown_path(path: str | os.PathLike[str]) -> Path:
    """``path``, with an atomic temporary name (``.NAME.xxxxxxxx.part``) shown as NAME."""
    p = Path(path)
    m = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}\.part", p.name)
    return p.with_name(m.group(1)) if m else p


def os_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> BundlerError | None:
    """The one-line ``FileSystemError`` for ``exc`` (about ``path`` if the error names none).

    None for errors that are not the user's to fix (bundler's bugs keep their traceback).
    """
    if exc.errno not in _FS_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else path
    if where is None:
        target, text = None, "a file"
    else:
        target = shown_path(where)
        text = str(target)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        if target is None:
            return FileSystemError(f"{what} on a device", "free space, then run again")
        mount = mount_point(target)
        elsewhere = "set TMPDIR to a larger place" if _scratch(target) else "write elsewhere"
        return FileSystemError(
            f"{what} on {mount} writing {text}",
            f"free space on {mount} or {elsewhere}",
            free_on=mount,
        )
    if exc.errno == errno.EROFS:
        mounted = str(mount_point(target)) if target is not None else "a file system"
        return FileSystemError(f"{mounted} is read-only: cannot write {text}", _WRITE_HINT)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return FileSystemError(
            f"permission denied: {text}", "choose a path you may write, or change its permissions"
        )
    return FileSystemError(
        f"{(exc.strerror or 'no such file or directory').lower()}: {text}",
        "check the path; a missing directory is not created for an input",
    )


def _scratch(path: Path) -> bool:
    """Whether ``path`` is in the temporary directory (bundler's scratch space)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    return tmp in Path(os.path.abspath(path)).parents


@contextmanager
def os_errors(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn the operating system's refusals in the block into ``FileSystemError``."""
    try:
        yield
    except OSError as exc:
        mapped = os_error(exc, path)
        if mapped is None:
            raise
        raise mapped from exc
