"""The same lock gives the same archive bytes on another machine, user or checkout.

Each pack runs the real command line in a subprocess, under its own ``HOME``,
``TMPDIR``, ``BUNDLER_CACHE_DIR`` and workspace path (a copy of the locked workspace).
As root, a second pack also runs as ``nobody`` (``setpriv``): bundler, its
dependencies, the workspace and the channel must then be readable by that user, so
that test locks its own workspace against a world-readable copy of the test channel
and runs bundler with a Python that ``nobody`` can reach (the one inside an archive
bundler just packed; this machine's own interpreter may live under a private home).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import bundler
from bundler.build import build_prefix_path, build_root
from tests.support.fixtures import copy_workspace
from tests.support.workspace import make_workspace

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(
    ws: Path, out: Path, home: Path, tmp: Path, cache: Path, variant: str, prefix: list[str]
) -> subprocess.CompletedProcess[str]:
    for d in (home, tmp, out.parent):
        d.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BUNDLER_", "XDG_", "PYTHON")) and k not in ("HOME", "TMPDIR")
    }
    env.update(HOME=str(home), TMPDIR=str(tmp), BUNDLER_CACHE_DIR=str(cache))
    return subprocess.run(
        [*prefix, "-m", "bundler", "pack", variant, "-q", "-o", str(out)],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _copy_cache(src: Path, dest: Path) -> None:
    """Another cache directory with the same packages: hard links where possible."""
    if subprocess.run(["cp", "-al", str(src), str(dest)], check=False).returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


def _host_strings_in(archive: Path, needles: list[str]) -> list[str]:
    """The needles that occur anywhere in the uncompressed tar stream."""
    found: set[str] = set()
    keep = max(len(n) for n in needles)
    tail = b""
    with gzip.open(archive) as fh:
        while chunk := fh.read(1 << 24):
            window = tail + chunk
            found.update(n for n in needles if n.encode() in window)
            tail = window[-keep:]
    return sorted(found)


def test_same_lock_same_bytes_with_other_home_tmpdir_cache_and_workspace(
    locked_workspace: Path, bundler_cache: Path, tmp_path: Path
) -> None:
    runs = {}
    for name, where in (("one", tmp_path / "one"), ("two", tmp_path / "b" / "much" / "deeper")):
        ws = copy_workspace(locked_workspace, where / "workspace")
        cache = bundler_cache if name == "one" else where / "cache"
        if name == "two":
            _copy_cache(bundler_cache, cache)
        out = where / "dist" / "app.tar.gz"
        proc = _pack(
            ws, out, where / "home", where / "tmp", cache, "app", [sys.executable]
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs[name] = (out, ws, cache, where)
    (one, *_), (two, ws2, cache2, where2) = runs["one"], runs["two"]
    assert _sha(one) == _sha(two)
    m1 = json.loads((one.parent / "app.tar.gz.json").read_text())
    m2 = json.loads((two.parent / "app.tar.gz.json").read_text())
    assert m1 == m2  # nothing in the manifest differs either
    assert m1["build_prefix"] == str(build_prefix_path("app", "linux-64"))
    assert m1["build_prefix"].startswith(str(build_root()))
    # and no path of either machine's state made it into the archive
    needles = [str(ws2), str(cache2), str(where2 / "home"), str(where2 / "tmp"), str(tmp_path)]
    assert _host_strings_in(two, needles) == []


# ---------------------------------------------------------------- another uid


def _setpriv() -> list[str] | None:
    tool = shutil.which("setpriv")
    if os.geteuid() != 0 or tool is None:
        return None
    return [tool, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory that ``nobody`` can read (pytest's own are private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="bundler-uid-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _readable(path: Path) -> None:
    subprocess.run(["chmod", "-R", "a+rX", str(path)], check=True)


def test_same_bytes_when_another_user_packs(
    local_channel: Path, bundler_cache: Path, shared_dir: Path
) -> None:
    """As root: the second pack runs as ``nobody``; otherwise as this user.

    Without root there is no second user to switch to; the path that used to hold
    the uid (the build prefix) is checked in test_build_units then.
    """
    from bundler.solve.lock import LockOptions, lock_variants
    from bundler.variants import load_workspace

    channel = shutil.copytree(local_channel, shared_dir / "channel")
    ws1 = make_workspace(shared_dir / "ws1", channel)
    lock_variants(load_workspace(ws1), LockOptions(variants=("gpuapp",)))
    first = shared_dir / "one" / "gpuapp.tar.gz"
    proc = _pack(
        ws1, first, shared_dir / "h1", shared_dir / "t1", bundler_cache, "gpuapp",
        [sys.executable],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    switch = _setpriv()
    python = [sys.executable]
    if switch is not None:
        # bundler's code and dependencies, run by a Python that nobody can reach
        driver = shared_dir / "driver"
        with tarfile.open(first) as tar:
            tar.extractall(driver, filter="tar")
        paths = [str(Path(bundler.__file__).parent.parent), sysconfig.get_paths()["purelib"]]
        python = ["env", f"PYTHONPATH={os.pathsep.join(paths)}", str(driver / "bin" / "python")]
    ws2 = copy_workspace(ws1, shared_dir / "elsewhere" / "ws2")
    second = shared_dir / "two" / "gpuapp.tar.gz"
    mine = [shared_dir / n for n in ("h2", "t2", "c2", "two")]
    for d in mine:
        d.mkdir(parents=True)
    _readable(shared_dir)
    if switch is not None:
        subprocess.run(["chown", "-R", "nobody:nogroup", *map(str, mine)], check=True)
    proc = _pack(ws2, second, *mine[:3], "gpuapp", [*(switch or []), *python])
    assert proc.returncode == 0, proc.stderr
    if switch is not None:
        assert second.stat().st_uid != os.getuid()  # really written by nobody
    assert _sha(first) == _sha(second)
