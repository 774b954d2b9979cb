"""A tiny Spark-like base image made from this machine's own files, without any registry.

The image tests need a base image, and no registry is reachable.  This one holds
what an executor image needs to run a packed environment and nothing more:

- ``/bin/sh`` and ``/usr/bin/env`` from the host, the C library's own sonames, and
  what manylinux wheels may take from the system (``libgcc_s``, ``libstdc++``, ``libz``);
- ``/etc/passwd`` and ``/etc/group`` with the Spark user (uid 185), as in the Spark
  images, ``/tmp``, and ``/opt/spark/work-dir`` writable by that user;
- the Spark images' config: ``USER 185``, ``WORKDIR /opt/spark/work-dir``,
  ``SPARK_HOME=/opt/spark`` (no Spark inside: the test variants have no pyspark).

It is committed with ``buildah from scratch`` / ``buildah add`` / ``buildah commit``
into the storage that :func:`storage_env` selects (vfs, under the test cache, so the
developer's own image store is left alone), named ``localhost/bundler-test-base:<key>``
where the key changes with the files and this source.  About 8 MB.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bundler.proc import run

IMAGE_REPO = "localhost/bundler-test-base"
SPARK_UID = 185
#: Sonames that the C library provides, plus what manylinux wheels may take from the
#: system: the C++ runtime and zlib (numpy's and pyarrow's wheels link libz.so.1).
RUNTIME_SONAMES = (
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libcrypt.so.1",
    "libanl.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
)
PROGRAMS = ("/bin/sh", "/usr/bin/env")
ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SPARK_HOME=/opt/spark",
    "LANG=C.UTF-8",
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nspark:x:185:185:Spark:/opt/spark:/bin/sh\n"
GROUP = "root:x:0:\nspark:x:185:\n"

_LDD_ARROW = re.compile(r"^\s*(\S+)\s+=>\s+(/\S+)")
_LDD_INTERP = re.compile(r"^\s*(/\S+)\s+\(0x")


def storage_env(root: Path) -> dict[str, str]:
    """Environment that points buildah (and ``bundler image``) at a private vfs store.

    vfs and chroot isolation work as root anywhere, in a container or a VM, with no
    kernel overlay support and no OCI runtime.
    """
    conf = root / "storage.conf"
    text = (
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "storage"}"\nrunroot = "{root / "run"}"\n'
    )
    if not conf.is_file() or conf.read_text() != text:
        root.mkdir(parents=True, exist_ok=True)
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, conf)
    return {
        "CONTAINERS_STORAGE_CONF": str(conf),
        "STORAGE_DRIVER": "vfs",
        "BUILDAH_ISOLATION": "chroot",
    }


def _ldd(path: str) -> list[tuple[str, str]]:
    """(path inside the image, host file) for each library ``path`` loads, ld.so included."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if m := _LDD_ARROW.match(line):
            found.append((m.group(2), m.group(2)))
        elif m := _LDD_INTERP.match(line):
            found.append((m.group(1), m.group(1)))
    return found


def rootfs_files() -> dict[str, Path]:
    """Path inside the image -> host file whose content goes there (symlinks resolved)."""
    files: dict[str, Path] = {}
    libdir: Path | None = None
    for prog in PROGRAMS:
        files[prog] = Path(prog).resolve()
        for inside, host in _ldd(prog):
            files[inside] = Path(host).resolve()
            if Path(inside).name == "libc.so.6":
                libdir = Path(inside).parent
    if libdir is None:
        raise RuntimeError("ldd /bin/sh shows no libc.so.6; cannot assemble a base image")
    for soname in RUNTIME_SONAMES:
        lib = libdir / soname
        if lib.exists():
            files[str(lib)] = lib.resolve()
    return files


def image_key(files: dict[str, Path]) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    for inside, host in sorted(files.items()):
        h.update(inside.encode() + b"\0")
        h.update(hashlib.sha256(host.read_bytes()).digest())
    return h.hexdigest()[:16]


def write_rootfs_tar(files: dict[str, Path], dest: Path) -> Path:
    """A tar of the root file system: owners 0 (the work dir 185), fixed times."""
    dirs = {"/etc", "/tmp", "/proc", "/sys", "/dev", "/root", "/opt", "/opt/spark"}
    for inside in files:
        parent = Path(inside).parent
        while str(parent) != "/":
            dirs.add(str(parent))
            parent = parent.parent

    def info(name: str, kind: bytes, mode: int, uid: int = 0, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type, ti.mode, ti.uid, ti.gid, ti.size, ti.mtime = kind, mode, uid, 0, size, 0
        return ti

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(info(d, tarfile.DIRTYPE, 0o1777 if d == "/tmp" else 0o755))
        tar.addfile(info("/opt/spark/work-dir", tarfile.DIRTYPE, 0o775, uid=SPARK_UID))
        for inside, host in sorted(files.items()):
            data = host.read_bytes()
            tar.addfile(info(inside, tarfile.REGTYPE, 0o755, size=len(data)), io.BytesIO(data))
        for name, text in (("/etc/passwd", PASSWD), ("/etc/group", GROUP)):
            data = text.encode()
            tar.addfile(info(name, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    return dest


def image_exists(name: str) -> bool:
    try:
        run(["buildah", "inspect", "--type", "image", name], what=f"inspect {name}")
    except Exception:
        return False
    return True


def _remove_stale(keep: str) -> None:
    """Remove base images that older versions of this file (or other hosts' libraries) made."""
    out = run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], what="buildah images").stdout
    for image in out.split():
        if image.startswith(IMAGE_REPO + ":") and image != keep:
            run(["buildah", "rmi", image], what=f"buildah rmi {image}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_base_image(cache: Path) -> str:
    """Build the base image in the current buildah storage unless it is already there.

    The storage is whatever the environment selects; the test fixture sets
    :func:`storage_env` first.  Returns the image name.
    """
    if shutil.which("buildah") is None:
        raise RuntimeError("buildah is not installed")
    files = rootfs_files()
    name = f"{IMAGE_REPO}:{image_key(files)}"
    with _locked(cache / ".baseimage.lock"):
        _remove_stale(name)
        if image_exists(name):
            return name
        with tempfile.TemporaryDirectory(prefix="bundler-baseimage-") as tmp:
            rootfs = write_rootfs_tar(files, Path(tmp) / "rootfs.tar")
            ctr = run(["buildah", "from", "scratch"], what="buildah from scratch").stdout.strip()
            try:
                run(["buildah", "add", ctr, str(rootfs), "/"], what="buildah add rootfs")
                config = ["buildah", "config", "--user", str(SPARK_UID)]
                config += ["--workingdir", "/opt/spark/work-dir", "--os", "linux"]
                config += ["--label", "org.opencontainers.image.title=bundler-test-base"]
                for item in ENV:
                    config += ["--env", item]
                run([*config, ctr], what="buildah config")
                run(["buildah", "commit", "--quiet", ctr, name], what=f"buildah commit {name}")
            finally:
                run(["buildah", "rm", ctr], what="buildah rm")
    return name


def image_config(name: str) -> dict[str, object]:
    """``buildah inspect`` of an image, parsed."""
    out = run(["buildah", "inspect", "--type", "image", name], what=f"inspect {name}").stdout
    data: dict[str, object] = json.loads(out)
    return data


def require_base_image(cache: Path) -> tuple[str, dict[str, str]]:
    """(the base image, the storage settings that find it) for a test that builds images.

    Fails the test when buildah or root is missing, unless BUNDLER_SKIP_IMAGE_TESTS=1
    says to leave the image tests out on purpose.
    """
    import pytest

    if shutil.which("buildah") is None or os.geteuid() != 0:
        if os.environ.get("BUNDLER_SKIP_IMAGE_TESTS") == "1":
            pytest.skip("BUNDLER_SKIP_IMAGE_TESTS=1 and buildah or root is missing")
        pytest.fail(
            "the image tests need buildah, run as root: run .ci/install-image-tools.sh "
            "(or set BUNDLER_SKIP_IMAGE_TESTS=1 to skip them)",
            pytrace=False,
        )
    store = cache / "containers"
    settings = storage_env(store)
    with environ(settings):
        return ensure_base_image(store), settings


@contextmanager
def environ(settings: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``settings`` for the duration; restored afterwards."""
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
