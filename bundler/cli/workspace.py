"""``bundler variants`` and ``bundler lock`` over ``bundler.variants`` and ``bundler.solve``.

Listed in ``bundler.cli.COMMANDS``.  No ``from __future__ import annotations`` here:
typer reads the commands' annotations.
"""

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bundler.cli.options import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt, open_workspace
from bundler.cli.runner import Output, as_is, run, to_dicts

if TYPE_CHECKING:
    from bundler.events import Reporter
    from bundler.solve.lock import LockOptions, LockResult, LockState
    from bundler.variants import Variant


def variants(workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List the variants, their files, platforms and lock state."""
    answer = Output(as_json, quiet=True)
    run(variant_rows, workspace, print_variants, answer, product=True, to_json=as_is)


def variant_rows(workspace: Path, reporter: "Reporter") -> list[dict[str, Any]]:
    """One row per variant: its files, platforms, CUDA version, lock and lock state."""
    from bundler.solve.lock import lock_state

    ws = open_workspace(workspace)
    return [
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


def print_variants(rows: list[dict[str, Any]]) -> None:
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


# The command's arguments and options, one type each; its signature names them.
NamesArg = Annotated[list[str] | None, typer.Argument(metavar="[VARIANT]...")]
CheckOpt = Annotated[
    bool,
    typer.Option("--check", help="Write nothing; exit 1 if a lock is stale or missing."),
]
AllowUnsupportedOpt = Annotated[
    bool,
    typer.Option("--allow-unsupported", help="Lock even when a PySpark compatibility guard trips."),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a Markdown table of the versions that changed (a PR body).",
    ),
]


def lock(
    names: NamesArg = None,
    check: CheckOpt = False,
    allow_unsupported: AllowUnsupportedOpt = False,
    report: ReportOpt = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Solve each variant and write locks/<variant>.conda-lock.yml."""
    from bundler.solve.lock import LockOptions

    answer = Output(as_json, quiet, verbose)
    if check:
        states = partial(lock_states, names or [])
        run(states, workspace, print_lock_states, answer, product=True, exit_code=LockStates.failed)
        return
    options = LockOptions(variants=tuple(names or ()), allow_unsupported=allow_unsupported)
    call = partial(lock_and_report, workspace, report)
    run(call, options, print_locks, answer, to_json=to_dicts)


def lock_and_report(
    workspace: Path, report: Path | None, options: "LockOptions", reporter: "Reporter"
) -> "list[LockResult]":
    """Lock the variants; with ``--report``, a Markdown table of what changed too."""
    from bundler.solve.lock import lock_variants

    results = lock_variants(open_workspace(workspace), options, reporter)
    if report is not None:
        from bundler.atomic import atomic_write
        from bundler.render import changes_markdown

        with atomic_write(report) as tmp:
            tmp.write_text(changes_markdown(results))
    return results


def print_locks(results: "list[LockResult]") -> None:
    """Each lock written, and what changed in it per platform."""
    for r in results:
        print(f"{r.path}: {r.summary()}")
        for change in r.changes:
            print(f"  {change.platform}: {change.describe()}")


@dataclass(frozen=True)
class LockStates:
    """``bundler lock --check``: each variant's lock state."""

    root: Path
    states: "list[tuple[Variant, LockState]]"

    def to_dict(self) -> dict[str, str]:
        return {v.name: s.value for v, s in self.states}

    def not_fresh(self) -> "list[tuple[Variant, LockState]]":
        return [(v, s) for v, s in self.states if s.value != "fresh"]

    def failed(self) -> int:
        """Exit code 1 when a lock is not fresh."""
        return 1 if self.not_fresh() else 0


def lock_states(names: list[str], workspace: Path, reporter: "Reporter") -> LockStates:
    from bundler.solve.lock import check_locks

    ws = open_workspace(workspace)
    return LockStates(ws.root, check_locks(ws, names))


def print_lock_states(result: LockStates) -> None:
    """Each lock's state; for each one not fresh, an error line saying what to run."""
    for v, s in result.states:
        print(f"{v.name}: {s.value}")
    for v, s in result.not_fresh():
        print(
            f"error: {v.lock_path.relative_to(result.root)} is {s.value}; "
            f"run 'bundler lock {v.name}'",
            file=sys.stderr,
        )
