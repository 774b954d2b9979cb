"""bundler.artifact.content: what executor archives and image layers leave out.

The rules on small trees: an installed prefix (``read_prefix``), a packed archive
(``read_listing``), and listings made by hand, which need no prefix on disk.  What a
real pack leaves out is tested in test_executor.py; what an image layer leaves out
is built in tests/deliver/test_image.py.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from bundler.artifact import content
from bundler.artifact.content import (
    GROUPS,
    Listing,
    compile_patterns,
    content_for,
    plan_content,
    read_listing,
    read_prefix,
)
from bundler.artifact.manifest import LeftOut
from tests.support.archives import pack_dir, tar_gz
from tests.support.workspace import write_files

SITE = "lib/python3.11/site-packages"


# ---------------------------------------------------------------- listings made by hand


def _hand_listing(
    sizes: dict[str, int],
    owned: dict[str, list[str]] | None = None,
    imported: Iterable[str] = (),
    strings: dict[str, set[str]] | None = None,
) -> Listing:
    """What a reader of a prefix would say, written by hand: no prefix on disk.

    The one place these tests make a listing, so a change in how one is made is one
    change here.  ``owned``: pyspark's and py4j's files; ``imported``: modules that
    non-test code imports; ``strings``: directory -> test-like strings its modules hold.
    """
    return Listing(
        sizes=dict(sizes),
        package_files=dict(owned or {}),
        modules_used=set(imported),
        strings=dict(strings or {}),
    )


HAND = {
    "bin/python": 1,
    f"{SITE}/pyspark/__init__.py": 10,
    f"{SITE}/py4j/__init__.py": 2,
    f"{SITE}/numpy/__init__.py": 3,
    f"{SITE}/numpy/tests/test_a.py": 40,
    f"{SITE}/numexpr/tests/test_b.py": 6,
    f"{SITE}/__pycache__/six.cpython-311.pyc": 7,
    "lib/libz.a": 8,
    "share/man/man1/python.1": 9,
    "include/Python.h": 11,
}
HAND_OWNED = {"pyspark": [f"{SITE}/pyspark/__init__.py"], "py4j": [f"{SITE}/py4j/__init__.py"]}


def test_each_group_leaves_out_its_files_and_counts_them() -> None:
    listing = _hand_listing(HAND, HAND_OWNED, imported=["numexpr.tests"])
    plan = plan_content(listing, cuda=False, bytecode=True)
    assert {p for p in HAND if compile_patterns(plan.exclude_patterns)(p)} == {
        f"{SITE}/pyspark/__init__.py",
        f"{SITE}/py4j/__init__.py",
        f"{SITE}/numpy/tests/test_a.py",
        f"{SITE}/__pycache__/six.cpython-311.pyc",
        "lib/libz.a",
        "share/man/man1/python.1",
    }
    assert plan.left_out == {
        "pyspark": LeftOut(bytes=12, files=2),
        "tests": LeftOut(bytes=40, files=1),
        "static-libs": LeftOut(bytes=8, files=1),
        "docs": LeftOut(bytes=9, files=1),
        "bytecode": LeftOut(bytes=7, files=1),
    }
    assert plan.left_out_imports == ("pyspark", "py4j")
    assert plan.kept_test_dirs == (f"{SITE}/numexpr/tests",)  # numexpr imports it


def test_kept_groups_stay_and_only_groups_that_matched_are_reported() -> None:
    listing = _hand_listing(HAND, HAND_OWNED)
    full = plan_content(listing, keep=GROUPS, cuda=False)
    assert full.exclude_patterns == () and full.left_out == {} and full.left_out_imports == ()
    assert content_for(GROUPS) == "full" and content_for(("pyspark",)) == "executor"
    no_pyspark = plan_content(_hand_listing(HAND), keep=("tests", "static-libs"), cuda=True)
    assert set(no_pyspark.left_out) == {"docs"}  # no owned pyspark, CUDA keeps lib/*.a
    assert no_pyspark.left_out_imports == ()


def test_a_tests_string_keeps_only_the_directory_beside_it() -> None:
    sizes = {f"{SITE}/pkg/__init__.py": 1, f"{SITE}/pkg/tests/data.bin": 5}
    beside = _hand_listing(sizes, strings={f"{SITE}/pkg": {"tests"}})
    assert plan_content(beside, cuda=False).kept_test_dirs == (f"{SITE}/pkg/tests",)
    deeper = _hand_listing(sizes, strings={f"{SITE}/pkg/sub": {"tests"}})
    plan = plan_content(deeper, cuda=False)
    assert plan.kept_test_dirs == () and plan.left_out["tests"] == LeftOut(bytes=5, files=1)
    named = _hand_listing(sizes, strings={f"{SITE}/pkg/sub": {"../pkg/tests/data.bin"}})
    assert plan_content(named, cuda=False).kept_test_dirs == (f"{SITE}/pkg/tests",)


# ---------------------------------------------------------------- an installed prefix


def _record(name: str, files: list[str]) -> bytes:
    return json.dumps({"name": name, "version": "1", "files": files}).encode()


SPARK_FILES = [f"{SITE}/pyspark/__init__.py", f"{SITE}/pyspark/jars/core.jar", "bin/pyspark"]
PY4J_FILES = [f"{SITE}/py4j/__init__.py", f"{SITE}/py4j/java_gateway.py"]
TREE = {
    "bin/python": b"",
    f"{SITE}/pyspark/__init__.py": b"s" * 10,
    f"{SITE}/pyspark/jars/core.jar": b"j" * 100,
    f"{SITE}/pyspark/__pycache__/__init__.cpython-311.pyc": b"c" * 3,
    "bin/pyspark": b"b",
    f"{SITE}/py4j/__init__.py": b"",
    f"{SITE}/py4j/java_gateway.py": b"g" * 20,
    "conda-meta/pyspark-4.3.0-pyhd8ed1ab_0.json": _record("pyspark", SPARK_FILES),
    "conda-meta/py4j-0.10.9.9-pyhd8ed1ab_0.json": _record("py4j", PY4J_FILES),
    f"{SITE}/numpy/__init__.py": b"from numpy import testing\n",
    f"{SITE}/numpy/testing/__init__.py": b"",
    f"{SITE}/numpy/_core/tests/test_a.py": b"t" * 40,
    # a URL in a docstring does not keep pandas' test suite
    f"{SITE}/pandas/plotting/_misc.py": b'"""https://x/pandas/main/pandas/tests/iris.csv"""\n',
    f"{SITE}/pandas/tests/test_b.py": b"t" * 50,
    # a relative path does keep one
    f"{SITE}/loader/read.py": b"DATA = os.path.join(HERE, '..', 'io/tests/data')\n",
    f"{SITE}/loader/io/tests/data/ref.bin": b"r",
    f"{SITE}/six.py": b"",
    f"{SITE}/__pycache__/six.cpython-311.pyc": b"c" * 7,
    "lib/libcudadevrt.a": b"a" * 9,
    "share/man/man1/python.1": b"m" * 2,
    "include/Python.h": b"h",
}


def test_read_prefix_sees_what_read_listing_sees(tmp_path: Path) -> None:
    prefix = write_files(tmp_path / "prefix", TREE)
    (prefix / "lib" / "alias").symlink_to("python3.11")
    archive = pack_dir(prefix, tmp_path / "env.tar.gz")
    on_disk, packed = read_prefix(prefix), read_listing(archive)
    assert on_disk.sizes == packed.sizes
    assert on_disk.sizes["lib/alias"] == 0
    assert on_disk.package_files == packed.package_files
    assert set(on_disk.package_files) == {"pyspark", "py4j"}
    assert on_disk.modules_used == packed.modules_used


def test_executor_plan_leaves_out_groups_and_full_keeps_them(tmp_path: Path) -> None:
    listing = read_prefix(write_files(tmp_path / "prefix", TREE))
    plan = plan_content(listing, cuda=False, bytecode=True)
    gone = {p for p in TREE if compile_patterns(plan.exclude_patterns)(p)}
    assert gone == {
        *SPARK_FILES, *PY4J_FILES,
        f"{SITE}/pyspark/__pycache__/__init__.cpython-311.pyc",
        "conda-meta/pyspark-4.3.0-pyhd8ed1ab_0.json",
        "conda-meta/py4j-0.10.9.9-pyhd8ed1ab_0.json",
        f"{SITE}/numpy/_core/tests/test_a.py",
        f"{SITE}/pandas/tests/test_b.py",
        f"{SITE}/__pycache__/six.cpython-311.pyc",
        "lib/libcudadevrt.a",
        "share/man/man1/python.1",
    }  # fmt: skip
    assert plan.left_out_imports == ("pyspark", "py4j")
    assert plan.left_out["tests"] == LeftOut(bytes=90, files=2)
    assert plan.left_out["bytecode"] == LeftOut(bytes=7, files=1)  # pyspark's counts there
    assert plan.left_out["static-libs"] == LeftOut(bytes=9, files=1)
    assert f"{SITE}/pyspark/*" in plan.exclude_patterns and len(plan.exclude_patterns) < 15

    cuda = plan_content(listing, cuda=True, bytecode=True)
    assert "static-libs" not in cuda.left_out  # CUDA's JIT links libcudadevrt.a
    full = plan_content(listing, keep=("pyspark", "tests", "static-libs", "docs"), cuda=False)
    assert full.exclude_patterns == () and full.left_out == {} and full.left_out_imports == ()
    image = plan_content(listing, keep=("pyspark",), cuda=False, bytecode=True)
    assert "pyspark" not in image.left_out and "tests" in image.left_out
    with pytest.raises(ValueError, match="unknown content groups"):
        plan_content(listing, keep=("jars",), cuda=False)


def test_py4j_alone_is_not_spark(tmp_path: Path) -> None:
    files = {k: v for k, v in TREE.items() if "pyspark" not in k}
    plan = plan_content(read_prefix(write_files(tmp_path / "p", files)), cuda=False)
    assert "pyspark" not in plan.left_out and plan.left_out_imports == ()


# ---------------------------------------------------------------- a packed archive (image layers)


def _listing(tmp_path: Path, files: dict[str, bytes]) -> content.Listing:
    return content.read_listing(tar_gz(tmp_path / "env.tar.gz", files))


def _excluded(plan: content.ContentPlan, files: dict[str, bytes]) -> set[str]:
    """Files that conda-pack's ``CondaEnv.exclude`` (fnmatch) would leave out."""
    return {f for f in files if any(fnmatch.fnmatch(f, p) for p in plan.exclude_patterns)}


ENV_FILES = {
    "bin/python": b"",
    # numexpr imports its tests package from __init__ (true of numexpr 2.x).
    f"{SITE}/numexpr/__init__.py": b"from numexpr.tests import test, print_versions\n",
    f"{SITE}/numexpr/tests/__init__.py": b"def test(): pass\n",
    f"{SITE}/numexpr/tests/test_numexpr.py": b"x" * 100,
    # relative import of a tests package: kept too
    f"{SITE}/rel/sub/__init__.py": b"from ..tests import helpers\n",
    f"{SITE}/rel/tests/helpers.py": b"",
    # numpy-like: nobody imports them; "tests" said in __init__ counts only beside it
    f"{SITE}/numpy/__init__.py": b'hidden = {"tests", "conftest"}\n',
    f"{SITE}/numpy/tests/test_a.py": b"y" * 10,
    f"{SITE}/numpy/_core/tests/test_b.py": b"z" * 1000,
    f"{SITE}/numpy/_core/tests/data/x.csv": b"1,2\n",
    f"{SITE}/numpy/conftest.py": b"p = 'f2py' / 'tests'\nimport numpy._core.tests\n",
    # a path string naming the tests directory from elsewhere in the package
    f"{SITE}/data/loader.py": b"PATH = os.path.join(HERE, '..', 'io/tests/data')\n",
    f"{SITE}/data/io/tests/data/ref.bin": b"r",
    f"{SITE}/plain/tests/test_c.py": b"w" * 50,
    "lib/libfoo.a": b"a" * 7,
    "lib/libfoo.so": b"so",
    "share/man/man1/foo.1": b"m",
    # pyspark as a conda package
    f"{SITE}/pyspark/__init__.py": b"p" * 30,
    f"{SITE}/pyspark/jars/spark-core.jar": b"j" * 300,
    f"{SITE}/pyspark/tests/test_x.py": b"t",
    f"{SITE}/pyspark-3.5.7.dist-info/METADATA": b"",
    "bin/spark-submit": b"s",
    "bin/pyspark": b"s",
    f"{SITE}/py4j/__init__.py": b"",
}
PYSPARK_FILES = [
    f"{SITE}/pyspark/__init__.py",
    f"{SITE}/pyspark/jars/spark-core.jar",
    f"{SITE}/pyspark/tests/test_x.py",
    f"{SITE}/pyspark-3.5.7.dist-info/METADATA",
    "bin/spark-submit",
    "bin/pyspark",
]
ENV_FILES["conda-meta/pyspark-3.5.7-pyhd8ed1ab_0.json"] = json.dumps(
    {"name": "pyspark", "files": PYSPARK_FILES}
).encode()


def test_content_plan_leaves_out_unused_tests_static_libs_and_pyspark(tmp_path: Path) -> None:
    listing = _listing(tmp_path, ENV_FILES)
    plan = content.plan_content(listing, cuda=False)
    gone = _excluded(plan, ENV_FILES)
    assert gone == {
        *PYSPARK_FILES,
        "conda-meta/pyspark-3.5.7-pyhd8ed1ab_0.json",
        f"{SITE}/numpy/_core/tests/test_b.py",
        f"{SITE}/numpy/_core/tests/data/x.csv",
        f"{SITE}/plain/tests/test_c.py",
        "lib/libfoo.a",
        "share/man/man1/foo.1",
    }
    assert plan.left_out_imports == ("pyspark",)
    assert set(plan.kept_test_dirs) == {
        f"{SITE}/numexpr/tests",
        f"{SITE}/rel/tests",
        f"{SITE}/numpy/tests",
        f"{SITE}/data/io/tests",
    }
    meta = len(ENV_FILES["conda-meta/pyspark-3.5.7-pyhd8ed1ab_0.json"])
    assert plan.left_out == {
        "pyspark": LeftOut(sum(len(ENV_FILES[f]) for f in PYSPARK_FILES) + meta, 7),
        "tests": LeftOut(1000 + 4 + 50, 3),
        "static-libs": LeftOut(7, 1),
        "docs": LeftOut(1, 1),
    }
    # pyspark's directories collapse to one pattern each; few patterns keep packing fast
    assert f"{SITE}/pyspark/*" in plan.exclude_patterns
    assert len(plan.exclude_patterns) <= 12


def test_content_plan_respects_kept_pyspark_cuda_and_kept_groups(tmp_path: Path) -> None:
    listing = _listing(tmp_path, ENV_FILES)
    keep = content.plan_content(listing, keep=("pyspark",), cuda=True)
    gone = _excluded(keep, ENV_FILES)
    assert f"{SITE}/pyspark/__init__.py" not in gone and keep.left_out_imports == ()
    assert f"{SITE}/pyspark/tests/test_x.py" in gone  # an unused test suite all the same
    assert "lib/libfoo.a" not in gone  # CUDA JIT links static device runtimes
    all_but_pyspark = tuple(g for g in GROUPS if g != "pyspark")
    only_pyspark = content.plan_content(listing, keep=all_but_pyspark, cuda=False)
    assert set(only_pyspark.left_out) == {"pyspark"}
    assert content.plan_content(listing, keep=GROUPS, cuda=False).exclude_patterns == ()


def test_content_plan_reads_pip_installed_pyspark(tmp_path: Path) -> None:
    record = (
        "pyspark/__init__.py,sha256=x,1\n"
        "pyspark-4.0.1.dist-info/RECORD,,\n"
        "../../../bin/spark-submit,sha256=y,1\n"
    )
    files = {
        f"{SITE}/pyspark/__init__.py": b"a",
        f"{SITE}/pyspark-4.0.1.dist-info/RECORD": record.encode(),
        "bin/spark-submit": b"b",
        "bin/python": b"",
    }
    all_but_pyspark = tuple(g for g in GROUPS if g != "pyspark")
    plan = content.plan_content(_listing(tmp_path, files), keep=all_but_pyspark, cuda=False)
    assert _excluded(plan, files) == set(files) - {"bin/python"}


# ---------------------------------------------------------------- static libraries


STATIC = {
    "lib/libfoo.a": 3,
    "lib/libfoo.la": 1,
    f"{SITE}/nvidia/cuda_runtime/lib/libcudadevrt.a": 5,
    f"{SITE}/nvidia/cuda_runtime/lib/libcudart_static.a": 7,
    f"{SITE}/pkg/lib/deep/libbar.a": 11,
}


def test_static_libs_rule_matches_only_the_prefix_lib_directory() -> None:
    """fnmatch's ``*`` crosses ``/``: ``lib/*.a`` used to take site-packages' too."""
    plan = plan_content(_hand_listing(STATIC), cuda=False)
    gone = {p for p in STATIC if compile_patterns(plan.exclude_patterns)(p)}
    assert gone == {"lib/libfoo.a", "lib/libfoo.la"}
    assert plan.left_out["static-libs"] == LeftOut(bytes=4, files=2)
    assert "static-libs" not in plan_content(_hand_listing(STATIC), cuda=True).left_out
