"""The one exception hierarchy of bundler.

Every error a user can cause is a ``BundlerError`` with a one-line message and a
hint saying what to do.  The CLI maps them to exit codes in one place
(``exit_code``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


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
