"""Command line: parse, build a frozen options object, call one library function."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bundler import __version__
from bundler.errors import BundlerError, SubprocessError
from bundler.render import ConsoleReporter, human_size, print_json

app = typer.Typer(
    name="bundler",
    help="Lock, build and pack conda environments that Spark executors run from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace directory (default: current).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON result on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show the commands run.")]


def _fail(exc: BundlerError) -> None:
    print(f"error: {exc.one_line()}", file=sys.stderr)
    if isinstance(exc, SubprocessError) and exc.output:
        print(exc.output, file=sys.stderr)
    raise typer.Exit(exc.exit_code)


@contextmanager
def reporting(quiet: bool, as_json: bool, verbose: bool = False) -> Iterator[ConsoleReporter]:
    """A reporter for one command; BundlerErrors become one line and an exit code."""
    reporter = ConsoleReporter(quiet=quiet or as_json, verbose=verbose)
    try:
        with reporter:
            yield reporter
    except BundlerError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        print("interrupted; nothing was written under a final name", file=sys.stderr)
        raise typer.Exit(130) from None


def open_workspace(path: Path) -> Any:
    from bundler.variants import load_workspace

    return load_workspace(path)


def _version_callback(value: bool) -> None:
    if value:
        print(f"bundler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Lock, build and pack conda environments that Spark executors run from."""


@app.command()
def variants(workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List the variants, their files, platforms and lock state."""
    from bundler.solve.lock import lock_state

    with reporting(True, as_json):
        ws = open_workspace(workspace)
        rows = [
            {
                "name": v.name,
                "files": v.relative_files(),
                "platforms": list(v.platforms),
                "cuda": v.cuda,
                "lock": str(v.lock_path.relative_to(ws.root)),
                "state": lock_state(v).value,
            }
            for v in ws.variants.values()
        ]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("variant", "files", "platforms", "cuda", "lock")
    colors = {"fresh": "green", "stale": "yellow", "missing": "red"}
    for r in rows:
        state = r["state"]
        table.add_row(
            r["name"],
            ", ".join(r["files"]),
            ", ".join(r["platforms"]),
            r["cuda"] or "",
            f"[{colors[state]}]{state}[/]",
        )
    Console().print(table)


@app.command()
def lock(
    names: Annotated[list[str] | None, typer.Argument(metavar="[VARIANT]...")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a lock is stale or missing.")
    ] = False,
    allow_unsupported: Annotated[
        bool,
        typer.Option(
            "--allow-unsupported", help="Lock even when a PySpark compatibility guard trips."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a Markdown table of the versions that changed (a PR body).",
        ),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Solve each variant and write locks/<variant>.conda-lock.yml."""
    from bundler.solve.lock import LockOptions, check_locks, lock_variants

    with reporting(quiet, as_json, verbose) as reporter:
        ws = open_workspace(workspace)
        if check:
            states = check_locks(ws, names or [])
            bad = [(v, s) for v, s in states if s.value != "fresh"]
            if as_json:
                print_json({v.name: s.value for v, s in states})
            else:
                for v, s in states:
                    print(f"{v.name}: {s.value}")
                for v, s in bad:
                    print(
                        f"error: {v.lock_path.relative_to(ws.root)} is {s.value}; "
                        f"run 'bundler lock {v.name}'",
                        file=sys.stderr,
                    )
            if bad:
                raise typer.Exit(1)
            return
        options = LockOptions(variants=tuple(names or ()), allow_unsupported=allow_unsupported)
        results = lock_variants(ws, options, reporter)
        if report is not None:
            from bundler.atomic import atomic_write
            from bundler.render import changes_markdown

            with atomic_write(report) as tmp:
                tmp.write_text(changes_markdown(results))
    if as_json:
        print_json([r.to_dict() for r in results])
    elif not quiet:
        for r in results:
            print(f"{r.path}: {r.summary()}")
            for change in r.changes:
                print(f"  {change.platform}: {change.describe()}")


@app.command()
def pack(
    variant: Annotated[str | None, typer.Argument(help="Variant to pack.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Archive path; .tar.gz, .tgz or .zip."),
    ] = None,
    platform: Annotated[str | None, typer.Option("--platform", help="Target platform.")] = None,
    prefix: Annotated[
        Path | None, typer.Option("--prefix", help="Pack this existing conda environment.")
    ] = None,
    level: Annotated[
        int | None,
        typer.Option(
            "--level", help="Compression level 0-9 (tar.gz: 0-3 ISA-L, 4-9 zlib; zip: deflate)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Compression threads (default: all cores).")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Keep everything (a driver environment, local_session); the default "
            "executor archive leaves out pyspark, py4j, unused tests, static libs, docs.",
        ),
    ] = False,
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

    if (variant is None) == (prefix is None):
        print("error: name a VARIANT or pass --prefix DIR (not both)", file=sys.stderr)
        raise typer.Exit(2)
    if prefix is not None and output is None:
        print("error: --prefix needs -o PATH", file=sys.stderr)
        raise typer.Exit(2)
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
    with reporting(quiet, as_json, verbose) as reporter:
        result = pack_archive(options, reporter)
    if as_json:
        print_json(result.to_dict())
        return
    if quiet:
        return
    print(f"{result.path}  {human_size(result.size)}  sha256:{result.sha256}")
    print(f"manifest: {result.manifest_path}")
    print(pack_summary(result.kind, result.left_out, result.manifest.installed_size))
    largest = result.manifest.largest(5)
    if largest:
        print("largest packages:")
        for p in largest:
            print(f"  {p.name:<28} {p.version:<16} {p.manager:<5} {human_size(p.size)}")


def pack_summary(kind: str, left_out: dict[str, dict[str, int]], installed: int | None) -> str:
    """One line: the archive's kind and what leaving groups out saved."""
    saved = sum(g["bytes"] for g in left_out.values())
    groups = ", ".join(
        f"{name} {human_size(g['bytes'])}" for name, g in left_out.items() if g["bytes"]
    )
    of = f" of {human_size(installed)} installed" if installed else ""
    hint = " (--full keeps them)" if kind == "executor" else ""
    if not saved:
        return f"{kind} archive: nothing left out"
    return f"{kind} archive: saved {human_size(saved)}{of} by leaving out {groups}{hint}"


@app.command()
def verify(
    archive: Annotated[Path, typer.Argument(help="Archive made by bundler pack.")],
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="Module to import (default: the manifest's)."),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Unpack ARCHIVE elsewhere and prove it works: imports, relocation, linkage."""
    from bundler.check.verify import verify_archive

    with reporting(quiet, as_json) as reporter:
        report = verify_archive(archive, imports=imports, reporter=reporter)
    if as_json:
        print_json(report.to_dict())
    else:
        print(report.render())
    if not report.ok:
        raise typer.Exit(1)


# Commands that live beside their library module register themselves here.
_COMMAND_MODULES = ("bundler.cli.spark", "bundler.cli.image", "bundler.cli.pyfiles")


def build_app() -> typer.Typer:
    import importlib

    for module in _COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


def main() -> None:
    try:
        build_app()()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    if "rattler" in sys.modules:
        # rattler's runtime threads can abort interpreter finalisation (seen after a
        # failed solve, about one run in seven). All output is written and flushed and
        # every file was renamed into place already, so leave without finalising.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
