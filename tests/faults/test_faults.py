"""Faults made for real: a full disk, a read-only target, kill -9, damaged caches, bad locks.

Nothing here monkeypatches a failure: the file systems are real tmpfs and bind mounts
(root only), the kills are real SIGKILLs of a running ``bundler`` (timed by its own
progress lines and by files appearing), the cache damage is done to real cache files
and the lock edits to a real lock.  Each test checks the one ``error:`` line, the exit
code, that nothing is left under the final name, and that the next run succeeds.

The conda package cache and the build root are private to this module (its damage
must not reach other tests); the wheel cache is the shared one, read-only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bundler.build import build_prefix_path, processes_using
from bundler.errors import mount_point
from tests.support.fixtures import copy_workspace

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
SIX_ENTRY = "six-1.17.0-pyh_bundlertest_0"


@pytest.fixture(scope="module")
def fault_env(
    bundler_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The environment for ``bundler``: a private package cache and build root."""
    root = tmp_path_factory.mktemp("faults")
    cache = root / "cache"
    cache.mkdir()
    (bundler_cache / "wheels").mkdir(parents=True, exist_ok=True)
    (cache / "wheels").symlink_to(bundler_cache / "wheels")
    yield {
        **os.environ,
        "BUNDLER_CACHE_DIR": str(cache),
        "BUNDLER_BUILD_ROOT": str(root / "build"),
    }


@pytest.fixture
def workspace(locked_workspace: Path, tmp_path: Path) -> Path:
    return copy_workspace(locked_workspace, tmp_path / "ws")


def bundler(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bundler", *args], env=env, text=True, capture_output=True
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def pack(env: dict[str, str], ws: Path, variant: str, out: Path) -> str:
    """Pack and return the archive's sha256 (from --json), failing on a non-zero exit."""
    proc = bundler(env, "pack", variant, "-w", str(ws), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["sha256"])


@pytest.fixture(scope="module")
def reference(
    fault_env: dict[str, str], locked_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """The sha256 of an uninterrupted pack of a variant (made once, with this env)."""
    out = tmp_path_factory.mktemp("reference")
    done: dict[str, str] = {}

    def get(variant: str) -> str:
        if variant not in done:
            done[variant] = pack(fault_env, locked_workspace, variant, out / f"{variant}.tar.gz")
        return done[variant]

    return get


def litter(directory: Path, name: str) -> list[str]:
    """Files under ``directory`` that are ``name`` or its manifest (never partial ones)."""
    return sorted(p.name for p in directory.iterdir() if p.name in (name, f"{name}.json"))


# ---------------------------------------------------------------- full disk, read-only


@pytest.fixture
def mount_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory to mount over; whatever is mounted there is unmounted after."""
    point = tmp_path / "mnt"
    point.mkdir()
    try:
        yield point
    finally:
        # os.path.ismount misses a bind mount of a directory on the same file system
        while mount_point(point) == point:
            subprocess.run(["umount", str(point)], check=True)


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@ROOT_ONLY
def test_full_disk_is_one_line_and_nothing_is_left(
    fault_env: dict[str, str], workspace: Path, mount_dir: Path, reference: Callable[[str], str]
) -> None:
    sh("mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount_dir))
    out = mount_dir / "p.tar.gz"
    # The probe environment (64 MB installed) packs to 26 MB: this fails while writing.
    proc = bundler(fault_env, "pack", "gpuapp", "-w", str(workspace), "-o", str(out))
    line = error_line(proc)
    assert proc.returncode == 2
    assert f"no space left on {mount_dir} writing {out}" in line, line
    assert "20.0 MiB free there" in line, line
    assert list(mount_dir.iterdir()) == []  # neither the archive nor a temporary file

    # Too small for even a quarter of what goes in: refused before writing a byte.
    sh("mount", "-o", "remount,size=4m", str(mount_dir))
    proc = bundler(fault_env, "pack", "gpuapp", "-w", str(workspace), "-o", str(out))
    line = error_line(proc)
    assert proc.returncode == 2
    assert f"not enough space on {mount_dir} for {out}" in line, line
    assert "4.0 MiB free" in line and "or choose another -o" in line, line
    assert list(mount_dir.iterdir()) == []

    sh("mount", "-o", "remount,size=100m", str(mount_dir))
    assert pack(fault_env, workspace, "gpuapp", out) == reference("gpuapp")


@ROOT_ONLY
def test_read_only_target_is_refused_before_the_build(
    fault_env: dict[str, str], workspace: Path, mount_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    sh("mount", "--bind", str(source), str(mount_dir))
    sh("mount", "-o", "remount,ro,bind", str(mount_dir))
    for out in (mount_dir / "p.tar.gz", mount_dir / "sub" / "p.tar.gz"):
        proc = bundler(fault_env, "pack", "gpuapp", "-w", str(workspace), "-o", str(out))
        line = error_line(proc)
        assert proc.returncode == 2
        assert f"{mount_dir} is read-only: cannot write" in line, line
        assert "choose a writable -o" in line, line
        assert "installing" not in proc.stdout + proc.stderr  # refused before the build
    assert list(source.iterdir()) == []
    sh("mount", "-o", "remount,rw,bind", str(mount_dir))
    pack(fault_env, workspace, "gpuapp", mount_dir / "p.tar.gz")
    assert litter(source, "p.tar.gz") == ["p.tar.gz", "p.tar.gz.json"]


# ---------------------------------------------------------------- kill -9


def kill_when(
    env: dict[str, str], args: list[str], line_mark: str, ready: Callable[[], bool]
) -> None:
    """Start ``bundler ARGS``; once it printed ``line_mark`` and ``ready()``, SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bundler", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line_mark in line:
                while not ready():
                    assert proc.poll() is None, "".join(seen)  # finished before the fault
                    time.sleep(0.05)
                proc.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(f"never printed {line_mark!r}:\n{''.join(seen)}")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def no_process_uses(prefix: Path) -> list[int]:
    """The processes still using ``prefix``, after giving killed children time to exit."""
    for _ in range(100):
        pids = processes_using(prefix)
        if not pids:
            break
        time.sleep(0.1)
    return pids


def _partial(directory: Path) -> Callable[[], bool]:
    """True once a temporary archive in ``directory`` holds bytes: packing has begun."""

    def started() -> bool:
        for path in directory.iterdir():
            with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
                if path.name.endswith(".part") and path.stat().st_size > 0:
                    return True
        return False

    return started


@pytest.mark.parametrize(
    ("variant", "phase"),
    [("gpuapp", "installing"), ("app", "pip"), ("gpuapp", "packing")],
)
def test_killed_pack_next_pack_gives_the_same_bytes(
    fault_env: dict[str, str],
    workspace: Path,
    reference: Callable[[str], str],
    variant: str,
    phase: str,
) -> None:
    want = reference(variant)
    dist = workspace / "dist"
    out = dist / f"{variant}.tar.gz"
    prefix = build_prefix_path(variant, "linux-64", Path(fault_env["BUNDLER_BUILD_ROOT"]))
    site = prefix / "lib" / "python3.11" / "site-packages"
    mark, ready = {
        "installing": ("installing", lambda: (prefix / "conda-meta").is_dir()),
        "pip": ("pip install of", lambda: (site / "numpy").is_dir()),
        "packing": ("packing", lambda: dist.is_dir() and _partial(dist)()),
    }[phase]
    kill_when(fault_env, ["pack", variant, "-w", str(workspace), "-o", str(out)], mark, ready)
    if dist.is_dir():
        assert litter(dist, out.name) == []  # killed: nothing under the final names
    assert no_process_uses(prefix) == []  # pip and the like died with bundler
    assert pack(fault_env, workspace, variant, out) == want
    assert [p.name for p in dist.iterdir() if p.name.endswith(".part")] == []  # swept
    # pip's requirements directory of the killed pack went with its prefix
    assert list(prefix.parent.glob(f".{prefix.name[:40]}.req-*")) == []


def test_killed_lock_leaves_the_lock_whole(
    fault_env: dict[str, str], workspace: Path, locked_workspace: Path
) -> None:
    lock = workspace / "locks" / "gpuapp.conda-lock.yml"
    lock.unlink()
    args = ["lock", "gpuapp", "-w", str(workspace)]
    kill_when(fault_env, args, "solving", lambda: True)
    assert (
        not lock.exists()
        or lock.read_bytes() == (locked_workspace / "locks" / lock.name).read_bytes()
    )
    proc = bundler(fault_env, *args)
    assert proc.returncode == 0, proc.stderr
    assert lock.read_bytes() == (locked_workspace / "locks" / lock.name).read_bytes()


# ---------------------------------------------------------------- damaged caches, bad locks


def test_damaged_package_cache_heals(
    fault_env: dict[str, str], workspace: Path, reference: Callable[[str], str]
) -> None:
    want = reference("gpuapp")  # the cache now holds six
    entry = Path(fault_env["BUNDLER_CACHE_DIR"]) / "pkgs" / SIX_ENTRY
    six = entry / "site-packages" / "six.py"
    for damage in ("truncate", "alter"):
        text = six.read_bytes()
        six.write_bytes(text[:100] if damage == "truncate" else text.replace(b"six", b"s1x"))
        proc = bundler(fault_env, "pack", "gpuapp", "-w", str(workspace), "--json")
        assert proc.returncode == 0, proc.stderr
        warnings = [ln for ln in proc.stderr.splitlines() if "package cache" in ln]
        assert len(warnings) == 1 and f"{entry} has site-packages/six.py" in warnings[0]
        assert json.loads(proc.stdout)["sha256"] == want
        assert six.read_bytes() == text


def test_damaged_wheel_in_cache_heals(tmp_path: Path) -> None:
    from bundler.build import fetch_wheel
    from bundler.digest import sha256_file
    from bundler.events import RecordingReporter
    from bundler.solve.lockfile import LockedPackage

    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel's bytes" * 1000)
    pkg = LockedPackage("demo", "1.0", "pip", "linux-64", wheel.as_uri(), sha256_file(wheel))
    cached = fetch_wheel(pkg, tmp_path / "cache")
    cached.write_bytes(cached.read_bytes()[:500])  # a download cut short, by hand
    reporter = RecordingReporter()
    assert fetch_wheel(pkg, tmp_path / "cache", reporter) == cached
    assert cached.read_bytes() == wheel.read_bytes()
    assert len(reporter.warnings) == 1 and "does not match its sha256" in reporter.warnings[0]


def _edit_six(lock: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(lock.read_text())
    six = next(p for p in data["package"] if p["name"] == "six")
    edit(six)
    lock.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("field", "edit", "says"),
    [
        ("hash.sha256", lambda p: p["hash"].update(sha256=int("1" * 64)), "is a number (1111"),
        ("url", lambda p: p.pop("url"), "is missing"),
        ("version", lambda p: p.update(version=1.17), "is a number (1.17)"),
        ("sha256", lambda p: p["hash"].update(sha256="ab" * 32), "does not match"),
    ],
)
def test_tampered_lock_is_one_line_naming_the_field(
    fault_env: dict[str, str],
    workspace: Path,
    locked_workspace: Path,
    field: str,
    edit: Callable[[dict[str, Any]], None],
    says: str,
) -> None:
    lock = workspace / "locks" / "gpuapp.conda-lock.yml"
    _edit_six(lock, edit)
    out = workspace / "dist" / "g.tar.gz"
    proc = bundler(fault_env, "pack", "gpuapp", "-w", str(workspace), "-o", str(out))
    line = error_line(proc)
    assert proc.returncode == 2
    assert f"{lock}: package six:" in line and field in line and says in line, line
    assert not out.exists()
    lock.write_bytes((locked_workspace / "locks" / lock.name).read_bytes())
    pack(fault_env, workspace, "gpuapp", out)
