"""Small archives and manifests written directly, without bundler pack."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

from bundler.artifact.manifest import manifest_path
from tests.support.envs import PYVER


def pack_dir(src: Path, archive: Path, *, zip_links: bool = True) -> Path:
    """Archive the contents of ``src`` (no top-level directory), as conda-pack does.

    A zip gets symlink entries, or with ``zip_links=False`` a copy of each linked file.
    """
    children = sorted(src.iterdir())
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for path in sorted(src.rglob("*")):
                name = path.relative_to(src).as_posix()
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode) and zip_links:
                    zi = zipfile.ZipInfo(name)
                    zi.create_system = 3
                    zi.external_attr = (stat.S_IFLNK | 0o777) << 16
                    zf.writestr(zi, os.readlink(path))
                elif path.is_dir():
                    zf.write(path, name + "/")
                else:
                    zf.write(path, name)
        return archive
    mode = "w:gz" if archive.name.endswith((".tar.gz", ".tgz")) else "w"
    kwargs = {"compresslevel": 1} if mode == "w:gz" else {}
    with tarfile.open(archive, mode, **kwargs) as tar:  # type: ignore[call-overload]
        for child in children:
            tar.add(child, arcname=child.name)
    return archive


def write_manifest(archive: Path, **fields: object) -> Path:
    data: dict[str, object] = {
        "bundler_version": "0.1.0",
        "variant": "test",
        "platform": "linux-64",
        "inputs_hash": None,
        "python": PYVER,
        "imports": [],
        "gpu_imports": [],
        "archive": {
            "name": archive.name,
            "format": "tar.gz",
            "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
            "size": archive.stat().st_size,
        },
        "packages": [{"name": "python", "version": PYVER, "manager": "conda", "size": 1}],
    }
    data.update(fields)
    path = manifest_path(archive)
    path.write_text(json.dumps(data))
    return path


def tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz, or a plain .tar when ``path`` ends so."""
    with tarfile.open(path, "w" if path.suffix == ".tar" else "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
