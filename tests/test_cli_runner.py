"""``bundler.cli.runner.run``: library call -> ``--json`` or text -> exit code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bundler.cli.options import App, JsonOpt, QuietOpt
from bundler.cli.runner import Output, run
from bundler.errors import BundlerError, UsageError, VerifyError
from bundler.events import Reporter
from bundler.render import ConsoleReporter


@dataclass(frozen=True)
class Done:
    name: str
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok}


@dataclass
class Fake:
    """A library function: records what it was given, returns ``Done`` or raises."""

    error: Exception | None = None
    options: Any = None
    reporter: Reporter | None = None

    def __call__(self, options: str, reporter: Reporter) -> Done:
        self.options, self.reporter = options, reporter
        reporter.warn(f"about {options}")
        if self.error is not None:
            raise self.error
        return Done(options, ok=options != "broken")


def show(result: Done) -> None:
    print(f"made {result.name}")


def test_text_renders_the_result_once(capsys: pytest.CaptureFixture[str]) -> None:
    fake = Fake()
    result = run(fake, "app", show, Output())
    assert result == Done("app") and fake.options == "app"
    out, err = capsys.readouterr()
    assert out == "made app\n"
    assert err == "warning: about app\n"  # the reporter is the command's, not a silent one
    assert isinstance(fake.reporter, ConsoleReporter) and not fake.reporter.quiet


def test_json_prints_to_dict_and_quiets_the_reporter(capsys: pytest.CaptureFixture[str]) -> None:
    fake = Fake()
    run(fake, "app", show, Output(as_json=True))
    out, _ = capsys.readouterr()
    assert json.loads(out) == {"name": "app", "ok": True}
    assert "made" not in out
    assert isinstance(fake.reporter, ConsoleReporter) and fake.reporter.quiet


def test_json_of_a_result_without_to_dict(capsys: pytest.CaptureFixture[str]) -> None:
    run(Fake(), "app", show, Output(as_json=True), to_json=lambda r: [r.name])
    assert json.loads(capsys.readouterr().out) == ["app"]


@pytest.mark.parametrize(("product", "printed"), [(False, ""), (True, "made app\n")])
def test_quiet_leaves_out_a_summary_but_not_a_product(
    capsys: pytest.CaptureFixture[str], product: bool, printed: str
) -> None:
    fake = Fake()
    run(fake, "app", show, Output(quiet=True), product=product)
    assert capsys.readouterr().out == printed
    assert isinstance(fake.reporter, ConsoleReporter) and fake.reporter.verbose is False


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("name a VARIANT or pass --prefix DIR (not both)"), 2),
        (VerifyError("imports failed", "see above"), 1),
    ],
)
def test_a_bundler_error_is_one_line_and_its_exit_code(
    capsys: pytest.CaptureFixture[str], error: BundlerError, code: int
) -> None:
    with pytest.raises(typer.Exit) as exited:
        run(Fake(error=error), "app", show, Output())
    assert exited.value.exit_code == code
    out, err = capsys.readouterr()
    assert out == ""  # nothing rendered
    assert err.splitlines()[-1] == f"error: {error.one_line()}"


def test_the_result_sets_the_exit_code_after_printing(capsys: pytest.CaptureFixture[str]) -> None:
    def failed(result: Done) -> int:
        return 0 if result.ok else 1

    with pytest.raises(typer.Exit) as exited:
        run(Fake(), "broken", show, Output(as_json=True), exit_code=failed)
    assert exited.value.exit_code == 1
    assert json.loads(capsys.readouterr().out) == {"name": "broken", "ok": False}
    assert run(Fake(), "app", show, Output(), exit_code=failed) == Done("app")


def test_through_a_command_line() -> None:
    """What a real command does: typer flags in, stdout, stderr and exit code out."""
    app = App()

    @app.command()
    def make(name: str, as_json: JsonOpt = False, quiet: QuietOpt = False) -> None:
        error = UsageError("no such thing") if name == "nothing" else None
        run(Fake(error=error), name, show, Output(as_json, quiet))

    @app.command()
    def other() -> None:  # two commands, so "make" is a subcommand as in bundler
        pass

    runner = CliRunner()
    made = runner.invoke(app, ["make", "app"])
    assert (made.exit_code, made.stdout) == (0, "made app\n")
    as_json = runner.invoke(app, ["make", "app", "--json"])
    assert json.loads(as_json.stdout) == {"name": "app", "ok": True}
    refused = runner.invoke(app, ["make", "nothing"])
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1] == "error: no such thing"
    assert "Traceback" not in refused.output
