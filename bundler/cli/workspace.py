"""CLI commands for the workspace and its locks (bundler.variants, bundler.solve).

No ``from __future__ import annotations`` here: typer reads the annotations of the
commands defined inside ``register``, which refer to names imported there.
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bundler.cli.options import (
    JsonOpt,
    QuietOpt,
    VerboseOpt,
    WorkspaceOpt,
    open_workspace,
    reporting,
)
from bundler.render import print_json

if TYPE_CHECKING:
    from bundler.solve.lock import LockState
    from bundler.variants import Variant, Workspace


def register(app: typer.Typer) -> None:
    """Add this module's commands to the bundler app."""

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
        else:
            _print_variants(rows)

    @app.command()
    def lock(
        names: Annotated[list[str] | None, typer.Argument(metavar="[VARIANT]...")] = None,
        check: Annotated[
            bool,
            typer.Option("--check", help="Write nothing; exit 1 if a lock is stale or missing."),
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
                _report_lock_states(ws, check_locks(ws, names or []), as_json)
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


def _print_variants(rows: list[dict[str, Any]]) -> None:
    """``bundler variants`` as a table."""
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


def _report_lock_states(
    ws: "Workspace", states: "list[tuple[Variant, LockState]]", as_json: bool
) -> None:
    """``bundler lock --check``: each lock's state; exit 1 when one is not fresh."""
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
