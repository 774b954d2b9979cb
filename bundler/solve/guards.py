"""Combinations of PySpark and its Python dependencies that PySpark supports.

``check_versions`` takes the locked versions of the packages PySpark cares about
(``pyspark``, ``pandas``, ``pyarrow``, ``numpy``, ``python``; lower-case names)
and returns one ``GuardViolation`` per broken rule.  ``bundler lock`` refuses a
lock with violations unless ``--allow-unsupported``; ``bundler verify`` reports
them.  A package that is absent is not checked: an executor-only archive may
leave pyspark out, because Spark puts its own pyspark on the workers' path.

Every rule cites where it comes from.  The minimum versions are the ones PySpark
itself declares per release line: its "Installation - Dependencies" page, the
"Upgrading PySpark" migration guide (python/docs/source/migration_guide/
pyspark_upgrade.rst) and, for 4.3, the wheel's own metadata.  Rules that would
rest on anecdotes rather than on a release note, a JIRA or PySpark's metadata
are deliberately left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import GuardError

#: The packages whose versions the rules read.
CHECKED_PACKAGES = ("pyspark", "pandas", "pyarrow", "numpy", "python")


@dataclass(frozen=True)
class GuardViolation:
    """One broken rule: ``rule`` is a stable id, ``message`` one line saying what to do."""

    rule: str
    message: str
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "source": self.source}


@dataclass(frozen=True)
class _Minimums:
    """What one PySpark release line (``since`` and later, up to the next row) needs."""

    since: tuple[int, int]
    python: str
    pandas: str
    pyarrow: str
    numpy: str
    source: str


# One row per PySpark line; a line newer than the last row inherits the last row.
# fmt: off
_MINIMUMS: tuple[_Minimums, ...] = (
    # Spark 3.3 install page (docs/3.3.0/api/python/getting_started/install.html):
    # "Python 3.7 and above"; pandas >=1.0.5, PyArrow >=1.0.0, NumPy >=1.15.
    # pyspark_upgrade.rst "Upgrading from PySpark 3.2 to 3.3": pandas minimum 1.0.5.
    _Minimums((3, 3), python="3.7", pandas="1.0.5", pyarrow="1.0.0", numpy="1.15",
              source="PySpark 3.3 docs, Installation - Dependencies"),
    # Spark 3.4 install page: same table as 3.3 (Python 3.7 deprecated by SPARK-39861,
    # still supported); the conda packages of pyspark 3.4.1 declare the same bounds.
    _Minimums((3, 4), python="3.7", pandas="1.0.5", pyarrow="1.0.0", numpy="1.15",
              source="PySpark 3.4 docs, Installation - Dependencies"),
    # Spark 3.5: Python 3.7 removed (SPARK-43347, apache/spark#41023); the 3.5 install
    # page lists PyArrow >=4.0.0, and the 4.0 migration guide confirms "raised from
    # 4.0.0 to 11.0.0"; pandas 1.0.5 and NumPy 1.15 unchanged.
    _Minimums((3, 5), python="3.8", pandas="1.0.5", pyarrow="4.0.0", numpy="1.15",
              source="PySpark 3.5 docs, Installation - Dependencies; SPARK-43347"),
    # pyspark_upgrade.rst "Upgrading from PySpark 3.5 to 4.0": Python 3.8 dropped
    # (SPARK-47993), pandas 1.0.5 -> 2.0.0 (SPARK-47948), NumPy 1.15 -> 1.21,
    # PyArrow 4.0.0 -> 11.0.0.
    _Minimums((4, 0), python="3.9", pandas="2.0.0", pyarrow="11.0.0", numpy="1.21",
              source="PySpark migration guide, Upgrading from PySpark 3.5 to 4.0"),
    # pyspark_upgrade.rst "Upgrading from PySpark 4.0 to 4.1": Python 3.9 dropped,
    # PyArrow 11.0.0 -> 15.0.0, pandas 2.0.0 -> 2.2.0.
    _Minimums((4, 1), python="3.10", pandas="2.2.0", pyarrow="15.0.0", numpy="1.21",
              source="PySpark migration guide, Upgrading from PySpark 4.0 to 4.1"),
    # pyspark_upgrade.rst "Upgrading from PySpark 4.1 to 4.2": PyArrow 15.0.0 -> 18.0.0.
    _Minimums((4, 2), python="3.10", pandas="2.2.0", pyarrow="18.0.0", numpy="1.21",
              source="PySpark migration guide, Upgrading from PySpark 4.1 to 4.2"),
    # pyspark 4.3.0 wheel METADATA: Requires-Python >=3.11 (SPARK-56889 dropped 3.10),
    # extra "sql": pandas>=2.2.0, pyarrow>=18.0.0, numpy>=1.23.2 (SPARK-56928).
    _Minimums((4, 3), python="3.11", pandas="2.2.0", pyarrow="18.0.0", numpy="1.23.2",
              source="pyspark 4.3.0 package metadata; SPARK-56889; SPARK-56928"),
)
# fmt: on

# Major versions of a dependency that a PySpark line must reach before it supports them.
_MAJOR_RULES: tuple[tuple[str, int, tuple[int, int], str, str], ...] = (
    # (package, major, needs pyspark >=, rule id, source)
    #
    # pandas 3: "Apache Spark 4.2.0 doesn't support it. Apache Spark 4.3.0 will support
    # Pandas 3 via SPARK-55139 officially" (SPARK-57974, apache/spark#57051, which caps
    # pandas <3.0.0 in the 4.2 install guide).  DESIGN.md: RAPIDS 26.08 needs pandas 3.
    ("pandas", 3, (4, 3), "pandas3-needs-pyspark-4.3", "SPARK-55139; SPARK-57974"),
    # pandas 2: Spark 3.4 follows pandas 1.5 ("we don't currently support pandas 2.0.0
    # properly", SPARK-43158 / apache/spark#40814 and SPARK-43547 on branch-3.4);
    # Spark 3.5 is built and tested against pandas 2.0 (SPARK-44267), and 4.0 requires
    # it (SPARK-47948).
    ("pandas", 2, (3, 5), "pandas2-needs-pyspark-3.5", "SPARK-43158; SPARK-43547; SPARK-44267"),
    # NumPy 2: "NumPy 2 will only be supported starting with PySpark 4.0.0"; branch-3.5
    # limits numpy to >=1.15,<2 (SPARK-48710, apache/spark#47083 and #47175); conda-forge
    # patched its pyspark <4 records to numpy <2 (conda-forge-repodata-patches#888).
    ("numpy", 2, (4, 0), "numpy2-needs-pyspark-4.0", "SPARK-48710"),
)

_FIELDS = ("python", "pandas", "pyarrow", "numpy")


def _release(text: str) -> tuple[int, ...] | None:
    """The numeric release of a PEP 440 or conda version ("2.2.3", "3.11.7", "1.26.4.post1")."""
    try:
        return Version(text).release
    except InvalidVersion:
        match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", text)
        if not match:
            return None
        return tuple(int(p) for p in match.group(1).split("."))


def _ge(have: tuple[int, ...], need: tuple[int, ...]) -> bool:
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def _line_of(release: tuple[int, ...]) -> tuple[int, int]:
    return (release[0], release[1] if len(release) > 1 else 0)


def _minimums_for(line: tuple[int, int]) -> _Minimums | None:
    row = None
    for candidate in _MINIMUMS:
        if candidate.since <= line:
            row = candidate
    return row


def check_versions(versions: dict[str, str]) -> list[GuardViolation]:
    """Check locked versions against the combinations PySpark supports.

    ``versions`` maps lower-case names (``pyspark``, ``pandas``, ``pyarrow``,
    ``numpy``, ``python``) to version strings; other names are ignored.
    """
    found: dict[str, str] = {str(canonicalize_name(k)): v for k, v in versions.items()}
    spark_text = found.get("pyspark")
    if spark_text is None:
        return []
    spark = _release(spark_text)
    if spark is None:
        return [
            GuardViolation(
                "unparsable-version",
                f"pyspark version {spark_text!r} is not a version; cannot check compatibility",
            )
        ]
    line = _line_of(spark)
    line_text = f"{line[0]}.{line[1]}"
    violations: list[GuardViolation] = []

    for package, major, needs, rule, source in _MAJOR_RULES:
        text = found.get(package)
        release = _release(text) if text is not None else None
        if release is None or release[0] < major or line >= needs:
            continue
        need_text = f"{needs[0]}.{needs[1]}"
        violations.append(
            GuardViolation(
                rule,
                f"{package} {text} needs pyspark >={need_text} but pyspark {spark_text} is "
                f"locked: pin '{package} <{major}' or 'pyspark >={need_text}'",
                source,
            )
        )

    row = _minimums_for(line)
    if row is not None:
        for package in _FIELDS:
            text = found.get(package)
            release = _release(text) if text is not None else None
            minimum = getattr(row, package)
            if release is None or _ge(release, _release(minimum) or ()):
                continue
            violations.append(
                GuardViolation(
                    f"min-{package}",
                    f"pyspark {spark_text} needs {package} >={minimum} but {package} {text} is "
                    f"locked: pin '{package} >={minimum}' or an older pyspark than {line_text}",
                    row.source,
                )
            )
    return violations


def guard_error(violations: list[GuardViolation]) -> GuardError:
    """One ``GuardError`` naming every violation (for ``raise guard_error(v) from None``)."""
    text = "; ".join(v.message for v in violations)
    return GuardError(
        f"unsupported PySpark combination: {text}",
        "change the pins, or pass --allow-unsupported to lock it anyway",
    )


def versions_of(records: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """``(name, version, manager)`` records -> name -> version, for ``check_versions``.

    Names are canonicalised; a conda record wins over a pip record of the same name
    (pip never overwrites what conda provides).
    """
    out: dict[str, str] = {}
    managers: dict[str, str] = {}
    for name, version, manager in records:
        key = str(canonicalize_name(name))
        if key in out and managers[key] == "conda" and manager != "conda":
            continue
        out[key] = version
        managers[key] = manager
    return out


def read_locked_versions(lock_path: Path, platform: str | None = None) -> dict[str, str]:
    """The versions of ``CHECKED_PACKAGES`` in a conda-lock v1 file (one platform).

    ``platform`` None takes the first platform listed in the lock.  A conda record
    wins over a pip record of the same name.  A lock that cannot be read is a
    ``LockStateError`` (``lockfile.load_lock_data``).
    """
    from bundler.solve.lockfile import load_lock_data

    packages = load_lock_data(lock_path).get("package")
    if not isinstance(packages, list):
        return {}
    if platform is None:
        platforms = [p.get("platform") for p in packages if isinstance(p, dict)]
        platform = next((p for p in platforms if p), None)
    return versions_of(
        (str(entry["name"]), str(entry["version"]), str(entry.get("manager", "conda")))
        for entry in packages
        if isinstance(entry, dict)
        and entry.get("platform") == platform
        and "version" in entry
        and canonicalize_name(str(entry.get("name", ""))) in CHECKED_PACKAGES
    )


def same_minor(a: str | None, b: str | None) -> bool:
    """Both versions known and of the same major.minor (``4.3.0`` and ``4.3.1``)."""
    return bool(a and b) and minor_version(a or "") == minor_version(b or "") is not None


def minor_version(version: str) -> tuple[int, int] | None:
    """``3.11.9`` -> (3, 11); None for anything that does not start with two numbers."""
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return None
