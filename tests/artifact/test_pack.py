"""Packing from a lock: relocatable, reproducible, atomic, with a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.errors import LockStateError, PackError
from bundler.pipeline import PackOptions, pack_archive
from tests.support.cli import error_line, run_cli
from tests.support.fixtures import copy_workspace

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_describes_the_archive(packed_archive: tuple[Path, dict[str, Any]]) -> None:
    archive, manifest = packed_archive
    assert manifest["variant"] == "app"
    assert manifest["platform"] == "linux-64"
    assert manifest["python"].startswith("3.11.")
    assert manifest["archive"]["sha256"] == _sha(archive)
    assert manifest["archive"]["size"] == archive.stat().st_size
    pkgs = {p["name"]: p for p in manifest["packages"]}
    assert pkgs["python"]["manager"] == "conda" and pkgs["six"]["manager"] == "conda"
    assert pkgs["numpy"]["manager"] == "pip" and pkgs["pyarrow"]["manager"] == "pip"
    assert all(p["size"] > 0 for p in pkgs.values())
    assert manifest["imports"] == ["numpy", "pyarrow", "pandas", "six", "dateutil"]
    for key in ("inputs_hash", "lock_sha256"):
        assert re.fullmatch(r"[0-9a-f]{64}", manifest[key]), (key, manifest[key])


def test_archive_is_normalised_and_carries_conda_unpack(
    packed_archive: tuple[Path, dict[str, Any]],
) -> None:
    archive, _ = packed_archive
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    # conda-pack appends its own scripts last; everything from the prefix is sorted.
    added = [n for n in names if n.startswith(("bin/activate", "bin/deactivate", "bin/conda"))]
    body = [n for n in names if n not in added]
    assert body == sorted(body)
    assert names[-len(added) :] == added
    assert "bin/conda-unpack" in names and "bin/python3.11" in names
    assert not any(n.endswith(".pyc") for n in names)
    assert all(m.mtime == members[0].mtime and m.uid == 0 and m.uname == "" for m in members)
    modes = {m.name: m.mode for m in members}
    assert modes["bin/python3.11"] == 0o755
    assert not any(n.startswith(("/", "../")) for n in names)
    with open(archive, "rb") as fh:
        header = fh.read(10)
    assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0"  # gzip, no timestamp


def test_duplicate_wheel_libraries_are_stored_once(
    packed_archive: tuple[Path, dict[str, Any]],
) -> None:
    """pyarrow's wheel holds libarrow_python.so three times (wheels have no symlinks)."""
    archive, manifest = packed_archive
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar}
    links = [m for m in members.values() if m.islnk()]
    assert any(re.search(r"pyarrow/libarrow_python\.so\.\d+$", m.name) for m in links), links
    for m in links:
        first = members[m.linkname]
        assert first.isreg() and first.mode == m.mode, m.name
    record = manifest["archive"]
    assert record["linked_files"] == len(links)
    assert record["linked_bytes"] == sum(members[m.linkname].size for m in links)


def test_unpacked_anywhere_imports_without_conda_unpack(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, manifest = packed_archive
    dest = tmp_path / "a" / "deeper" / "place" / "env"
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")
    code = (
        "import sys, json, importlib;"
        "mods = [importlib.import_module(m) for m in sys.argv[1:]];"
        "print(json.dumps([sys.prefix] + [m.__file__ for m in mods]))"
    )
    out = subprocess.run(
        [str(dest / "bin/python"), "-c", code, *manifest["imports"]],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1"},
    )
    paths = json.loads(out.stdout)
    assert Path(paths[0]) == dest
    for p in paths[1:]:
        assert Path(p).is_relative_to(dest), p
    # conda-unpack still rewrites the remaining prefixes for tools that need it.
    build_prefix = manifest["build_prefix"]
    assert build_prefix.encode() in (dest / "bin/pip").read_bytes()
    subprocess.run([str(dest / "bin/conda-unpack")], check=True, capture_output=True)
    assert build_prefix.encode() not in (dest / "bin/pip").read_bytes()
    pip = subprocess.run(
        [str(dest / "bin/python"), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(dest) in pip.stdout


def test_two_packs_are_byte_identical(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    again = pack_archive(
        PackOptions(workspace=locked_workspace, variant="app", output=tmp_path / "again.tar.gz")
    )
    assert again.sha256 == _sha(archive)


def test_tar_is_uncompressed_reproducible_linked_and_verifies(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    one, two = tmp_path / "one" / "app.tar", tmp_path / "two" / "app.tar"
    for out in (one, two):
        proc = run_cli("pack", "app", "-o", str(out), "-q", cwd=locked_workspace)
        assert proc.returncode == 0, proc.stderr
    assert _sha(one) == _sha(two)
    manifest = json.loads((one.parent / "app.tar.json").read_text())
    assert manifest["archive"]["format"] == "tar"
    assert manifest["archive"]["sha256"] == _sha(one)
    with open(one, "rb") as fh:
        assert fh.read(2) != b"\x1f\x8b"  # not gzip
    with tarfile.open(one, mode="r:") as tar:
        members = {m.name: m for m in tar}
    with tarfile.open(archive) as tar:
        assert sorted(members) == sorted(tar.getnames())  # the same files as the .tar.gz
    links = [m for m in members.values() if m.islnk()]
    assert any(re.search(r"pyarrow/libarrow_python\.so\.\d+$", m.name) for m in links), links
    assert manifest["archive"]["linked_files"] == len(links)
    assert members["bin/python3.11"].mode == 0o755
    assert members["bin/python"].issym() and members["bin/python"].linkname == "python3.11"
    # unpacked as YARN's NodeManager does it: the shell's tar -xf
    dest = tmp_path / "yarn" / "env"
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(one), "-C", str(dest)], check=True)
    out = subprocess.run(
        [str(dest / "bin/python"), "-c", "import sys, pyarrow; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1"},
    )
    assert Path(out.stdout.strip()) == dest
    proc = run_cli("verify", str(one), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["verdict"] == "ok"


def hadoop_unzip(archive: Path, dest: Path) -> None:
    """Unpack as Hadoop's FileUtil.unZip does: a symlink entry becomes a file of link text.

    Python's zipfile does the same with symlink entries; modes come from external_attr.
    """
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if not info.is_dir():
                os.chmod(dest / info.filename, 0o755 if mode & 0o111 else 0o644)


def test_zip_stores_symlinks_as_copies_and_runs_after_hadoops_unzip(
    locked_workspace: Path, tmp_path: Path
) -> None:
    result = pack_archive(
        PackOptions(workspace=locked_workspace, variant="gpuapp", output=tmp_path / "g.zip")
    )
    with zipfile.ZipFile(result.path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        python, python311 = zf.read("bin/python"), zf.read("bin/python3.11")
    assert not [n for n, i in infos.items() if stat.S_ISLNK(i.external_attr >> 16)]
    assert python == python311 and python[:4] == b"\x7fELF"  # a copy, not the text
    assert (infos["bin/python"].external_attr >> 16) & 0o777 == 0o755
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["gpu_imports"] == ["cudaprobe"]
    assert manifest["archive"]["format"] == "zip"
    links = manifest["zip_symlinks"]
    assert links["stored_as"] == "copies" and links["copied"] >= 1, links
    assert links["left_out"] == []
    # bundler sbom reads the zip's own metadata back into the SBOM pack wrote
    proc = run_cli("sbom", str(result.path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == result.path.with_name("g.zip.cdx.json").read_text()
    names = {c["name"] for c in json.loads(proc.stdout)["components"]}
    assert names == {"python", "pip", "six", "cudaprobe"}

    env = tmp_path / "unzipped" / "env"
    hadoop_unzip(result.path, env)
    out = subprocess.run(
        [str(env / "bin/python"), "-c", "import sys, six; print(sys.prefix, six.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1"},
    )
    prefix, six_file = out.stdout.split()
    assert Path(prefix) == env and Path(six_file).is_relative_to(env)


def test_verify_refuses_a_zip_with_symlink_entries(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    bad = tmp_path / "linked.zip"
    with tarfile.open(archive) as tar, zipfile.ZipFile(bad, "w") as zf:
        for m in tar.getmembers()[:400]:
            zi = zipfile.ZipInfo(m.name)
            zi.create_system = 3
            if m.issym():
                zi.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(zi, m.linkname)
            elif m.isreg():
                zi.external_attr = (stat.S_IFREG | m.mode) << 16
                zf.writestr(zi, tar.extractfile(m).read())  # type: ignore[union-attr]
    proc = run_cli("verify", str(bad), "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    extract = next(c for c in report["checks"] if c["name"] == "extract")
    assert extract["status"] == "failed"
    assert "symlink entr" in extract["summary"] and "Hadoop" in extract["summary"]
    assert any(d.startswith("symlink entry ") for d in extract["details"])
    assert report["verdict"] == "failed"


def test_pack_prefix_of_an_existing_environment(
    packed_archive: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive, _ = packed_archive
    env = tmp_path / "env"
    env.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(env, filter="tar")
    subprocess.run([str(env / "bin/conda-unpack")], check=True)
    proc = run_cli(
        "pack", "--prefix", str(env), "-o", str(tmp_path / "out.tgz"), "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["path"] == str(tmp_path / "out.tgz")
    names = {p["name"] for p in result["largest"]}
    assert {"pyarrow", "python", "numpy"} <= names
    with tarfile.open(tmp_path / "out.tgz") as tar:
        names = tar.getnames()
    assert "bin/conda-unpack" in names
    # conda-pack's fresh scripts replace the copies the unpacked archive brought along
    assert len(names) == len(set(names))


def test_stale_lock_is_refused_and_nothing_written(locked_workspace: Path, tmp_path: Path) -> None:
    ws = copy_workspace(locked_workspace, tmp_path / "ws")
    extra = ws / "environments/extra.yml"
    extra.write_text(extra.read_text().replace("numpy>=2,<3", "numpy>=2.2,<3"))
    proc = run_cli("pack", "app", cwd=ws)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "stale" in line and "bundler lock app" in line
    assert not (ws / "dist").exists()
    with pytest.raises(LockStateError):
        pack_archive(PackOptions(workspace=ws, variant="nocuda"))


def test_bad_suffix_is_refused_before_building(locked_workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(PackError, match="unsupported archive suffix"):
        pack_archive(
            PackOptions(workspace=locked_workspace, variant="app", output=tmp_path / "x.tar.zst")
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_pack_leaves_no_archive(locked_workspace: Path, tmp_path: Path) -> None:
    """A pack that dies mid-write (here: the prefix is not a conda env) leaves nothing."""
    bogus = tmp_path / "bogus"
    (bogus / "conda-meta").mkdir(parents=True)
    (bogus / "conda-meta" / "broken.json").write_text("{}")
    with pytest.raises(PackError):
        pack_archive(PackOptions(prefix=bogus, output=tmp_path / "out" / "x.tar.gz"))
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert leftovers == []


def _pack_cmd(ws: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bundler", "pack", "app", "-q", "-o", str(out)]


def test_concurrent_packs_do_not_corrupt_each_other(
    packed_archive: tuple[Path, dict[str, Any]], locked_workspace: Path, tmp_path: Path
) -> None:
    archive, _ = packed_archive
    out = tmp_path / "same.tar.gz"
    procs = [
        subprocess.Popen(_pack_cmd(locked_workspace, target), cwd=locked_workspace)
        for target in (out, out, tmp_path / "other.tar.gz")
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
    assert _sha(out) == _sha(archive) == _sha(tmp_path / "other.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.tar.gz",
        "other.tar.gz.cdx.json",
        "other.tar.gz.json",
        "same.tar.gz",
        "same.tar.gz.cdx.json",
        "same.tar.gz.json",
    ]


def _sigint_as_in_a_terminal() -> None:
    """A job started with ``&`` by a non-interactive shell (a CI script, say) inherits
    SIGINT ignored, and so would the pack: give it the default, as a terminal does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_pack_leaves_nothing_under_the_final_name(
    locked_workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "app.tar.gz"
    proc = subprocess.Popen(
        _pack_cmd(locked_workspace, out),
        cwd=locked_workspace,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    deadline = time.monotonic() + 300
    while not list(out.parent.glob(".*.part")) if out.parent.exists() else True:
        assert proc.poll() is None, "pack finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(out.parent.iterdir()) == []


# ---------------------------------------------------------------- compression levels


@pytest.fixture(scope="module")
def small_env(locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gpuapp`` (python, pip, six, cudaprobe) unpacked: a small prefix for --prefix packs."""
    dist = tmp_path_factory.mktemp("small")
    # with bytecode, so that conda-pack finds every file conda-meta lists
    options = PackOptions(
        workspace=locked_workspace, variant="gpuapp", output=dist / "g.tar.gz", keep_bytecode=True
    )
    result = pack_archive(options)
    env = dist / "env"
    with tarfile.open(result.path) as tar:
        tar.extractall(env, filter="tar")
    subprocess.run([str(env / "bin/conda-unpack")], check=True)
    return env


# conda-pack warns that an unpacked archive's packages are not in a package cache
# (it emptied their cache paths when it packed them); that is expected here.
uncached = pytest.mark.filterwarnings("ignore:\\s*Conda-managed packages were found without")


def _gunzip_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_every_gzip_level_packs_and_higher_levels_are_smaller(
    small_env: Path, tmp_path: Path
) -> None:
    sizes = {}
    for level in (0, 1, 3, 4, 6, 9):
        out = tmp_path / f"l{level}.tar.gz"
        proc = run_cli("pack", "--prefix", str(small_env), "-o", str(out), "-q",
                       "--level", str(level), cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        with open(out, "rb") as fh:
            header = fh.read(10)
        assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0", level  # no time
        sizes[level] = out.stat().st_size
    names = _gunzip_names(tmp_path / "l9.tar.gz")
    assert names == _gunzip_names(tmp_path / "l0.tar.gz")
    assert "bin/python3.11" in names
    # ISA-L 0-3, then zlib-ng: each step up in this list gives fewer bytes
    assert sizes[9] < sizes[6] < sizes[4] < sizes[1] < sizes[0], sizes
    assert sizes[3] < sizes[1], sizes


@uncached
def test_high_levels_are_reproducible_whatever_the_thread_count(
    small_env: Path, tmp_path: Path
) -> None:
    one, many = tmp_path / "one.tar.gz", tmp_path / "many.tar.gz"
    for out, threads in ((one, 1), (many, 4)):
        pack_archive(PackOptions(prefix=small_env, output=out, level=6, threads=threads))
    assert _sha(one) == _sha(many)


@uncached
def test_zip_levels_and_threads(small_env: Path, tmp_path: Path) -> None:
    """ISA-L (0-3) then zlib (4-9) deflate; the bytes do not depend on the thread count."""
    sizes = {}
    for level, threads in ((1, 1), (1, 3), (6, 2)):
        out = tmp_path / f"l{level}t{threads}.zip"
        pack_archive(PackOptions(prefix=small_env, output=out, level=level, threads=threads))
        sizes[level] = out.stat().st_size
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
    assert _sha(tmp_path / "l1t1.zip") == _sha(tmp_path / "l1t3.zip")
    assert sizes[6] < sizes[1], sizes


@pytest.mark.parametrize(("flag", "value"), [("--level", "10"), ("--level", "-1"),
                                             ("--threads", "-2")])  # fmt: skip
def test_out_of_range_compression_is_one_line_and_writes_nothing(
    locked_workspace: Path, tmp_path: Path, flag: str, value: str
) -> None:
    out = tmp_path / "out" / "app.tar.gz"
    proc = run_cli("pack", "app", "-o", str(out), flag, value, cwd=locked_workspace)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert f"{flag} {value}" in line
    assert not out.parent.exists()


@uncached
def test_manifest_of_a_prefix_pack_holds_no_none_string(small_env: Path, tmp_path: Path) -> None:
    result = pack_archive(PackOptions(prefix=small_env, output=tmp_path / "p.tar.gz"))
    text = result.manifest_path.read_text()
    manifest = json.loads(text)
    assert '"None"' not in text and "'None'" not in text

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    assert "None" not in strings(manifest)
    # no lock, so no lock hashes at all; the archive's own hash is a real sha256
    assert "inputs_hash" not in manifest and "lock_sha256" not in manifest
    assert manifest["archive"]["sha256"] == _sha(result.path)
    assert manifest["python"].startswith("3.11.")


@uncached
def test_archive_manifest_and_sbom_are_written_all_or_none(
    small_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bundler.artifact.pack as pack

    out = tmp_path / "out" / "p.tar.gz"
    result = pack_archive(PackOptions(prefix=small_env, output=out))
    assert result.sbom_path == tmp_path / "out" / "p.tar.gz.cdx.json"
    sbom = json.loads(result.sbom_path.read_text())
    assert {c["name"] for c in sbom["components"]} >= {"python", "pip", "six", "cudaprobe"}
    assert sbom["metadata"]["component"]["hashes"][0]["content"] == _sha(out)

    def broken(content: Any) -> Any:
        raise RuntimeError("the SBOM could not be made")

    monkeypatch.setattr(pack, "cyclonedx", broken)
    again = tmp_path / "again" / "p.tar.gz"
    with pytest.raises(RuntimeError, match="the SBOM could not be made"):
        pack_archive(PackOptions(prefix=small_env, output=again))
    assert list(again.parent.iterdir()) == []  # no archive, manifest or SBOM, no .part


# ---------------------------------------------------------------- pip-installed files


class _Recorder:
    """An archive that keeps what each file became and through which call."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, bytes | str]] = {}

    def add(self, source: str, target: str) -> None:
        path = Path(source)
        if path.is_symlink():
            self.entries[target] = ("add", f"-> {os.readlink(path)}")
        elif path.is_dir():
            self.entries[target] = ("add", "dir")
        else:
            self.entries[target] = ("add", path.read_bytes())

    def add_bytes(self, source: str, data: bytes, target: str) -> None:
        self.entries[target] = ("add_bytes", data)


@uncached
def test_streamed_pip_files_pack_as_conda_pack_would(small_env: Path, tmp_path: Path) -> None:
    """Files pip installed are streamed, not read whole; the archive's bytes and
    conda-unpack's prefix list are what conda-pack's own ``Packer.add`` gives."""
    from conda_pack.core import CondaEnv, Packer

    from bundler.artifact.pack import _add
    from bundler.artifact.prefix import Prefix

    prefix = tmp_path / "env"
    shutil.copytree(small_env, prefix, symlinks=True)
    site = next(prefix.glob("lib/python3.*/site-packages"))
    extra = site / "extra"
    extra.mkdir()
    text = f"HOME = '{prefix}/share'\n".encode()
    straddle = b"x" * ((1 << 16) - 1) + "é".encode() + b"\n"  # é split across two blocks
    late = b"a" * (3 << 16) + b"\xff"
    files = {
        "paths.py": text,
        "straddle.txt": straddle,
        "late.bin": late,
        "empty.txt": b"",
        "lib.so": b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 300,
    }
    for name, data in files.items():
        (extra / name).write_bytes(data)
    (extra / "link.so").symlink_to("lib.so")
    script = prefix / "bin" / "extra-tool"
    script.write_bytes(f"#!{prefix}/bin/python\nprint('hi')\n".encode())
    script.chmod(0o755)

    env = CondaEnv.from_prefix(str(prefix))
    model = Prefix.read(prefix)  # what pack walked: whether a pip file is a regular file
    reference, ours = _Recorder(), _Recorder()
    ref_packer, our_packer = Packer(str(prefix), reference), Packer(str(prefix), ours)
    for f in env.files:
        ref_packer.add(f)
        _add(our_packer, f, model)

    assert {t: e[1] for t, e in ours.entries.items()} == {
        t: e[1] for t, e in reference.entries.items()
    }
    assert sorted(our_packer.prefixes) == sorted(ref_packer.prefixes)
    rel = str(extra.relative_to(prefix))
    recorded = {p[0] for p in our_packer.prefixes}
    assert {f"{rel}/{n}" for n in ("paths.py", "straddle.txt", "empty.txt")} <= recorded
    assert not {f"{rel}/{n}" for n in ("late.bin", "lib.so")} & recorded
    # the pip files went through the streaming path, the bin/ script through conda-pack's
    assert all(ours.entries[f"{rel}/{n}"][0] == "add" for n in files)
    assert ours.entries["bin/extra-tool"][0] == "add_bytes"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", True),
        (b"plain\n", True),
        (b"x" * ((1 << 16) - 1) + "€".encode(), True),  # three bytes across a block edge
        (b"x" * (5 << 16) + b"\xc3", False),  # cut short at the very end
        (b"\x00\xff" + b"y" * (1 << 17), False),
    ],
)
def test_is_utf8_matches_decoding_the_whole_file(tmp_path: Path, data: bytes, text: bool) -> None:
    from bundler.artifact.pack import is_utf8

    path = tmp_path / "f"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
        whole = True
    except UnicodeDecodeError:
        whole = False
    assert is_utf8(str(path)) is whole is text
