"""bundler.artifact.formats: the one suffix table, asked by pack, verify, image and spark-conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.artifact.formats import (
    FORMATS,
    archive_format,
    format_of,
    is_tar,
    spark_unpack_problem,
    tar_suffixes,
)
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


def test_tar_streams_are_what_an_image_takes() -> None:
    assert [is_tar(n) for n in ("a.tar.gz", "a.tgz", "a.TAR", "a.zip", "a.tar.zst")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert tar_suffixes() == ".tar.gz, .tgz, .tar"


def test_spark_unpacks_tar_gz_and_zip_and_yarn_a_plain_tar() -> None:
    assert spark_unpack_problem("env.tar.gz") is None and spark_unpack_problem("env.zip") is None
    problem = spark_unpack_problem("env.tar")
    assert problem is not None and "drops the exec bit" in problem[0]
    assert problem[1].endswith(".tar suits --master yarn only")
    assert spark_unpack_problem("env.tar", yarn=True) is None
    copied = spark_unpack_problem("env.tar.zst")
    assert copied is not None and "copied as a file" in copied[0]
