"""What every command shares: the common options, the reporter, and errors -> exit codes.

``reporting`` is the one place a ``BundlerError`` becomes ``error: <one line>`` on
stderr and the error's exit code (an ``OSError`` the user can fix, such as a full
disk, first becomes a ``FileSystemError``); an interrupt becomes exit 130.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from bundler.errors import BundlerError, SubprocessError, os_error
from bundler.render import ConsoleReporter

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace directory (default: current).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON result on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show the commands run.")]


class _FlagOption(TyperOption):
    """A flag takes no value, so its help row names no type (typer 0.29 prints ``<bool>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _untyped_flags(params: list[Any]) -> list[Any]:
    # The same objects, so parsing is unchanged; only their help row differs.
    # (typer 0.29 vendors click: its Context and Parameter types are private, hence Any.)
    for param in params:
        if type(param) is TyperOption and param.is_flag:
            param.__class__ = _FlagOption
    return params


class Command(TyperCommand):
    """Every bundler command: typer's, with flags shown without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class Group(TyperGroup):
    """The ``bundler`` group: typer's, with flags shown without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class App(typer.Typer):
    """``typer.Typer`` whose group and commands are ``Group`` and ``Command``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


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
    except OSError as exc:  # a full disk, a read-only target...: the user's to fix
        mapped = os_error(exc)
        if mapped is None:
            raise
        _fail(mapped)
    except KeyboardInterrupt:
        print("interrupted; nothing was written under a final name", file=sys.stderr)
        raise typer.Exit(130) from None


def open_workspace(path: Path) -> Any:
    from bundler.variants import load_workspace

    return load_workspace(path)
