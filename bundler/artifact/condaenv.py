"""conda-pack's ``CondaEnv`` built from a ``Prefix``, without walking the prefix again.

``CondaEnv.from_prefix`` (conda-pack's ``load_environment``) walks the prefix for its
file list, reads every conda-meta record and loads each package's file list (with the
prefix placeholders ``conda-unpack`` needs) from the package cache.  ``Prefix.read`` has
already walked the prefix and read the records, so ``conda_env`` takes the file list
and the records from it, and still loads each package with conda-pack's own
``load_managed_package``: the same ``File`` objects in the same order, so the archive's
bytes are the same.  Each step below is ``load_environment``'s (conda-pack 0.9), and
says which.
"""

from __future__ import annotations

import os
from typing import Any

from bundler.artifact.prefix import Prefix

#: Top-level names conda-pack's ``load_files`` never packs (a base environment's).
_IGNORED = frozenset(
    {
        "pkgs",
        "envs",
        "conda-bld",
        ".conda_lock",
        "users",
        "conda-recipes",
        ".index",
        ".unionfs",
        ".nonadmin",
        "python.app",
        "Launcher.app",
    }
)


def conda_env(prefix: Prefix) -> Any:
    """conda-pack's ``CondaEnv`` of ``prefix``; raises what ``from_prefix`` raises."""
    from conda_pack import core

    root = os.path.abspath(prefix.root)
    if "conda-meta" not in prefix.dirs:
        raise core.CondaPackException(f"Path {root!r} is not a conda environment")
    site_packages = _site_packages(prefix, root)
    if site_packages is not None:
        _check_no_editable(prefix, root, site_packages)
    all_files = _load_files(prefix)
    files: list[Any] = []
    managed: set[str] = set()
    uncached: list[tuple[str, str, str]] = []
    missing: dict[tuple[str, str], set[str]] = {}
    for record in sorted(prefix.conda, key=lambda r: os.path.basename(r.meta)):
        info: Any = record.info
        pkg = info["link"]["source"] if info["link"] else ""
        if not os.path.exists(pkg):
            # package cache cleared: conda-pack handles the prefix itself (file_mode unknown)
            new = [
                core.File(os.path.join(root, f), f, is_conda=True, file_mode="unknown")
                for f in info["files"]
                if f != ".nonadmin"
            ]
            uncached.append((info["name"], info["version"], info["url"]))
        else:
            new = core.load_managed_package(info, root, site_packages, all_files)
        targets = {f.target for f in new}
        if targets - all_files:
            missing[(info["name"], info["version"])] = targets - all_files
        managed |= targets
        files.extend(new)
        managed.add(record.meta)
        files.append(core.File(os.path.join(root, record.meta), record.meta, is_conda=True))
    _finish(prefix, root, files, managed, all_files, missing, uncached)
    return core.CondaEnv(root, files)


def _finish(
    prefix: Prefix,
    root: str,
    files: list[Any],
    managed: set[str],
    all_files: set[str],
    missing: dict[tuple[str, str], set[str]],
    uncached: list[tuple[str, str, str]],
) -> None:
    """conda-meta/history, the missing-files error, the unmanaged files, the uncached warning."""
    from conda_pack import core
    from conda_pack.compat import find_py_source

    if "conda-meta/history" in prefix.entries:
        managed.add("conda-meta/history")
        history = os.path.join(root, "conda-meta", "history")
        files.append(core.File(history, "conda-meta/history", is_conda=True))
    if missing:
        raise core.CondaPackException(core._missing_files_error.format(_missing(missing)))
    unmanaged = all_files - managed
    # older conda put its own scripts into environments on activation
    unmanaged -= {f"{core.BIN_DIR}/{name}" for name in ("conda", "activate", "deactivate")}
    files.extend(
        core.File(os.path.join(root, p), p, is_conda=False, file_mode="unknown")
        for p in unmanaged
        if find_py_source(p) not in managed
    )
    if uncached:
        listed = "\n".join("- {}={!r}   {}".format(*u) for u in uncached)
        core.context.warn(core._uncached_warning.format(listed))


def _missing(missing: dict[tuple[str, str], set[str]]) -> str:
    lines = []
    for (name, version), paths in missing.items():
        lines.append(f"- {name} {version}:")
        shown = sorted(paths)
        if len(shown) > 4:
            shown = [*shown[:3], f"+ {len(shown) - 3} others"]
        lines.extend("    " + p for p in shown)
    return "\n".join(lines)


def _site_packages(prefix: Prefix, root: str) -> str | None:
    """``find_site_packages``: the one python's site-packages, None without python."""
    from conda_pack.core import CondaPackException

    metas = [r for r in prefix.conda if os.path.basename(r.meta).startswith("python-")]
    pythons = [r for r in metas if r.name == "python"]
    if len(pythons) > 1:
        raise CondaPackException(
            f"Unexpected failure, multiple versions of python found in prefix {root!r}"
        )
    if not pythons:
        return None
    return "lib/python{}/site-packages".format(".".join(pythons[0].version.split(".")[:2]))


def _check_no_editable(prefix: Prefix, root: str, site_packages: str) -> None:
    """``check_no_editable_packages``, run only where a ``direct_url.json`` is there."""
    from conda_pack.core import check_no_editable_packages

    base = site_packages + "/"
    if any(
        p.startswith(base) and p.endswith(".dist-info/direct_url.json") and p.count("/") == 4
        for p in prefix.entries
    ):
        check_no_editable_packages(root, site_packages)


def _load_files(prefix: Prefix) -> set[str]:
    """``load_files``: every file and symlink, and every empty directory, except the
    ignored top-level names (and names ending in ``~`` or ``.DS_STORE`` at the top)."""

    def kept(path: str) -> bool:
        top = path.split("/", 1)[0]
        return top not in _IGNORED and not top.endswith(("~", ".DS_STORE"))

    files = {
        p
        for p, e in prefix.entries.items()
        # at the top, only files and symlinks (load_files walks nothing else there)
        if kept(p) and ("/" in p or e.is_file or e.is_link)
    }
    return files | {d for d in prefix.empty_dirs if kept(d)}
