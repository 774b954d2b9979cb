"""Show core events to a person: rich progress on a terminal, plain lines otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class ConsoleReporter:
    """Reporter for the CLI.

    On a terminal each step gets a spinner or a bar; elsewhere steps are plain lines on
    stderr.  ``quiet`` keeps only warnings.  Commands (``$ ...`` steps) are shown only
    with ``verbose``.
    """

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.verbose = verbose
        self.interactive = self.console.is_terminal and not quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._task_name = ""

    def __enter__(self) -> ConsoleReporter:
        if self.interactive:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def step(self, message: str) -> None:
        if message.startswith("$ ") and not self.verbose:
            return
        if self.quiet:
            return
        if self._progress is not None:
            if self._task is not None:
                self._progress.update(self._task, visible=False)
            self._progress.console.print(f"[bold]•[/bold] {message}", highlight=False)
            self._task = self._progress.add_task(message, total=None)
            self._task_name = message
        else:
            print(f"• {message}", file=sys.stderr, flush=True)

    def progress(self, task: str, completed: float, total: float | None) -> None:
        if self._progress is None:
            return
        if self._task is None or task != self._task_name:
            if self._task is not None:
                self._progress.update(self._task, visible=False)
            self._task = self._progress.add_task(task, total=total)
            self._task_name = task
        self._progress.update(self._task, completed=completed, total=total)

    def warn(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def changes_markdown(results: list[Any]) -> str:
    """A Markdown report of what a re-lock changed (for a pull request body)."""
    rows = [
        f"| {r.variant.name} | {c.platform} | {c.name} ({c.manager}) | {c.old or '—'} "
        f"| {c.new or '—'} |"
        for r in results
        for c in r.changes
    ]
    if not rows:
        return "No locked version changed.\n"
    head = ["| variant | platform | package | old | new |", "|---|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"
