"""Command line: parse, build a frozen options object, call one library function.

One module per command group, each with a ``register(app)``: ``workspace`` (variants,
lock), ``pack``, ``verify``, ``sbom``, ``spark`` (spark-conf), ``image``, ``pyfiles``,
``publish``; the options they share and the mapping of errors to exit codes live in ``options``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from bundler import __version__
from bundler.cli.options import App

app = App(
    name="bundler",
    help="Lock, build and pack conda environments that Spark executors run from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: In the order ``bundler --help`` lists their commands.
COMMAND_MODULES = (
    "bundler.cli.workspace",
    "bundler.cli.pack",
    "bundler.cli.verify",
    "bundler.cli.sbom",
    "bundler.cli.spark",
    "bundler.cli.image",
    "bundler.cli.pyfiles",
    "bundler.cli.publish",
)


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


_registered: list[str] = []


def build_app() -> typer.Typer:
    """The app with every command registered (once)."""
    for module in COMMAND_MODULES:
        if module not in _registered:
            importlib.import_module(module).register(app)
            _registered.append(module)
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
