"""``bundler pack`` over ``bundler.pipeline`` (listed in ``bundler.cli.COMMANDS``).

No ``from __future__ import annotations`` here: typer reads the command's annotations.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt
from bundler.cli.runner import Output, run
from bundler.render import human_size

if TYPE_CHECKING:
    from bundler.artifact.manifest import Content, LeftOut
    from bundler.artifact.pack import PackResult


# The command's arguments and options, one type each; its signature names them.
VariantArg = Annotated[str | None, typer.Argument(help="Variant to pack.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Archive path; .tar.gz, .tgz, .zip or .tar (YARN only)."),
]
PlatformOpt = Annotated[str | None, typer.Option("--platform", help="Target platform.")]
PrefixOpt = Annotated[
    Path | None, typer.Option("--prefix", help="Pack this existing conda environment.")
]
LevelOpt = Annotated[
    int | None,
    typer.Option("--level", help="Compression level 0-9 (tar.gz, zip: 0-3 ISA-L, 4-9 zlib)."),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="Compression threads (default: all cores).")
]
FullOpt = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Keep everything (a driver environment, local_session); the default "
        "executor archive leaves out pyspark, py4j, unused tests, static libs, docs.",
    ),
]


def pack(
    variant: VariantArg = None,
    output: OutputOpt = None,
    platform: PlatformOpt = None,
    prefix: PrefixOpt = None,
    level: LevelOpt = None,
    threads: ThreadsOpt = None,
    full: FullOpt = False,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build the variant's prefix from its lock and pack it into a relocatable archive.

    By default an executor archive: without what Spark's executors never import
    (pyspark and py4j come from Spark itself). --full keeps everything.
    """
    from bundler.pipeline import PackOptions, pack_archive

    options = PackOptions(
        workspace=workspace,
        variant=variant,
        output=output,
        platform=platform,
        prefix=prefix,
        level=level,
        threads=threads,
        full=full,
    )
    run(pack_archive, options, print_pack, Output(as_json, quiet, verbose))


def print_pack(result: "PackResult") -> None:
    """The archive, its manifest and SBOM, what was left out and the largest packages."""
    print(f"{result.path}  {human_size(result.size)}  sha256:{result.sha256}")
    print(f"manifest: {result.manifest_path}")
    if result.sbom_path is not None:
        print(f"sbom: {result.sbom_path} ({result.components} components, CycloneDX 1.6)")
    print(pack_summary(result.content, result.left_out, result.manifest.installed_size))
    record = result.manifest.archive
    if record.linked_files:
        print(
            f"stored once: {record.linked_files} files identical to another "
            f"({human_size(record.linked_bytes)}), as hard links"
        )
    largest = result.manifest.largest(5)
    if largest:
        print("largest packages:")
        for p in largest:
            print(f"  {p.name:<28} {p.version:<16} {p.manager:<5} {human_size(p.size)}")


def pack_summary(
    content: "Content", left_out: Mapping[str, "LeftOut"], installed: int | None
) -> str:
    """One line: what the archive holds and the bytes leaving groups out saved."""
    total = sum(g.bytes for g in left_out.values())
    groups = ", ".join(f"{name} {human_size(g.bytes)}" for name, g in left_out.items() if g.bytes)
    of = f" of {human_size(installed)} installed" if installed else ""
    hint = " (--full keeps them)" if content == "executor" else ""
    if not total:
        return f"{content} archive: nothing left out"
    return f"{content} archive: saved {human_size(total)}{of} by leaving out {groups}{hint}"
