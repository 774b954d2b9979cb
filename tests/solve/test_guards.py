"""The PySpark compatibility guards: each rule trips, and supported combinations pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.errors import GuardError
from bundler.solve.guards import check_versions, guard_error, read_locked_versions

# Combinations PySpark supports, one per release line (taken from the same sources as
# the rules); none of them may trip anything.
SUPPORTED = [
    {
        "pyspark": "3.3.4",
        "python": "3.10.14",
        "pandas": "1.5.3",
        "numpy": "1.26.4",
        "pyarrow": "12.0.1",
    },
    {
        "pyspark": "3.4.4",
        "python": "3.11.9",
        "pandas": "1.5.3",
        "numpy": "1.24.4",
        "pyarrow": "14.0.2",
    },
    {
        "pyspark": "3.5.3",
        "python": "3.11.9",
        "pandas": "2.0.3",
        "numpy": "1.26.4",
        "pyarrow": "15.0.2",
    },
    {
        "pyspark": "4.0.1",
        "python": "3.12.7",
        "pandas": "2.2.3",
        "numpy": "2.1.3",
        "pyarrow": "18.1.0",
    },
    {
        "pyspark": "4.1.0",
        "python": "3.12.7",
        "pandas": "2.2.3",
        "numpy": "2.2.6",
        "pyarrow": "19.0.1",
    },
    {
        "pyspark": "4.2.0",
        "python": "3.13.1",
        "pandas": "2.3.3",
        "numpy": "2.3.4",
        "pyarrow": "21.0.0",
    },
    # The gpu variant's shape: RAPIDS 26.08 needs pandas 3, which Spark supports from 4.3.
    {
        "pyspark": "4.3.0",
        "python": "3.12.11",
        "pandas": "3.0.1",
        "numpy": "2.3.4",
        "pyarrow": "21.0.0",
    },
]


@pytest.mark.parametrize("versions", SUPPORTED, ids=lambda v: f"pyspark-{v['pyspark']}")
def test_supported_combinations_pass(versions: dict[str, str]) -> None:
    assert check_versions(versions) == []


# (rule id, versions that break only that rule, words the message must contain)
TRIPS = [
    (
        "pandas3-needs-pyspark-4.3",
        {
            "pyspark": "4.2.0",
            "python": "3.12.1",
            "pandas": "3.0.1",
            "numpy": "2.3.4",
            "pyarrow": "21.0.0",
        },
        ["pandas 3.0.1", "pyspark 4.2.0", ">=4.3"],
    ),
    (
        "pandas2-needs-pyspark-3.5",
        {
            "pyspark": "3.4.4",
            "python": "3.11.9",
            "pandas": "2.0.3",
            "numpy": "1.26.4",
            "pyarrow": "14.0.2",
        },
        ["pandas 2.0.3", "pyspark 3.4.4", ">=3.5"],
    ),
    (
        "numpy2-needs-pyspark-4.0",
        {
            "pyspark": "3.5.3",
            "python": "3.11.9",
            "pandas": "2.0.3",
            "numpy": "2.0.2",
            "pyarrow": "15.0.2",
        },
        ["numpy 2.0.2", "pyspark 3.5.3", "'numpy <2'"],
    ),
    (
        "min-python",
        {
            "pyspark": "4.3.0",
            "python": "3.10.14",
            "pandas": "2.2.3",
            "numpy": "2.2.6",
            "pyarrow": "21.0.0",
        },
        ["python >=3.11", "python 3.10.14"],
    ),
    (
        "min-pandas",
        {
            "pyspark": "4.1.0",
            "python": "3.12.7",
            "pandas": "2.1.4",
            "numpy": "1.26.4",
            "pyarrow": "19.0.1",
        },
        ["pandas >=2.2.0", "pandas 2.1.4"],
    ),
    (
        "min-pyarrow",
        {
            "pyspark": "4.2.0",
            "python": "3.12.7",
            "pandas": "2.2.3",
            "numpy": "2.2.6",
            "pyarrow": "17.0.0",
        },
        ["pyarrow >=18.0.0", "pyarrow 17.0.0"],
    ),
    (
        "min-numpy",
        {
            "pyspark": "4.3.0",
            "python": "3.11.9",
            "pandas": "2.2.3",
            "numpy": "1.23.1",
            "pyarrow": "18.0.0",
        },
        ["numpy >=1.23.2", "numpy 1.23.1"],
    ),
]


@pytest.mark.parametrize(("rule", "versions", "words"), TRIPS, ids=[t[0] for t in TRIPS])
def test_each_rule_trips_alone(rule: str, versions: dict[str, str], words: list[str]) -> None:
    violations = check_versions(versions)
    assert [v.rule for v in violations] == [rule]
    message = violations[0].message
    assert "\n" not in message
    for word in words:
        assert word in message
    assert violations[0].source


def test_pandas_3_with_old_spark_does_not_also_report_a_minimum() -> None:
    # pandas 3 is above every minimum: the one actionable problem is the pyspark line.
    rules = [v.rule for v in check_versions({"pyspark": "4.0.1", "pandas": "3.0.0"})]
    assert rules == ["pandas3-needs-pyspark-4.3"]


def test_several_rules_at_once() -> None:
    rules = {
        v.rule
        for v in check_versions(
            {"pyspark": "3.5.1", "python": "3.7.1", "numpy": "2.0.1", "pyarrow": "3.0"}
        )
    }
    assert rules == {"numpy2-needs-pyspark-4.0", "min-python", "min-pyarrow"}


def test_lines_newer_than_the_table_inherit_the_newest_minimums() -> None:
    rules = [v.rule for v in check_versions({"pyspark": "4.4.0", "python": "3.10.1"})]
    assert rules == ["min-python"]


def test_without_pyspark_nothing_is_checked() -> None:
    # An executor-only archive: Spark brings its own pyspark.
    assert check_versions({"pandas": "3.0.1", "numpy": "2.3.0", "python": "3.7.0"}) == []


def test_conda_style_versions_and_prereleases_are_read() -> None:
    assert [v.rule for v in check_versions({"pyspark": "4.2.0", "pandas": "3.0.0rc1"})] == [
        "pandas3-needs-pyspark-4.3"
    ]
    assert check_versions({"pyspark": "4.3.0.dev0", "python": "3.11.7"}) == []
    rules = [v.rule for v in check_versions({"pyspark": "4.1.1", "pyarrow": "14.0.2.post1"})]
    assert rules == ["min-pyarrow"]


def test_names_are_normalised() -> None:
    assert [v.rule for v in check_versions({"PySpark": "3.4.1", "Pandas": "2.1.0"})] == [
        "pandas2-needs-pyspark-3.5"
    ]


def test_unparsable_pyspark_version_is_reported() -> None:
    violations = check_versions({"pyspark": "unknown", "pandas": "3.0.0"})
    assert [v.rule for v in violations] == ["unparsable-version"]


def test_guard_error_is_one_line_with_a_hint() -> None:
    violations = check_versions({"pyspark": "4.2.0", "pandas": "3.0.1", "pyarrow": "17.0.0"})
    error = guard_error(violations)
    assert isinstance(error, GuardError)
    line = error.one_line()
    assert "\n" not in line
    assert "pandas 3.0.1" in line and "pyarrow 17.0.0" in line
    assert "--allow-unsupported" in line


def test_versions_read_from_a_conda_lock_v1_file(tmp_path: Path) -> None:
    lock = tmp_path / "base.conda-lock.yml"
    lock.write_text(
        """\
version: 1
metadata:
  platforms: [linux-64, osx-arm64]
package:
- {name: python, version: 3.12.7, manager: conda, platform: linux-64}
- {name: pandas, version: 3.0.1, manager: conda, platform: linux-64}
- {name: pandas, version: 2.9.9, manager: pip, platform: linux-64}
- {name: pyspark, version: 4.2.0, manager: pip, platform: linux-64}
- {name: zlib, version: 1.3.1, manager: conda, platform: linux-64}
- {name: python, version: 3.11.9, manager: conda, platform: osx-arm64}
"""
    )
    assert read_locked_versions(lock, "linux-64") == {
        "python": "3.12.7",
        "pandas": "3.0.1",
        "pyspark": "4.2.0",
    }
    assert read_locked_versions(lock, "osx-arm64") == {"python": "3.11.9"}
    assert read_locked_versions(lock) == read_locked_versions(lock, "linux-64")
    rules = [v.rule for v in check_versions(read_locked_versions(lock, "linux-64"))]
    assert rules == ["pandas3-needs-pyspark-4.3"]
