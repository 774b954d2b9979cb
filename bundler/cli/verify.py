"""CLI command(s) for bundler.check.verify (registered by bundler.cli.build_app).

No ``from __future__ import annotations`` here: typer reads the annotations of the
commands defined inside ``register``, which refer to names imported there.
"""

from pathlib import Path
from typing import Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, reporting
from bundler.render import print_json


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""

    @app.command()
    def verify(
        archive: Annotated[Path, typer.Argument(help="Archive made by bundler pack.")],
        imports: Annotated[
            list[str] | None,
            typer.Option("--import", help="Module to import (default: the manifest's)."),
        ] = None,
        deny_license: Annotated[
            list[str] | None,
            typer.Option(
                "--deny-license",
                help="Fail when a package's licence is this SPDX identifier (repeatable).",
            ),
        ] = None,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Unpack ARCHIVE elsewhere and prove it works: imports, relocation, linkage."""
        from bundler.check.verify import verify_archive

        with reporting(quiet, as_json) as reporter:
            report = verify_archive(
                archive, imports=imports, deny_licenses=deny_license or (), reporter=reporter
            )
        if as_json:
            print_json(report.to_dict())
        else:
            print(report.render())
        if not report.ok:
            raise typer.Exit(1)
