"""CLI command(s) for bundler.artifact.sbom (registered by bundler.cli.build_app).

No ``from __future__ import annotations`` here: typer reads the annotations of the
commands defined inside ``register``, which refer to names imported there.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, reporting
from bundler.render import print_json


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""

    @app.command()
    def sbom(
        archive: Annotated[Path, typer.Argument(help="Archive made by bundler pack.")],
        fmt: Annotated[
            str, typer.Option("--format", help="cyclonedx (1.6 JSON) or spdx (2.3 JSON).")
        ] = "cyclonedx",
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Write the document here (default: stdout)."),
        ] = None,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Write the SBOM of ARCHIVE: every distribution it really holds.

        Read from its manifest and its own conda records and dist-info; pack writes the
        CycloneDX one beside every archive.
        """
        from bundler.artifact.sbom import SbomOptions, build_sbom

        options = SbomOptions(archive=archive, format=fmt, output=output)
        with reporting(quiet, as_json) as reporter:
            result = build_sbom(options, reporter)
        if output is None:
            sys.stdout.write(result.text)
        elif as_json:
            print_json(result.to_dict())
        elif not quiet:
            print(f"{output}  {result.format}, {result.components} components")
