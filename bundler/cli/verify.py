"""``bundler verify`` over ``bundler.check.verify`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt
from bundler.cli.runner import Output, run

if TYPE_CHECKING:
    from bundler.check.report import VerifyReport
    from bundler.events import Reporter


# The command's arguments and options, one type each; its signature names them.
ArchiveArg = Annotated[Path, typer.Argument(help="Archive made by bundler pack.")]
ImportsOpt = Annotated[
    list[str] | None,
    typer.Option("--import", help="Module to import (default: the manifest's)."),
]
DenyLicenseOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-license",
        help="Fail when a package's licence is this SPDX identifier (repeatable).",
    ),
]


def verify(
    archive: ArchiveArg,
    imports: ImportsOpt = None,
    deny_license: DenyLicenseOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Unpack ARCHIVE elsewhere and prove it works: imports, relocation, linkage."""
    call = partial(_verify, imports=imports, deny_licenses=deny_license or ())
    run(call, archive, print_report, Output(as_json, quiet), product=True, exit_code=_failed)


def _verify(
    archive: Path,
    reporter: "Reporter",
    *,
    imports: Sequence[str] | None,
    deny_licenses: Sequence[str],
) -> "VerifyReport":
    from bundler.check.verify import verify_archive

    return verify_archive(archive, imports=imports, deny_licenses=deny_licenses, reporter=reporter)


def print_report(report: "VerifyReport") -> None:
    """Every check, passed or not (printed with --quiet too: it is the answer)."""
    print(report.render())


def _failed(report: "VerifyReport") -> int:
    return 0 if report.ok else 1
