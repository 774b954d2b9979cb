"""The pieces behind the fault tests, each on its own: no solver, no pack."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundler.artifact.pack import check_space
from bundler.build import processes_using
from bundler.errors import FileSystemError, free_bytes, mount_point, os_error, shown_path
from bundler.errors import _unescape as unescape
from bundler.solve.lockfile import checked_entry


def test_enospc_names_the_mount_and_its_free_space(tmp_path: Path) -> None:
    out = tmp_path / ".p.tar.gz.ab_cd12x.part"  # an atomic temporary name
    exc = os_error(OSError(errno.ENOSPC, "No space left on device"), out)
    assert isinstance(exc, FileSystemError) and exc.exit_code == 2
    line = exc.one_line()
    mount = mount_point(tmp_path)
    assert line.startswith(f"no space left on {mount} writing {tmp_path / 'p.tar.gz'} (")
    assert " MiB free there; free space on " in line


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.EROFS, "is read-only: cannot write"),
        (errno.EACCES, "permission denied:"),
        (errno.EPERM, "permission denied:"),
        (errno.ENOENT, "no such file or directory:"),
        (errno.EDQUOT, "disk quota exceeded on"),
    ],
)
def test_each_refusal_is_one_line_naming_the_path(tmp_path: Path, code: int, says: str) -> None:
    target = tmp_path / "out" / "p.zip"
    exc = os_error(OSError(code, os.strerror(code), str(target)))
    assert exc is not None
    line = exc.one_line()
    assert says in line and str(target) in line and "\n" not in line


def test_other_os_errors_stay_bugs() -> None:
    assert os_error(OSError(errno.EBADF, "Bad file descriptor")) is None
    assert os_error(OSError(errno.EIO, "Input/output error"), "/x") is None


def test_temporary_names_are_shown_as_the_final_name() -> None:
    assert shown_path("/d/.app.tar.gz.k2j_9xq1.part") == Path("/d/app.tar.gz")
    assert shown_path("/d/.app.tar.gz.json.k2j_9xq1.part") == Path("/d/app.tar.gz.json")
    assert shown_path("/d/app.tar.gz") == Path("/d/app.tar.gz")


def test_mount_point_of_a_missing_path_is_its_nearest_ancestors() -> None:
    assert mount_point("/proc/no/such/dir") == Path("/proc")
    assert unescape(r"/mnt/with\040space") == "/mnt/with space"


def test_check_space_refuses_with_both_figures(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)
    out = tmp_path / "big.tar.gz"
    with pytest.raises(FileSystemError, match=r"needs at least .* MiB \(a quarter of the"):
        check_space(out, free * 5, level=None)
    with pytest.raises(FileSystemError, match=r"\(all of the"):
        check_space(out, free + (1 << 30), level=0)
    with pytest.raises(FileSystemError, match=r"\(all of the"):  # a plain .tar is stored
        check_space(tmp_path / "big.tar", free + (1 << 30), level=None)
    check_space(out, 1 << 20, level=None)  # room enough: no error
    assert not out.exists()


def _entry(**fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": "six",
        "version": "1.17.0",
        "manager": "conda",
        "platform": "linux-64",
        "url": "file:///c/noarch/six.conda",
        "hash": {"sha256": "ab" * 32},
    }
    entry.update(fields)
    return entry


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"hash": {"sha256": int("7" * 64)}}, "field hash.sha256 is a number (7777"),
        ({"hash": {"sha256": "AB" * 32}}, "field hash.sha256 is a string (ABAB"),
        ({"hash": {}}, "field hash.sha256 is missing"),
        ({"url": None}, "field url is missing, not a string"),
        ({"version": 1.1}, "field version is a number (1.1), not a string"),
        ({"name": ["six"]}, "package #3: field name is a list"),
    ],
)
def test_malformed_lock_fields_name_lock_package_and_field(
    fields: dict[str, object], says: str
) -> None:
    from bundler.errors import LockStateError

    with pytest.raises(LockStateError) as info:
        checked_entry(Path("locks/v.conda-lock.yml"), 2, _entry(**fields))
    line = info.value.one_line()
    assert line.startswith("locks/v.conda-lock.yml: package ") and says in line, line
    assert checked_entry(Path("x"), 0, _entry()) == _entry()


def test_a_child_dies_with_a_killed_bundler(tmp_path: Path) -> None:
    """proc.run's child gets SIGKILL when the process that ran it is killed with -9."""
    marker = tmp_path / "child"
    child_code = (
        f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    script = (
        "import sys; from bundler.proc import run; "
        f"run([sys.executable, '-c', {child_code!r}], what='sleeper')"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        while not (marker.is_file() and marker.read_text()):
            assert parent.poll() is None
            time.sleep(0.05)
        child = int(marker.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone_soon(child)
    finally:
        parent.kill()
        parent.wait()


def _gone_soon(pid: int) -> bool:
    """Whether ``pid`` exits (or is a zombie) within a minute: a guard against hanging."""
    for _ in range(1200):
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_processes_using_finds_an_open_file_and_a_working_directory(tmp_path: Path) -> None:
    held = tmp_path / "prefix" / "held"
    held.parent.mkdir()
    held.write_text("x")
    code = f"import time; f = open({str(held)!r}); print('ready', flush=True); time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    other = subprocess.Popen(["sleep", "600"], cwd=held.parent)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert processes_using(held.parent) == sorted([proc.pid, other.pid])
        assert processes_using(tmp_path / "pre") == []  # a prefix of the name is not inside
    finally:
        for p in (proc, other):
            p.kill()
            p.wait()
    assert processes_using(held.parent) == []


def test_a_leftover_prefix_is_rebuilt_once_nothing_uses_it(tmp_path: Path) -> None:
    """What a killed pack leaves: its prefix, and a process still working in it."""
    from bundler.build import build_location, build_prefix_path
    from bundler.events import RecordingReporter

    prefix = build_prefix_path("left", "linux-64", tmp_path / "root")
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib" / "half-written").write_text("x")
    # pip's requirements directory, beside the prefix under the same lock
    scratch = prefix.parent / f".{prefix.name[:40]}.req-k2j9xq1"
    (scratch / "wheels").mkdir(parents=True)
    # An orphaned installer: still in the prefix for a while, then done.
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"], cwd=prefix)
    reporter = RecordingReporter()
    try:
        with build_location(prefix, reporter) as where:
            assert orphan.poll() is not None  # it was waited for, not raced
            assert list(where.iterdir()) == []  # and its leftovers removed
            assert not scratch.exists()
    finally:
        orphan.kill()
        orphan.wait()
    assert any(f"waiting for pid {orphan.pid}" in s for s in reporter.steps), reporter.steps


def test_sweep_removes_only_what_a_killed_writer_left(tmp_path: Path) -> None:
    from bundler.atomic import discard, sweep, temp_path

    final = tmp_path / "app.tar.gz"
    stale = tmp_path / ".app.tar.gz.k2j_9xq1.part"  # a writer killed with -9 left it
    stale.write_bytes(b"half")
    unrelated = [tmp_path / ".app.tar.gz.json.k2j_9xq1.part", tmp_path / "app.tar.gz"]
    for path in unrelated:
        path.write_bytes(b"other")
    # A live writer in another process: its temporary file survives our sweep.
    code = (
        "import sys; from pathlib import Path; from bundler.atomic import temp_path; "
        f"print(temp_path(Path({str(final)!r}), []), flush=True); sys.stdin.read()"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = Path(other.stdout.readline().strip())
        created: list[Path] = []
        ours = temp_path(final, created)  # sweeps first
        assert not stale.exists()
        assert theirs.exists() and ours.exists()
        assert all(p.exists() for p in unrelated)
        assert sweep(final) == []  # ours and theirs are both held
        discard(created)
    finally:
        other.kill()
        other.wait()
    assert sweep(final) == [theirs]  # its writer is gone now
