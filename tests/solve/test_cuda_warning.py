"""lock warns when a variant's locked content is CUDA but it sets no ``cuda =``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bundler.events import RecordingReporter
from bundler.solve.lock import cuda_warnings
from bundler.solve.lockfile import LockedPackage


def _pkg(name: str, version: str, manager: str) -> LockedPackage:
    return LockedPackage(name, version, manager, "linux-64", f"https://x/{name}", "0" * 64)


def _variant(cuda: str | None) -> Any:
    return SimpleNamespace(name="rapids", cuda=cuda)


PIP_RAPIDS = [_pkg("python", "3.11.7", "conda"), _pkg("cudf-cu12", "26.10.2", "pip")]


def test_cuda_content_without_cuda_set_warns_once_in_one_line() -> None:
    reporter = RecordingReporter()
    warnings = cuda_warnings(_variant(None), PIP_RAPIDS, reporter)
    assert warnings == reporter.warnings
    assert warnings == [
        "variant 'rapids' holds CUDA (cudf-cu12) but sets no cuda: add cuda = \"12.0\" to "
        "[variants.rapids] in variants.toml so the solver checks the driver it needs"
    ]
    conda = [_pkg("cuda-version", "12.9", "conda")]
    assert "(cuda-version 12.9)" in cuda_warnings(_variant(None), conda, reporter)[0]
    assert 'cuda = "12.9"' in reporter.warnings[-1]


def test_no_warning_with_cuda_set_or_without_cuda_content() -> None:
    reporter = RecordingReporter()
    assert cuda_warnings(_variant("12.9"), PIP_RAPIDS, reporter) == []
    assert cuda_warnings(_variant(None), PIP_RAPIDS[:1], reporter) == []
    assert reporter.warnings == []
