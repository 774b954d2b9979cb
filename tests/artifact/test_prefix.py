"""``Prefix.read``: one walk of an installed prefix, and what is derived from it.

Unit tests on small prefixes laid out in ``tmp_path``: conda-meta records, pip
dist-infos (a quoted RECORD path with a comma, names with ``.`` and ``_``), a symlink,
an empty directory, files nobody owns.  conda-pack's own ``CondaEnv.from_prefix`` is
the reference for ``condaenv.conda_env``.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from bundler.artifact.condaenv import conda_env
from bundler.artifact.content import read_listing, read_prefix
from bundler.artifact.pack import installed_packages
from bundler.artifact.prefix import CondaRecord, PipDist, Prefix, parse_record
from bundler.check.dists import DistIndex
from tests.support.workspace import write_files

SITE = "lib/python3.11/site-packages"
ZOPE = f"{SITE}/zope.interface_extra-5.1.dist-info"
DATEUTIL = f"{SITE}/python_dateutil-2.9.0.dist-info"

CONDA_FILES = ["bin/python3.11", "lib/libpython3.11.so", f"{SITE}/README.txt"]
ZOPE_RECORD = (
    "zope/interface/__init__.py,sha256=x,12\n"
    '"zope/interface/a,b.py",sha256=y,5\n'  # a quoted path with a comma
    "../../../bin/zope-tool,sha256=z,3\n"  # a script outside site-packages
    "../../../../elsewhere/x.py,,\n"  # outside the prefix: not a file of it
    "zope.interface_extra-5.1.dist-info/METADATA,,\n"
    "zope.interface_extra-5.1.dist-info/RECORD,,\n"
)


def _conda(name: str, version: str, files: list[str], **extra: Any) -> str:
    record = {"name": name, "version": version, "files": files, "depends": ["libzlib >=1.3"]}
    return json.dumps({**record, **extra})


def _prefix(root: Path) -> Path:
    write_files(
        root,
        {
            "conda-meta/python-3.11.7-h_0.json": _conda(
                "python", "3.11.7", CONDA_FILES, sha256="ab" * 32
            ),
            "conda-meta/history": "==> 2024 <==\n",
            "bin/python3.11": b"\x7fELF" + b"\0" * 96,
            "lib/libpython3.11.so": b"L" * 1000,
            f"{SITE}/README.txt": "site\n",
            f"{ZOPE}/METADATA": (
                "Metadata-Version: 2.1\nName: Zope.Interface_Extra\nVersion: 5.1\n"
                "Requires-Dist: python-dateutil>=2\n\nLong description: Name: not this\n"
            ),
            f"{ZOPE}/RECORD": ZOPE_RECORD,
            f"{ZOPE}/INSTALLER": "uv\n",  # in no RECORD: its metadata directory owns it
            f"{SITE}/zope/interface/__init__.py": "x = 1\n" * 2,
            f"{SITE}/zope/interface/a,b.py": "y = 2",
            "bin/zope-tool": "#!",
            f"{DATEUTIL}/METADATA": "Name: python_dateutil\nVersion: 2.9.0\n",  # no RECORD
            f"{SITE}/stray.py": "z",  # nobody's
        },
    )
    (root / "bin" / "python").symlink_to("python3.11")
    (root / "share" / "empty").mkdir(parents=True)
    return root


def test_files_sizes_and_modes_from_one_walk(tmp_path: Path) -> None:
    prefix = Prefix.read(_prefix(tmp_path / "env"))
    assert list(prefix.paths) == sorted(prefix.paths)
    assert prefix.entries["lib/libpython3.11.so"].size == 1000
    assert prefix.entries["lib/libpython3.11.so"].is_file
    link = prefix.entries["bin/python"]
    assert link.is_link and not link.is_file and link.size == 0
    assert stat.S_ISLNK(link.mode)
    assert prefix.size_of(f"{SITE}/zope/interface/a,b.py") == 5
    assert prefix.size_of("no/such/file") == 0
    assert "share/empty" in prefix.dirs and prefix.empty_dirs == {"share/empty"}
    assert "share/empty" not in prefix.entries  # directories are not files
    assert prefix.sites == (SITE,)
    outside_conda_meta = sum(
        e.size for p, e in prefix.entries.items() if not p.startswith("conda-meta/")
    )
    assert prefix.installed_size() == outside_conda_meta > 1000
    assert prefix.children("bin") == ["python", "python3.11", "zope-tool"]


def test_conda_records(tmp_path: Path) -> None:
    prefix = Prefix.read(_prefix(tmp_path / "env"))
    assert prefix.damaged == ()
    (python,) = prefix.conda
    assert (python.name, python.version, python.sha256) == ("python", "3.11.7", "ab" * 32)
    assert python.files == tuple(CONDA_FILES)
    assert python.meta == "conda-meta/python-3.11.7-h_0.json"
    assert python.depends == ("libzlib >=1.3",)
    assert prefix.package_size(python) == 100 + 1000 + 5


def test_pip_distributions_names_versions_and_record(tmp_path: Path) -> None:
    prefix = Prefix.read(_prefix(tmp_path / "env"))
    zope, dateutil = sorted(prefix.pip, key=lambda d: d.name)[::-1]
    assert (zope.name, zope.display, zope.version) == (
        "zope-interface-extra",
        "Zope.Interface_Extra",
        "5.1",
    )
    assert zope.requires == ("python-dateutil>=2",)
    assert zope.files == (
        f"{SITE}/zope/interface/__init__.py",
        f"{SITE}/zope/interface/a,b.py",
        "bin/zope-tool",
        f"{ZOPE}/METADATA",
        f"{ZOPE}/RECORD",
    )
    assert zope.site == SITE and zope.metadata_dir == ZOPE and zope.conda is None
    assert zope.is_dist_info
    assert (dateutil.name, dateutil.display, dateutil.version) == (
        "python-dateutil",
        "python_dateutil",
        "2.9.0",
    )
    assert dateutil.files is None  # no RECORD: nothing says which files it owns


def test_owners_conda_first_then_pip_then_nobody(tmp_path: Path) -> None:
    prefix = Prefix.read(_prefix(tmp_path / "env"))
    python = prefix.owner_of("lib/libpython3.11.so")
    assert isinstance(python, CondaRecord) and python.name == "python"
    assert prefix.owner_of("conda-meta/python-3.11.7-h_0.json") is python
    zope = prefix.owner_of(f"{SITE}/zope/interface/a,b.py")
    assert isinstance(zope, PipDist) and zope.name == "zope-interface-extra"
    assert prefix.owner_of("bin/zope-tool") is zope
    assert prefix.owner_of(f"{ZOPE}/INSTALLER") is zope
    dateutil = prefix.owner_of(f"{DATEUTIL}/METADATA")
    assert isinstance(dateutil, PipDist) and dateutil.name == "python-dateutil"
    assert prefix.unowned() == ["bin/python", "conda-meta/history", f"{SITE}/stray.py"]


def test_a_dist_info_a_conda_package_installed_is_the_conda_packages(tmp_path: Path) -> None:
    root = _prefix(tmp_path / "env")
    write_files(
        root,
        {
            "conda-meta/zope-5.1-py_0.json": _conda(
                "zope.interface-extra", "5.1", [f"{ZOPE}/RECORD", f"{SITE}/zope/interface/a,b.py"]
            )
        },
    )
    prefix = Prefix.read(root)
    zope = next(d for d in prefix.pip if d.metadata_dir == ZOPE)
    assert zope.conda == "zope.interface-extra"
    owner = prefix.owner_of(f"{SITE}/zope/interface/a,b.py")
    assert isinstance(owner, CondaRecord)
    assert isinstance(prefix.owner_of(f"{SITE}/zope/interface/__init__.py"), PipDist)
    managers = {(p.name, p.manager) for p in installed_packages(prefix)}
    assert managers == {("python", "conda"), ("zope.interface-extra", "conda")}


def test_installed_packages_names_and_sizes(tmp_path: Path) -> None:
    prefix = Prefix.read(_prefix(tmp_path / "env"))
    packages = {(p.name, p.version, p.manager): p for p in installed_packages(prefix)}
    # python-dateutil has no RECORD: not a package the manifest can size
    assert set(packages) == {
        ("python", "3.11.7", "conda"),
        ("zope-interface-extra", "5.1", "pip"),
    }
    assert packages["python", "3.11.7", "conda"].sha256 == "ab" * 32
    zope_size = 12 + 5 + 2 + (tmp_path / "env" / ZOPE / "METADATA").stat().st_size
    zope_size += len(ZOPE_RECORD)
    assert packages["zope-interface-extra", "5.1", "pip"].size == zope_size


def test_a_damaged_record_is_named(tmp_path: Path) -> None:
    root = _prefix(tmp_path / "env")
    write_files(
        root,
        {
            "conda-meta/broken-1-0.json": "{",
            "conda-meta/nameless-1-0.json": "{}",
            "conda-meta/versionless-1-0.json": '{"name": "versionless"}',
        },
    )
    prefix = Prefix.read(root)
    assert prefix.damaged == ("conda-meta/broken-1-0.json", "conda-meta/nameless-1-0.json")
    assert [(r.name, r.version) for r in prefix.conda] == [
        ("python", "3.11.7"),
        ("versionless", ""),
    ]


def test_parse_record_reads_csv_and_keeps_paths_inside() -> None:
    text = 'a/b.py,sha256=x,1\n"c,d/e.py",,\n../../bin/f,,\n/abs/g,,\nC:/h,,\n\n'
    assert parse_record(text, "lib/site") == ("lib/site/a/b.py", "lib/site/c,d/e.py", "bin/f")
    assert parse_record(text, "") == ("a/b.py", "c,d/e.py")


def test_read_prefix_takes_pysparks_files_from_the_prefix(tmp_path: Path) -> None:
    root = _prefix(tmp_path / "env")
    dist = f"{SITE}/pyspark-4.0.0.dist-info"
    write_files(
        root,
        {
            f"{dist}/METADATA": "Name: pyspark\nVersion: 4.0.0\n",
            f"{dist}/RECORD": f'pyspark/__init__.py,,\n"pyspark/a,b.py",,\n{dist[len(SITE) + 1 :]}'
            "/RECORD,,\n",
            f"{SITE}/pyspark/__init__.py": "",
            f"{SITE}/pyspark/a,b.py": "",
        },
    )
    listing = read_prefix(Prefix.read(root))
    assert sorted(listing.package_files["pyspark"]) == sorted(
        [f"{SITE}/pyspark/__init__.py", f"{SITE}/pyspark/a,b.py", f"{dist}/RECORD"]
    )
    assert listing.sizes == {p: e.size for p, e in Prefix.read(root).entries.items()}
    # an archive's RECORD is read the same way
    archive = tmp_path / "env.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".")
    packed = read_listing(archive)
    assert packed.package_files == listing.package_files
    assert packed.sizes == listing.sizes


def test_dist_index_reads_the_prefix(tmp_path: Path) -> None:
    index = DistIndex.read(_prefix(tmp_path / "env"))
    assert index.python == ("3", "11")
    assert index.owners(f"{SITE}/zope/interface/a,b.py") == {"zope-interface-extra"}
    assert index.owners("lib/libpython3.11.so") == {"conda:python"}
    assert index.requires("zope-interface-extra") == {"zope-interface-extra", "python-dateutil"}


# ---------------------------------------------------------------- conda-pack's view


def _files(env: Any) -> list[tuple[Any, ...]]:
    return [(f.source, f.target, f.is_conda, f.file_mode, f.prefix_placeholder) for f in env.files]


def _cached_package(pkgs: Path, name: str, paths: list[dict[str, Any]]) -> Path:
    pkg = pkgs / name
    (pkg / "info").mkdir(parents=True)
    (pkg / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    return pkg


def test_conda_env_is_conda_packs_own_view(tmp_path: Path) -> None:
    """The same File objects, in the same order, as ``CondaEnv.from_prefix``: managed
    files from the package cache (with prefix placeholders), unmanaged ones, symlinks,
    empty directories, and what conda-pack never packs (``pkgs/`` at the top)."""
    from conda_pack.core import CondaEnv

    root = _prefix(tmp_path / "env")
    pkg = _cached_package(
        tmp_path / "pkgs",
        "python-3.11.7-h_0",
        [
            {"_path": "bin/python3.11", "path_type": "hardlink"},
            {
                "_path": "lib/libpython3.11.so",
                "path_type": "hardlink",
                "prefix_placeholder": "/opt/placeholder",
                "file_mode": "binary",
            },
            {"_path": f"{SITE}/README.txt", "path_type": "hardlink"},
        ],
    )
    meta = root / "conda-meta" / "python-3.11.7-h_0.json"
    meta.write_text(_conda("python", "3.11.7", CONDA_FILES, link={"source": str(pkg)}))
    write_files(root, {"pkgs/cache.txt": "never packed", "notes.txt~": "nor this"})
    (root / "lib" / "alias").symlink_to("python3.11", target_is_directory=True)
    os.mkfifo(root / "pipe")  # load_files packs no special file at the top
    expected = CondaEnv.from_prefix(str(root))
    assert _files(conda_env(Prefix.read(root))) == _files(expected)
    targets = {f.target for f in expected.files}
    assert {"share/empty", "bin/python", "lib/alias", f"{SITE}/stray.py"} <= targets
    assert not {"pkgs/cache.txt", "notes.txt~", "pipe"} & targets


def test_conda_env_warns_and_refuses_as_conda_pack_does(tmp_path: Path) -> None:
    from conda_pack.core import CondaEnv, CondaPackException

    root = _prefix(tmp_path / "env")  # its record has no link: the package is not cached
    meta = root / "conda-meta" / "python-3.11.7-h_0.json"
    meta.write_text(_conda("python", "3.11.7", CONDA_FILES, link={}, url="https://x/python"))
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        expected = CondaEnv.from_prefix(str(root))
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = conda_env(Prefix.read(root))
    assert _files(got) == _files(expected)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert "python='3.11.7'" in str(ours[0].message)
    (root / "lib" / "libpython3.11.so").unlink()  # a file conda installed is gone
    with pytest.raises(CondaPackException) as theirs_error:
        CondaEnv.from_prefix(str(root))
    with pytest.raises(CondaPackException) as ours_error:
        conda_env(Prefix.read(root))
    assert str(ours_error.value) == str(theirs_error.value)
    assert "lib/libpython3.11.so" in str(ours_error.value)
