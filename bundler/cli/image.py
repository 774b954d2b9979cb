"""CLI command(s) for bundler.deliver.image (registered by bundler.cli.build_app)."""

# No ``from __future__ import annotations``: typer reads these annotations when the
# command is defined, and the option types are imported inside ``register``.

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app (once, however often it is called)."""
    if any(cmd.name == "image" for cmd in app.registered_commands):
        return
    from bundler.cli.options import (
        JsonOpt,
        QuietOpt,
        VerboseOpt,
        WorkspaceOpt,
        open_workspace,
        reporting,
    )
    from bundler.deliver.image import (
        BUILDERS,
        DEFAULT_BASE_REPOSITORY,
        DEFAULT_REPOSITORY,
        PYSPARK_MODES,
    )
    from bundler.platforms import DEFAULT_PLATFORM

    @app.command("image")
    def image(
        variant: Annotated[str, typer.Argument(help="Variant whose environment goes in.")],
        base: Annotated[
            str | None,
            typer.Option(
                "--base",
                help="Base image, already in the builder's local store.",
                show_default=f"{DEFAULT_BASE_REPOSITORY}:<locked pyspark version>",
            ),
        ] = None,
        allow_spark_mismatch: Annotated[
            bool,
            typer.Option(
                "--allow-spark-mismatch",
                help="Build even when the base's Spark minor version differs from the "
                "locked pyspark's.",
            ),
        ] = False,
        tag: Annotated[
            str | None,
            typer.Option(
                "--tag", "-t", help="Image tag.", show_default=f"{DEFAULT_REPOSITORY}:VARIANT"
            ),
        ] = None,
        builder: Annotated[
            str | None,
            typer.Option(
                "--builder",
                help=f"{', '.join(BUILDERS)}.",
                show_default="the first of them that works",
            ),
        ] = None,
        pyspark: Annotated[
            str,
            typer.Option(
                "--pyspark",
                help=f"{'|'.join(PYSPARK_MODES)}: leave the environment's pyspark out "
                "(auto: when the base image sets SPARK_HOME).",
            ),
        ] = "auto",
        slim: Annotated[
            bool,
            typer.Option(
                "--slim/--no-slim",
                help="Leave out unused test suites, static libraries and man pages.",
            ),
        ] = True,
        compile_: Annotated[
            bool,
            typer.Option(
                "--compile/--no-compile",
                help="Byte-compile in the image (faster imports, a larger layer).",
            ),
        ] = True,
        archive: Annotated[
            Path | None,
            typer.Option("--archive", help="Build from this bundler pack archive, as it is."),
        ] = None,
        dockerfile: Annotated[
            Path | None,
            typer.Option(
                "--dockerfile",
                help="The Dockerfile to build.",
                show_default="WORKSPACE/docker/Dockerfile, else bundler's own",
            ),
        ] = None,
        platform: Annotated[
            str, typer.Option("--platform", help="Platform of the environment.")
        ] = DEFAULT_PLATFORM,
        workspace: WorkspaceOpt = Path("."),
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Build a Spark image with the variant's environment as one layer."""
        from bundler.deliver.image import ImageOptions, build_image
        from bundler.render import human_size, print_json

        options = ImageOptions(
            workspace=workspace,
            variant=variant,
            base=base,
            tag=tag,
            builder=builder,
            platform=platform,
            archive=archive,
            pyspark=pyspark,
            leave_out_unused=slim,
            compile=compile_,
            dockerfile=dockerfile,
            allow_spark_mismatch=allow_spark_mismatch,
        )
        with reporting(quiet, as_json, verbose) as reporter:
            open_workspace(workspace)
            result = build_image(options, reporter)
        if as_json:
            print_json(result.to_dict())
            return
        if quiet:
            return
        print(f"{result.tag}  {result.image_id[:19]}  built with {result.builder}")
        print(
            f"environment layer: {human_size(result.env_size)} unpacked before byte-compiling, "
            f"{human_size(result.archive_size)} compressed ({result.archive})"
        )
        for group, left in result.left_out.items():
            print(f"  left out {group}: {human_size(left.bytes)}")
