"""``bundler pyfiles`` over ``bundler.deliver.pyfiles`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt
from bundler.cli.runner import Output, run
from bundler.render import human_size

if TYPE_CHECKING:
    from bundler.deliver.pyfiles import PyfilesResult


# The command's arguments and options, one type each; its signature names them.
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="The zip to write (for --py-files).")
]
VariantArg = Annotated[str | None, typer.Argument(help="Variant whose lock is built and zipped.")]
SkipNativeOpt = Annotated[
    bool,
    typer.Option(
        "--skip-native",
        help="Leave out distributions with compiled code instead of refusing them.",
    ),
]
SitePackagesOpt = Annotated[
    Path | None,
    typer.Option("--site-packages", help="Zip this site-packages directory instead of a variant."),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="Lock platform (default: this machine's if listed, else the first).",
    ),
]


def pyfiles_command(
    output: OutputOpt,
    variant: VariantArg = None,
    skip_native: SkipNativeOpt = False,
    site_packages: SitePackagesOpt = None,
    platform: PlatformOpt = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Zip VARIANT's pure-Python dependencies for spark-submit --py-files."""
    from bundler.deliver.pyfiles import PyfilesOptions, make_pyfiles

    options = PyfilesOptions(
        output=output,
        variant=variant,
        site_packages=site_packages,
        platform=platform,
        skip_native=skip_native,
        workspace=workspace,
    )
    run(make_pyfiles, options, print_pyfiles, Output(as_json, quiet, verbose))


def print_pyfiles(result: "PyfilesResult") -> None:
    """The zip, what went in, and what was left out and why."""
    print(f"{result.path}  {human_size(result.size)}  sha256:{result.sha256}")
    for name, version, count in result.included:
        print(f"  {name:<28} {version:<16} {count} files")
    if result.skipped:
        print("left out (compiled code; ship these in the conda archive):")
        for s in result.skipped:
            print(f"  {s.name:<28} {s.version:<16} {s.reason}")
    if result.excluded:
        print(
            f"not zipped (Spark provides them or they are installers): {', '.join(result.excluded)}"
        )
