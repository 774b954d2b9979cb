"""``bundler image`` over ``bundler.deliver.image`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt
from bundler.cli.runner import Output, run
from bundler.deliver.image import (
    BUILDERS,
    DEFAULT_BASE_REPOSITORY,
    DEFAULT_REPOSITORY,
    PYSPARK_MODES,
)
from bundler.platforms import DEFAULT_PLATFORM
from bundler.render import human_size

if TYPE_CHECKING:
    from bundler.deliver.image import ImageResult


# The command's arguments and options, one type each; its signature names them.
VariantArg = Annotated[str, typer.Argument(help="Variant whose environment goes in.")]
BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="Base image, already in the builder's local store.",
        show_default=f"{DEFAULT_BASE_REPOSITORY}:<locked pyspark version>",
    ),
]
AllowSparkMismatchOpt = Annotated[
    bool,
    typer.Option(
        "--allow-spark-mismatch",
        help="Build even when the base's Spark minor version differs from the locked pyspark's.",
    ),
]
TagOpt = Annotated[
    str | None,
    typer.Option("--tag", "-t", help="Image tag.", show_default=f"{DEFAULT_REPOSITORY}:VARIANT"),
]
BuilderOpt = Annotated[
    str | None,
    typer.Option(
        "--builder",
        help=f"{', '.join(BUILDERS)}.",
        show_default="the first of them that works",
    ),
]
PysparkOpt = Annotated[
    str,
    typer.Option(
        "--pyspark",
        help=f"{'|'.join(PYSPARK_MODES)}: leave the environment's pyspark out "
        "(auto: when the base image sets SPARK_HOME).",
    ),
]
SlimOpt = Annotated[
    bool,
    typer.Option(
        "--slim/--no-slim",
        help="Leave out unused test suites, static libraries and man pages.",
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help="Byte-compile in the image (faster imports, a larger layer).",
    ),
]
ArchiveOpt = Annotated[
    Path | None,
    typer.Option("--archive", help="Build from this bundler pack archive, as it is."),
]
DockerfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--dockerfile",
        help="The Dockerfile to build.",
        show_default="WORKSPACE/docker/Dockerfile, else bundler's own",
    ),
]
PlatformOpt = Annotated[str, typer.Option("--platform", help="Platform of the environment.")]


def image(
    variant: VariantArg,
    base: BaseOpt = None,
    allow_spark_mismatch: AllowSparkMismatchOpt = False,
    tag: TagOpt = None,
    builder: BuilderOpt = None,
    pyspark: PysparkOpt = "auto",
    slim: SlimOpt = True,
    compile_: CompileOpt = True,
    archive: ArchiveOpt = None,
    dockerfile: DockerfileOpt = None,
    platform: PlatformOpt = DEFAULT_PLATFORM,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a Spark image with the variant's environment as one layer."""
    from bundler.deliver.image import ImageOptions, build_image

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
    run(build_image, options, print_image, Output(as_json, quiet, verbose))


def print_image(result: "ImageResult") -> None:
    """The tag and image id, the environment layer's size and what it leaves out."""
    print(f"{result.tag}  {result.image_id[:19]}  built with {result.builder}")
    print(
        f"environment layer: {human_size(result.env_size)} unpacked before byte-compiling, "
        f"{human_size(result.archive_size)} compressed ({result.archive})"
    )
    for group, left in result.left_out.items():
        print(f"  left out {group}: {human_size(left.bytes)}")
