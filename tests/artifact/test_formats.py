"""bundler.artifact.formats: the one suffix table, asked by pack, verify, image and spark-conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.artifact.formats import (
    archive_format,
    archive_kind,
    format_of,
    is_tar,
    spark_unpack_problem,
    tar_suffixes,
)
from bundler.errors import PackError, VerifyError


def test_the_suffix_names_the_format_in_any_case() -> None:
    assert [archive_format(Path(n)) for n in ("a.tar.gz", "a.TGZ", "a.zip", "a.tar")] == [
        "tar.gz",
        "tar.gz",
        "zip",
        "tar",
    ]
    assert archive_kind(Path("env.Tar.Gz")) == "tar.gz"
    assert format_of("env.tar.zst") is None
    with pytest.raises(PackError, match=r"unsupported archive suffix"):
        archive_format(Path("env.tar.zst"))
    with pytest.raises(VerifyError, match=r"env\.7z: unsupported archive suffix") as caught:
        archive_kind(Path("env.7z"))
    assert caught.value.hint == "bundler reads .tar.gz, .tgz, .zip, .tar"


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
