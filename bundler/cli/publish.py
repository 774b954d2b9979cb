"""``bundler publish`` over ``bundler.deliver.publish`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt
from bundler.cli.runner import Output, run
from bundler.render import human_size

if TYPE_CHECKING:
    from bundler.deliver.publish import PublishResult


# The command's arguments and options, one type each; its signature names them.
TargetArg = Annotated[
    str,
    typer.Argument(
        help="Variant (its dist/<variant>-<platform>.tar.gz) or the path of an archive."
    ),
]
ToOpt = Annotated[
    str,
    typer.Option(
        "--to",
        help="Directory URI: s3://, s3a://, gs://, abfs://, hdfs://, webhdfs:// "
        "or file:///ABS/PATH.",
    ),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="Lock platform (default: this machine's if listed, else the first).",
    ),
]
PrivateOpt = Annotated[
    bool,
    typer.Option(
        "--private",
        help="hdfs:// and file://: leave permissions as created "
        "(no world-readable archive, no YARN PUBLIC cache).",
    ),
]


def publish_command(
    target: TargetArg,
    to: ToOpt,
    platform: PlatformOpt = None,
    private: PrivateOpt = False,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Copy an archive and its manifest under an immutable, content-addressed name."""
    from bundler.deliver.publish import PublishOptions, publish

    options = PublishOptions(
        target=target, to=to, platform=platform, private=private, workspace=workspace
    )
    run(publish, options, print_published, Output(as_json, quiet, verbose))


def print_published(result: "PublishResult") -> None:
    """Where the archive is now, whether it was uploaded, and where that is recorded."""
    done = "uploaded" if result.uploaded else "already there, nothing uploaded"
    print(f"{result.uri}  {human_size(result.size)}  {done}")
    if result.public is True:
        print("  readable for YARN's PUBLIC cache (one download per node)")
    print(f"  recorded in {result.record}; spark-conf VARIANT --published uses it")
