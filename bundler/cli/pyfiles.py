"""CLI command(s) for bundler.deliver.pyfiles (registered by bundler.cli.build_app).

No ``from __future__ import annotations`` here: typer reads the annotations of the
command defined inside ``register``, which refer to names imported there.
"""

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""
    from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt, reporting

    @app.command("pyfiles")
    def pyfiles_command(
        output: Annotated[
            Path, typer.Option("--output", "-o", help="The zip to write (for --py-files).")
        ],
        variant: Annotated[
            str | None, typer.Argument(help="Variant whose lock is built and zipped.")
        ] = None,
        skip_native: Annotated[
            bool,
            typer.Option(
                "--skip-native",
                help="Leave out distributions with compiled code instead of refusing them.",
            ),
        ] = False,
        site_packages: Annotated[
            Path | None,
            typer.Option(
                "--site-packages", help="Zip this site-packages directory instead of a variant."
            ),
        ] = None,
        platform: Annotated[
            str | None,
            typer.Option(
                "--platform",
                help="Lock platform (default: this machine's if listed, else the first).",
            ),
        ] = None,
        workspace: WorkspaceOpt = Path("."),
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Zip VARIANT's pure-Python dependencies for spark-submit --py-files."""
        from bundler.deliver.pyfiles import PyfilesOptions, make_pyfiles
        from bundler.errors import UsageError
        from bundler.render import human_size, print_json

        options = PyfilesOptions(
            output=output,
            variant=variant,
            site_packages=site_packages,
            platform=platform,
            skip_native=skip_native,
            workspace=workspace,
        )
        with reporting(quiet, as_json, verbose) as reporter:
            if (variant is None) == (site_packages is None):
                raise UsageError("name a VARIANT or pass --site-packages DIR (not both)")
            result = make_pyfiles(options, reporter)
        if as_json:
            print_json(result.to_dict())
            return
        if quiet:
            return
        print(f"{result.path}  {human_size(result.size)}  sha256:{result.sha256}")
        for name, version, count in result.included:
            print(f"  {name:<28} {version:<16} {count} files")
        if result.skipped:
            print("left out (compiled code; ship these in the conda archive):")
            for s in result.skipped:
                print(f"  {s.name:<28} {s.version:<16} {s.reason}")
        if result.excluded:
            print(
                f"not zipped (Spark provides them or they are installers): "
                f"{', '.join(result.excluded)}"
            )
