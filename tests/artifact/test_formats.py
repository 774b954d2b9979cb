"""The one table of archive formats: ``archive_format`` says a path's format."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.artifact.formats import FORMATS, archive_format, format_of
from bundler.errors import PackError, VerifyError


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.tar.gz", "tar.gz"), ("A.TGZ", "tar.gz"), ("a.zip", "zip"), ("a.tar", "tar")],
)
def test_the_format_of_a_path_is_its_suffix_row(name: str, fmt: str) -> None:
    assert archive_format(Path(name)) == fmt
    assert archive_format(Path(name), writing=True) == fmt
    row = format_of(name)
    assert row is not None and row.name == fmt


def test_an_unknown_suffix_is_a_pack_error_when_writing_else_a_verify_error() -> None:
    with pytest.raises(PackError, match=r"a\.tar\.zst: unsupported archive suffix") as packing:
        archive_format(Path("a.tar.zst"), writing=True)
    assert "Spark unpacks only those" in packing.value.hint
    with pytest.raises(VerifyError, match=r"a\.tar\.zst: unsupported archive suffix") as reading:
        archive_format(Path("a.tar.zst"))
    assert all(f.suffix in reading.value.hint for f in FORMATS)
    assert format_of("a.tar.zst") is None
