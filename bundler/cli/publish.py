"""CLI command(s) for bundler.deliver.publish (registered by bundler.cli.build_app).

No ``from __future__ import annotations`` here: typer reads the annotations of the
command defined inside ``register``, which refer to names imported there.
"""

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""
    from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt, reporting

    @app.command("publish")
    def publish_command(
        target: Annotated[
            str,
            typer.Argument(
                help="Variant (its dist/<variant>-<platform>.tar.gz) or the path of an archive."
            ),
        ],
        to: Annotated[
            str,
            typer.Option(
                "--to",
                help="Directory URI: s3://, s3a://, gs://, abfs://, hdfs://, webhdfs:// "
                "or file:///ABS/PATH.",
            ),
        ],
        platform: Annotated[
            str | None,
            typer.Option(
                "--platform",
                help="Lock platform (default: this machine's if listed, else the first).",
            ),
        ] = None,
        private: Annotated[
            bool,
            typer.Option(
                "--private",
                help="hdfs:// and file://: leave permissions as created "
                "(no world-readable archive, no YARN PUBLIC cache).",
            ),
        ] = False,
        workspace: WorkspaceOpt = Path("."),
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Copy an archive and its manifest under an immutable, content-addressed name."""
        from bundler.deliver.publish import PublishOptions, publish
        from bundler.render import human_size, print_json

        options = PublishOptions(
            target=target, to=to, platform=platform, private=private, workspace=workspace
        )
        with reporting(quiet, as_json, verbose) as reporter:
            result = publish(options, reporter)
        if as_json:
            print_json(result.to_dict())
            return
        if quiet:
            return
        done = "uploaded" if result.uploaded else "already there, nothing uploaded"
        print(f"{result.uri}  {human_size(result.size)}  {done}")
        if result.public is True:
            print("  readable for YARN's PUBLIC cache (one download per node)")
        print(f"  recorded in {result.record}; spark-conf VARIANT --published uses it")
