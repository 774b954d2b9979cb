"""pyfiles: pure-Python distributions into a --py-files zip; native ones refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundler.cli import build_app
from bundler.deliver.pyfiles import (
    NativeDistributionError,
    PyfilesOptions,
    make_pyfiles,
    scan_site_packages,
    zip_site_packages,
)
from bundler.errors import UsageError
from tests.support.pip import pip_target

# Real wheels from the package index: two pure ones, one with a compiled extension
# (markupsafe's _speedups), and py4j, which Spark provides itself.
WHEELS = ("six", "attrs", "markupsafe", "py4j")


def fake_dist(site: Path, name: str, version: str, files: dict[str, str], wheel: str = "") -> None:
    """A distribution as an installer leaves it: files, METADATA, RECORD (and WHEEL)."""
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if wheel:
        (meta / "WHEEL").write_text(wheel)
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    record = [*files, f"{meta.name}/METADATA", f"{meta.name}/RECORD"]
    if wheel:
        record.append(f"{meta.name}/WHEEL")
    (meta / "RECORD").write_text("".join(f"{r},,\n" for r in record))


@pytest.fixture(scope="session")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = pip_target(tmp_path_factory.mktemp("site") / "site-packages", *WHEELS)
    # pyspark itself is 400 MB: a stand-in with the same shape is enough to be left out.
    fake_dist(site, "pyspark", "4.3.0", {"pyspark/__init__.py": "__version__ = '4.3.0'\n"})
    return site


def test_native_distribution_is_refused_by_name(site_packages: Path, tmp_path: Path) -> None:
    out = tmp_path / "deps.zip"
    with pytest.raises(NativeDistributionError) as info:
        zip_site_packages(site_packages, out)
    line = info.value.one_line()
    assert "markupsafe" in line
    assert "_speedups" in line and ".so" in line
    assert "--skip-native" in line
    assert "six" not in line and "attrs" not in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_skip_native_lists_and_leaves_out(site_packages: Path, tmp_path: Path) -> None:
    out = tmp_path / "deps.zip"
    result = zip_site_packages(site_packages, out, skip_native=True)
    assert [s.name for s in result.skipped] == ["markupsafe"]
    assert "compiled file markupsafe/" in result.skipped[0].reason
    assert {n for n, _, _ in result.included} == {"six", "attrs"}
    assert set(result.excluded) == {"py4j", "pyspark"}

    names = zipfile.ZipFile(out).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert "six.py" in tops and "attr" in tops and "attrs" in tops
    assert any(t.startswith("six-") and t.endswith(".dist-info") for t in tops)
    assert not any(t.startswith(("markupsafe", "MarkupSafe")) for t in tops)
    assert not any(t.startswith(("pyspark", "py4j")) for t in tops)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.endswith((".so", ".pth")) for n in names)
    # No enclosing folder: more than one top-level entry, packages right at the root.
    assert len(tops) > 2

    data = result.to_dict()
    assert data["skipped"][0]["name"] == "markupsafe"
    assert data["sha256"] == result.sha256 and data["size"] == out.stat().st_size


def test_zip_imports_with_metadata(site_packages: Path, tmp_path: Path) -> None:
    out = tmp_path / "deps.zip"
    zip_site_packages(site_packages, out, skip_native=True)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import six, attr, importlib.metadata as m;"
        "print(six.__file__, attr.__file__, m.version('six'), m.version('attrs'))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(out)], capture_output=True, text=True, check=True
    )
    six_file, attr_file, six_version, attrs_version = proc.stdout.split()
    assert six_file == f"{out}/six.py"
    assert attr_file == f"{out}/attr/__init__.py"
    versions = {d.name: d.version for d in scan_site_packages(site_packages)[0]}
    assert (six_version, attrs_version) == (versions["six"], versions["attrs"])


def test_zip_is_reproducible(site_packages: Path, tmp_path: Path) -> None:
    a = zip_site_packages(site_packages, tmp_path / "a" / "deps.zip", skip_native=True)
    b = zip_site_packages(site_packages, tmp_path / "b" / "deps.zip", skip_native=True)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == b.sha256
    with zipfile.ZipFile(a.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    # Directory entries exist for every package directory (zipimport needs them).
    names = {i.filename for i in infos}
    assert "attr/" in names


def test_classifier_reasons(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    pure = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n"
    fake_dist(site, "purepkg", "1.0", {"purepkg/__init__.py": ""}, pure)
    fake_dist(
        site,
        "tagged",
        "1.0",
        {"tagged/__init__.py": ""},
        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp311-cp311-manylinux_2_17_x86_64\n",
    )
    fake_dist(
        site,
        "platlib",
        "1.0",
        {"platlib/__init__.py": ""},
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n",
    )
    fake_dist(site, "binary", "1.0", {"binary/__init__.py": "", "binary/helper": ""})
    (site / "binary" / "helper").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    fake_dist(site, "versioned", "1.0", {"versioned/libfoo.so.1.2": ""})
    norecord = site / "norecord-1.0.dist-info"
    norecord.mkdir()
    (norecord / "METADATA").write_text("Metadata-Version: 2.1\nName: norecord\nVersion: 1.0\n")
    (site / "loose.py").write_text("")

    dists, unowned = scan_site_packages(site)
    reasons = {d.name: d.native_reasons for d in dists}
    assert reasons["purepkg"] == ()
    assert "cp311-cp311-manylinux_2_17_x86_64" in reasons["tagged"][0]
    assert "Root-Is-Purelib: false" in reasons["platlib"][0]
    assert reasons["binary"][0] == "compiled file binary/helper"
    assert reasons["versioned"][0] == "compiled file versioned/libfoo.so.1.2"
    assert "no RECORD" in reasons["norecord"][0]
    assert unowned == ["loose.py"]

    with pytest.raises(NativeDistributionError) as info:
        zip_site_packages(site, tmp_path / "deps.zip")
    line = info.value.one_line()
    for name in ("tagged", "platlib", "binary", "versioned", "norecord"):
        assert name in line
    assert "purepkg" not in line


def test_output_must_be_a_zip(site_packages: Path, tmp_path: Path) -> None:
    from bundler.errors import BundlerError

    with pytest.raises(BundlerError, match=r"\.zip"):
        zip_site_packages(site_packages, tmp_path / "deps.tar.gz", skip_native=True)


# --- the variant route and the CLI -----------------------------------------------------


@pytest.mark.integration
def test_variant_is_built_from_its_lock_then_zipped(
    locked_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real route: the app variant's lock is built (rattler, pip wheels) and zipped."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the prefix goes
    options = PyfilesOptions(
        output=tmp_path / "out" / "deps.zip",
        variant="app",
        workspace=locked_workspace,
        skip_native=True,
    )
    result = make_pyfiles(options)
    included = {n for n, _, _ in result.included}
    assert {"six", "python-dateutil"} <= included
    assert not included & {"numpy", "pandas", "pyarrow"}  # compiled: left out
    assert {"numpy", "pandas", "pyarrow"} <= {s.name for s in result.skipped}
    names = zipfile.ZipFile(result.path).namelist()
    assert "six.py" in names and "dateutil/parser/__init__.py" in names
    assert not any(n.endswith(".so") for n in names)
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary prefix is gone


@pytest.fixture(scope="module")
def cli():
    return build_app()


def test_cli_refuses_native_with_exit_code_2(cli, site_packages: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["pyfiles", "--site-packages", str(site_packages), "-o", str(tmp_path / "d.zip")]
    )
    assert result.exit_code == 2
    assert "markupsafe" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "d.zip").exists()


def test_cli_skip_native_json(cli, site_packages: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.zip"
    result = CliRunner().invoke(
        cli,
        [
            "pyfiles",
            "--site-packages",
            str(site_packages),
            "-o",
            str(out),
            "--skip-native",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["name"] for s in data["skipped"]] == ["markupsafe"]
    assert out.is_file() and data["path"] == str(out)


@pytest.mark.parametrize("source", [[], ["app", "--site-packages", "."]])
def test_cli_needs_a_variant_or_a_directory(cli, tmp_path: Path, source: list[str]) -> None:
    result = CliRunner().invoke(cli, ["pyfiles", *source, "-o", str(tmp_path / "d.zip")])
    assert result.exit_code == 2
    assert result.stderr == "error: name a VARIANT or pass --site-packages DIR (not both)\n"
    assert not (tmp_path / "d.zip").exists()


def test_library_callers_get_the_same_check(tmp_path: Path) -> None:
    both = PyfilesOptions(output=tmp_path / "d.zip", variant="app", site_packages=tmp_path)
    with pytest.raises(
        UsageError, match=r"name a VARIANT or pass --site-packages DIR \(not both\)"
    ):
        make_pyfiles(both)
    assert not (tmp_path / "d.zip").exists()
