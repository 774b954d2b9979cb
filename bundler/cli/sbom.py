"""``bundler sbom`` over ``bundler.artifact.sbom`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt
from bundler.cli.runner import Output, run

if TYPE_CHECKING:
    from bundler.artifact.sbom import SbomResult


# The command's arguments and options, one type each; its signature names them.
ArchiveArg = Annotated[Path, typer.Argument(help="Archive made by bundler pack.")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="cyclonedx (1.6 JSON) or spdx (2.3 JSON).")
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the document here (default: stdout)."),
]


def sbom(
    archive: ArchiveArg,
    fmt: FormatOpt = "cyclonedx",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the SBOM of ARCHIVE: every distribution it really holds.

    Read from its manifest and its own conda records and dist-info; pack writes the
    CycloneDX one beside every archive.
    """
    from bundler.artifact.sbom import SbomOptions, build_sbom

    options = SbomOptions(archive=archive, format=fmt, output=output)
    # Without -o the document itself goes to stdout, --json or not.
    to_file = output is not None
    answer = Output(as_json=as_json and to_file, quiet=quiet or as_json)
    run(build_sbom, options, print_sbom, answer, product=not to_file)


def print_sbom(result: "SbomResult") -> None:
    """The document itself, or where it was written."""
    if result.output is None:
        sys.stdout.write(result.text)
    else:
        print(f"{result.output}  {result.format}, {result.components} components")
