"""Unit tests: reading a workspace and merging overlays (no solver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.errors import UnknownVariantError, WorkspaceError
from bundler.solve.lock import plan_solves, virtual_packages
from bundler.variants import (
    EnvFile,
    load_workspace,
    merge_channels,
    merge_env_files,
    parse_env_file,
)
from tests.support.workspace import write


def _ws(tmp_path: Path, variants: str, **files: str) -> Path:
    write(tmp_path / "environments" / "variants.toml", variants)
    for name, text in files.items():
        write(tmp_path / "environments" / f"{name}.yml", text)
    return tmp_path


def test_overlay_merge_later_files_win(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.yml",
        """\
        channels: [conda-forge]
        dependencies:
          - python 3.11.*
          - pandas >=2
          - pip:
              - requests
              - Typing_Extensions>=4
        """,
    )
    b = write(
        tmp_path / "b.yml",
        """\
        channels: [rapidsai, conda-forge]
        dependencies:
          - pandas >=3,<3.1
          - cudf 26.08.*
          - pip:
              - typing-extensions>=4.12
        """,
    )
    merged = merge_env_files([parse_env_file(a), parse_env_file(b)])
    assert merged.channels == ("rapidsai", "conda-forge")
    assert merged.dependencies == ("python 3.11.*", "pandas >=3,<3.1", "cudf 26.08.*")
    assert merged.pip == ("requests", "typing-extensions>=4.12")


def _env(tmp_path: Path, name: str, channels: list[str]) -> EnvFile:
    body = f"channels: [{', '.join(channels)}]\n" if channels else ""
    return parse_env_file(write(tmp_path / f"{name}.yml", body + "dependencies: [python]\n"))


def test_channels_merge_as_a_suffix_union(tmp_path: Path) -> None:
    cf = _env(tmp_path, "cf", ["conda-forge"])
    rapids = _env(tmp_path, "rapids", ["rapidsai", "conda-forge"])
    bare = _env(tmp_path, "bare", [])
    # gpu-iceberg: base, gpu, iceberg; the order of the files does not matter.
    assert merge_channels([cf, rapids, cf]) == ("rapidsai", "conda-forge")
    assert merge_channels([rapids, cf]) == ("rapidsai", "conda-forge")
    assert merge_channels([cf, bare, cf]) == ("conda-forge",)
    assert merge_channels([bare]) == ()
    three = _env(tmp_path, "three", ["mine", "rapidsai", "conda-forge/"])
    assert merge_channels([cf, three, rapids]) == ("mine", "rapidsai", "conda-forge")


def test_channels_in_conflicting_order_are_refused(tmp_path: Path) -> None:
    rapids = _env(tmp_path, "rapids", ["rapidsai", "conda-forge"])
    other = _env(tmp_path, "other", ["nvidia", "conda-forge"])
    with pytest.raises(WorkspaceError, match=r"other\.yml: channels \[nvidia, conda-forge\]"):
        merge_channels([rapids, other])
    flipped = _env(tmp_path, "flipped", ["conda-forge", "rapidsai"])
    with pytest.raises(WorkspaceError, match="not the end of"):
        merge_channels([rapids, flipped])
    root = _ws(
        tmp_path / "ws",
        '[variants.v]\nfiles = ["a.yml", "b.yml"]\n',
        a="channels: [conda-forge]\ndependencies: [python]\n",
        b="channels: [conda-forge, rapidsai]\ndependencies: [cudf]\n",
    )
    with pytest.raises(WorkspaceError, match=r"^variant 'v': .*a\.yml: channels \[conda-forge\]"):
        load_workspace(root)


def test_inputs_hash_ignores_comments_but_not_specs(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.v]\nfiles = ["a.yml"]\n',
        a="channels: [conda-forge]\ndependencies: [python 3.11.*]\n",
    )
    h1 = load_workspace(root).get("v").inputs_hash()
    write(
        root / "environments/a.yml",
        "# hi\nchannels: [conda-forge]\ndependencies: [python 3.11.*]\n",
    )
    assert load_workspace(root).get("v").inputs_hash() == h1
    write(root / "environments/a.yml", "channels: [conda-forge]\ndependencies: [python 3.12.*]\n")
    assert load_workspace(root).get("v").inputs_hash() != h1


def test_unknown_variant_lists_known(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.one]\nfiles = ["a.yml"]\n[variants.two]\nfiles = ["a.yml"]\n',
        a="channels: [x]\ndependencies: [python]\n",
    )
    with pytest.raises(UnknownVariantError) as err:
        load_workspace(root).get("three")
    assert "three" in err.value.one_line()
    assert "one, two" in err.value.one_line()


def test_missing_env_file_names_it(tmp_path: Path) -> None:
    root = _ws(tmp_path, '[variants.v]\nfiles = ["nope.yml"]\n')
    with pytest.raises(WorkspaceError, match=r"nope\.yml: environment file not found"):
        load_workspace(root)


def test_malformed_yaml_reports_line(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.v]\nfiles = ["a.yml"]\n',
        a="channels: [x]\ndependencies:\n  - python\n  - [unclosed\n",
    )
    with pytest.raises(WorkspaceError, match=r"a\.yml:\d+: invalid YAML"):
        load_workspace(root)


def test_bad_spec_reports_file_and_line(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.v]\nfiles = ["a.yml"]\n',
        a="channels: [x]\ndependencies:\n  - python\n  - numpy >=>=2\n",
    )
    with pytest.raises(WorkspaceError, match=r"a\.yml:4: invalid package spec 'numpy >=>=2'"):
        load_workspace(root)


def test_unknown_platform_and_bad_cuda(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.v]\nfiles = ["a.yml"]\nplatforms = ["linux-65"]\n',
        a="channels: [x]\ndependencies: [python]\n",
    )
    with pytest.raises(WorkspaceError, match="unknown platform 'linux-65'"):
        load_workspace(root)
    write(root / "environments/variants.toml", '[variants.v]\nfiles = ["a.yml"]\ncuda = "twelve"\n')
    with pytest.raises(WorkspaceError, match="cuda = 'twelve' is not a version"):
        load_workspace(root)


def test_missing_variants_toml(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"variants\.toml not found"):
        load_workspace(tmp_path)


def test_plan_gives_cuda_only_to_cuda_variants(tmp_path: Path) -> None:
    root = _ws(
        tmp_path,
        '[variants.cpu]\nfiles = ["a.yml"]\nplatforms = ["linux-64", "osx-arm64"]\n'
        '[variants.gpu]\nfiles = ["a.yml"]\ncuda = "12.9"\nglibc = "2.34"\n',
        a="channels: [conda-forge]\ndependencies: [python]\n",
    )
    ws = load_workspace(root)
    steps = plan_solves(list(ws.variants.values()))
    assert [(s.variant.name, s.platform) for s in steps] == [
        ("cpu", "linux-64"),
        ("cpu", "osx-arm64"),
        ("gpu", "linux-64"),
    ]
    names = {s.platform + s.variant.name: {v[0]: v[1] for v in s.virtual_packages} for s in steps}
    assert "__cuda" not in names["linux-64cpu"]
    assert names["linux-64cpu"]["__glibc"] == "2.28"
    assert "__osx" in names["osx-arm64cpu"] and "__glibc" not in names["osx-arm64cpu"]
    assert names["linux-64gpu"]["__cuda"] == "12.9"
    assert names["linux-64gpu"]["__glibc"] == "2.34"
    assert ("__archspec", "1", "x86_64") in virtual_packages(ws.get("gpu"), "linux-64")


def test_repository_workspace_has_the_four_variants() -> None:
    ws = load_workspace(Path(__file__).resolve().parents[2])
    assert set(ws.variants) == {"base", "gpu", "iceberg", "gpu-iceberg"}
    gpu = ws.get("gpu")
    assert gpu.channels == ("rapidsai", "conda-forge")
    assert gpu.cuda is not None and gpu.cuda.startswith("12.")
    names = {d.split()[0] for d in ws.get("gpu-iceberg").dependencies}
    assert {"python", "pyspark", "pandas", "numpy", "pyarrow", "cudf", "cuml", "pyiceberg"} <= names


def test_unreadable_workspace_files_are_one_line_errors(tmp_path: Path) -> None:
    env = tmp_path / "environments"
    env.mkdir()
    (env / "variants.toml").write_bytes(b'[variants.a]\nfiles = ["a.yml"]\n')
    (env / "a.yml").write_bytes(b"dependencies: [\xff\xfe]\n")  # not UTF-8
    with pytest.raises(WorkspaceError) as info:
        load_workspace(tmp_path)
    assert "a.yml: cannot read" in info.value.one_line()
