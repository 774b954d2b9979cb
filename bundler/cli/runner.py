"""The one way a command runs: options -> library call -> ``--json`` or text -> exit code.

A command parses its arguments, builds the library's frozen options object and hands
it to ``run`` with the library function and the command's face, a short function that
prints the result as plain text.  ``run`` calls the library inside ``reporting()``, so
a ``BundlerError`` becomes ``error: <one line>`` and its exit code; then prints the
result's ``to_dict()`` as JSON (``--json``) or renders it, and exits with the code the
result asks for (verify's failed checks, ``lock --check``'s stale locks).

Either/or option checks are not made here: the library's planning step makes them
once, for the CLI and for Python callers alike.
"""

from __future__ import annotations  # no typer command here: nothing reads annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from bundler.cli.options import reporting
from bundler.events import Reporter
from bundler.render import print_json

Opts = TypeVar("Opts")
R = TypeVar("R")


@dataclass(frozen=True)
class Output:
    """How a command answers: the ``--json``, ``--quiet`` and ``--verbose`` flags."""

    as_json: bool = False
    quiet: bool = False  # the reporter shows only warnings; a summary is not printed
    verbose: bool = False  # the reporter shows the commands run


def to_dict(result: Any) -> Any:
    """The JSON of a library result (every one has ``to_dict``)."""
    return result.to_dict()


def to_dicts(results: Any) -> list[Any]:
    """The JSON of a list of library results."""
    return [result.to_dict() for result in results]


def as_is(result: Any) -> Any:
    """The JSON of a result that is JSON data already."""
    return result


def succeeded(result: Any) -> int:
    """The exit code of a result that is only returned on success."""
    return 0


def run(
    call: Callable[[Opts, Reporter], R],
    options: Opts,
    render: Callable[[R], None],
    output: Output,
    *,
    product: bool = False,
    to_json: Callable[[R], Any] = to_dict,
    exit_code: Callable[[R], int] = succeeded,
) -> R:
    """Run one command: ``call(options, reporter)``, then its JSON or ``render``.

    ``render`` prints a summary that ``--quiet`` leaves out, unless ``product``: the
    text is what the command is for (spark-conf's arguments, verify's report) and
    is printed whatever the reporter shows.
    """
    with reporting(output.quiet, output.as_json, output.verbose) as reporter:
        result = call(options, reporter)
    if output.as_json:
        print_json(to_json(result))
    elif product or not output.quiet:
        render(result)
    code = exit_code(result)
    if code:
        raise typer.Exit(code)
    return result
