"""spark-conf: what each cluster manager gets, in every output format, and the errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundler.cli import build_app
from bundler.deliver.layout import IMAGE_ENV_ROOT
from bundler.deliver.spark import (
    OutputFormat,
    SparkConfError,
    SparkConfOptions,
    SparkSubmitPlan,
    spark_conf,
)
from bundler.errors import UnknownVariantError

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "3.9" if HERE != "3.9" else "3.10"

LOCK = """\
version: 1
metadata:
  content_hash: {{linux-64: 0000}}
  channels: [{{url: conda-forge, used_env_vars: []}}]
  platforms: [linux-64]
  sources: [environments/base.yml]
package:
- name: python
  version: {python}.4
  manager: conda
  platform: linux-64
  dependencies: {{}}
  url: https://conda.anaconda.org/conda-forge/linux-64/python-{python}.4-h0_cpython.conda
  hash: {{md5: 00000000000000000000000000000000, sha256: '{zeros}'}}
  category: main
  optional: false
- name: six
  version: 1.17.0
  manager: pip
  platform: linux-64
  dependencies: {{}}
  url: https://files.pythonhosted.org/packages/six-1.17.0-py2.py3-none-any.whl
  hash: {{sha256: '{zeros}'}}
  category: main
  optional: false
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """base: locked with this interpreter's Python; old: locked with another; new: no lock."""
    env = tmp_path / "environments"
    env.mkdir()
    (env / "variants.toml").write_text(
        '[variants.base]\nfiles = ["base.yml"]\n\n'
        '[variants.old]\nfiles = ["base.yml"]\n\n'
        '[variants.new]\nfiles = ["base.yml"]\n'
    )
    (env / "base.yml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - python\n  - pyspark >=4\n"
    )
    locks = tmp_path / "locks"
    locks.mkdir()
    zeros = "0" * 64
    (locks / "base.conda-lock.yml").write_text(LOCK.format(python=HERE, zeros=zeros))
    (locks / "old.conda-lock.yml").write_text(LOCK.format(python=OTHER, zeros=zeros))
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "base-linux-64.tar.gz").write_bytes(b"not really an archive")
    return tmp_path


def plan(workspace: Path, **kw: object) -> SparkSubmitPlan:
    options = SparkConfOptions(variant=str(kw.pop("variant", "base")), workspace=workspace, **kw)  # type: ignore[arg-type]
    return spark_conf(options)


def keys(p: SparkSubmitPlan) -> set[str]:
    return {k for k, _ in p.defaults()}


REMOTE = "s3a://bucket/envs/base-linux-64.tar.gz"
#: The client-mode driver Python by default: ``python3`` as spark-submit finds it on PATH.
DRIVER = "python3"


@pytest.fixture(autouse=True)
def driver_on_path(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """PATH starts with a directory whose ``python3`` is this interpreter."""
    bin_dir = tmp_path_factory.mktemp("driver-bin")
    (bin_dir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("PYSPARK_DRIVER_PYTHON", raising=False)
    return bin_dir


PY_ENV = "./env/bin/python"


# --- one test per master ------------------------------------------------------------


def test_local_cluster(workspace: Path) -> None:
    archive = workspace / "dist" / "base-linux-64.tar.gz"
    p = plan(workspace, archive=str(archive), master="local-cluster[2,1,1024]")
    conf = p.conf_dict()
    assert p.archive == f"{archive}#env"
    assert p.archive_key == "spark.archives"
    assert conf["spark.pyspark.python"] == PY_ENV
    assert conf["spark.pyspark.driver.python"] == DRIVER
    args = p.submit_args()
    assert args[:4] == ["--master", "local-cluster[2,1,1024]", "--deploy-mode", "client"]
    assert args[args.index("--archives") + 1] == f"{archive}#env"
    assert not any(k.startswith(("spark.yarn.", "spark.kubernetes.")) for k in keys(p))
    assert dict(p.env)["PYSPARK_PYTHON"] == PY_ENV
    assert p.warnings == ()  # the lock's Python matches this driver


def test_relative_local_archive_becomes_absolute(workspace: Path, monkeypatch) -> None:
    monkeypatch.chdir(workspace)
    p = plan(workspace, archive="dist/base-linux-64.tar.gz#py", master="spark://m:7077")
    assert p.archive == f"{workspace / 'dist' / 'base-linux-64.tar.gz'}#py"
    assert p.conf_dict()["spark.pyspark.python"] == "./py/bin/python"


def test_standalone_client(workspace: Path) -> None:
    p = plan(workspace, archive=REMOTE, master="spark://master:7077")
    conf = p.conf_dict()
    assert ("spark.archives", f"{REMOTE}#env") in p.defaults()
    assert conf["spark.pyspark.python"] == PY_ENV
    assert conf["spark.pyspark.driver.python"] == DRIVER
    assert not any(k.startswith(("spark.yarn.", "spark.kubernetes.")) for k in keys(p))


@pytest.mark.parametrize("master", ["spark://master:7077", "local-cluster[2,1,1024]"])
def test_standalone_cluster_mode_is_refused(workspace: Path, master: str) -> None:
    with pytest.raises(SparkConfError, match="does not run Python"):
        plan(workspace, archive=REMOTE, master=master, deploy_mode="cluster")


def test_yarn_client(workspace: Path) -> None:
    p = plan(workspace, archive=REMOTE, master="yarn")
    conf = p.conf_dict()
    assert p.archive_key == "spark.yarn.dist.archives"
    assert ("spark.yarn.dist.archives", f"{REMOTE}#env") in p.defaults()
    assert "spark.archives" not in keys(p)
    assert conf["spark.pyspark.python"] == PY_ENV
    assert conf["spark.pyspark.driver.python"] == DRIVER
    assert "spark.yarn.appMasterEnv.PYSPARK_PYTHON" not in conf


def test_yarn_cluster(workspace: Path) -> None:
    p = plan(workspace, archive=REMOTE, master="yarn", deploy_mode="cluster")
    conf = p.conf_dict()
    assert ("spark.yarn.dist.archives", f"{REMOTE}#env") in p.defaults()
    assert conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == PY_ENV
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == PY_ENV
    assert conf["spark.pyspark.python"] == PY_ENV
    # The driver runs in the cluster: never point it at this machine's Python.
    assert "spark.pyspark.driver.python" not in conf
    assert "PYSPARK_DRIVER_PYTHON" not in dict(p.env)
    assert sys.executable not in " ".join(p.submit_args())
    assert p.submit_args()[:4] == ["--master", "yarn", "--deploy-mode", "cluster"]


@pytest.mark.parametrize("mode", ["client", "cluster"])
def test_yarn_takes_a_plain_tar(workspace: Path, mode: str) -> None:
    """YARN's NodeManager unpacks .tar with the shell's tar -xf: modes and links kept."""
    p = plan(workspace, archive="hdfs:///envs/gpu.tar#env", master="yarn", deploy_mode=mode)
    assert ("spark.yarn.dist.archives", "hdfs:///envs/gpu.tar#env") in p.defaults()
    assert p.conf_dict()["spark.pyspark.python"] == PY_ENV


@pytest.mark.parametrize("uri", [REMOTE, "https://example.org/envs/base.tgz", "local:///opt/e.zip"])
def test_kubernetes_remote_archive_cluster(workspace: Path, uri: str) -> None:
    p = plan(workspace, archive=uri, master="k8s://https://k8s:6443", deploy_mode="cluster")
    conf = p.conf_dict()
    assert ("spark.archives", f"{uri}#env") in p.defaults()
    assert conf["spark.pyspark.python"] == PY_ENV
    assert "spark.pyspark.driver.python" not in conf
    assert "spark.kubernetes.file.upload.path" not in conf
    assert not any(k.startswith("spark.yarn.") for k in keys(p))
    assert any("spark.kubernetes.container.image" in w for w in p.warnings)


def test_kubernetes_local_archive_with_upload_path(workspace: Path) -> None:
    archive = workspace / "dist" / "base-linux-64.tar.gz"
    p = plan(
        workspace,
        archive=str(archive),
        master="k8s://https://k8s:6443",
        deploy_mode="cluster",
        upload_path="s3a://bucket/uploads",
    )
    conf = p.conf_dict()
    assert conf["spark.kubernetes.file.upload.path"] == "s3a://bucket/uploads"
    assert ("spark.archives", f"{archive}#env") in p.defaults()
    assert "spark.pyspark.driver.python" not in conf


def test_kubernetes_local_archive_without_upload_path_is_refused(workspace: Path) -> None:
    with pytest.raises(SparkConfError, match=r"spark\.kubernetes\.file\.upload\.path") as info:
        plan(
            workspace,
            archive=str(workspace / "dist" / "base-linux-64.tar.gz"),
            master="k8s://https://k8s:6443",
            deploy_mode="cluster",
        )
    assert "--upload-path" in info.value.one_line()


def test_kubernetes_local_archive_in_client_mode_is_served_by_the_driver(workspace: Path) -> None:
    p = plan(
        workspace,
        archive=str(workspace / "dist" / "base-linux-64.tar.gz"),
        master="k8s://https://k8s:6443",
    )
    assert "spark.kubernetes.file.upload.path" not in p.conf_dict()
    assert p.conf_dict()["spark.pyspark.driver.python"] == DRIVER


@pytest.mark.parametrize("mode", ["client", "cluster"])
def test_kubernetes_image(workspace: Path, mode: str) -> None:
    p = plan(
        workspace,
        image="registry.example/base:1",
        master="k8s://https://k8s:6443",
        deploy_mode=mode,
    )
    conf = p.conf_dict()
    assert conf["spark.kubernetes.container.image"] == "registry.example/base:1"
    assert conf["spark.pyspark.python"] == f"{IMAGE_ENV_ROOT}/base/bin/python"
    assert conf["spark.pyspark.python"].startswith("/")
    assert p.archive is None
    assert "--archives" not in p.submit_args()
    assert not {"spark.archives", "spark.yarn.dist.archives"} & keys(p)
    if mode == "cluster":
        assert "spark.pyspark.driver.python" not in conf
        assert p.env == ()
    else:
        assert conf["spark.pyspark.driver.python"] == DRIVER


def test_image_needs_kubernetes(workspace: Path) -> None:
    with pytest.raises(SparkConfError, match="Kubernetes"):
        plan(workspace, image="registry.example/base:1", master="yarn")


# --- errors ---------------------------------------------------------------------------


def test_unknown_variant(workspace: Path) -> None:
    with pytest.raises(UnknownVariantError, match="nope"):
        plan(workspace, variant="nope", archive=REMOTE, master="yarn")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"archive": REMOTE, "master": "local[*]"}, "local mode"),
        ({"archive": REMOTE, "master": "mesos://m:5050"}, "Mesos"),
        ({"archive": REMOTE, "master": "bogus://x"}, "unknown master"),
        ({"archive": "s3a://b/env.tar", "master": "k8s://https://k:1"}, "exec bit"),
        ({"archive": "s3a://b/env.tar", "master": "spark://m:7077"}, "exec bit"),
        ({"archive": "/d/env.tar", "master": "local-cluster[2,1,1024]"}, "exec bit"),
        ({"archive": "s3a://b/env.tar"}, "exec bit"),
        ({"archive": "s3a://b/env.tar.zst", "master": "yarn"}, "only unpacks"),
        ({"archive": REMOTE, "image": "x:1", "master": "k8s://https://k:1"}, "exactly one"),
        ({"master": "yarn"}, "exactly one"),
        ({"archive": REMOTE, "deploy_mode": "cluster"}, "needs --master"),
        ({"archive": f"{REMOTE}#a/b", "master": "yarn"}, "plain directory name"),
    ],
)
def test_refusals(workspace: Path, kw: dict[str, str], match: str) -> None:
    with pytest.raises(SparkConfError, match=match):
        plan(workspace, **kw)


# --- the Python version check ---------------------------------------------------------


def test_python_minor_mismatch_warns(workspace: Path) -> None:
    p = plan(workspace, variant="old", archive=REMOTE, master="yarn")
    (warning,) = p.warnings
    assert f"Python {OTHER}.4" in warning and f"Python {HERE}" in warning


def test_python_minor_mismatch_does_not_matter_in_cluster_mode(workspace: Path) -> None:
    p = plan(workspace, variant="old", archive=REMOTE, master="yarn", deploy_mode="cluster")
    assert p.warnings == ()


def test_missing_lock_warns(workspace: Path) -> None:
    p = plan(workspace, variant="new", archive=REMOTE, master="yarn")
    (warning,) = p.warnings
    assert "locks/new.conda-lock.yml not found" in warning
    assert "bundler lock new" in warning


def test_driver_python_option_is_asked_for_its_version(workspace: Path) -> None:
    p = plan(workspace, variant="old", archive=REMOTE, master="yarn", driver_python=sys.executable)
    assert p.conf_dict()["spark.pyspark.driver.python"] == sys.executable
    assert len(p.warnings) == 1 and f"Python {HERE}" in p.warnings[0]


# --- output formats, through the CLI ---------------------------------------------------


@pytest.fixture(scope="module")
def cli():
    return build_app()


def run(cli, *args: str):
    return CliRunner().invoke(cli, list(args))


def bash_words(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``printf '%s\\0' $(bundler spark-conf ...)``: the words bash hands to spark-submit."""
    cmd = " ".join([f"{sys.executable} -m bundler spark-conf", *args])
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; out=$({cmd}) || exit $?; printf '%s\\0' $out"],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )


def test_args_format_survives_bash_word_splitting(workspace: Path) -> None:
    archive = workspace / "dist" / "base-linux-64.tar.gz"
    proc = bash_words(workspace, f"base --archive {archive} --master 'local-cluster[2,1,1024]'")
    assert proc.returncode == 0, proc.stderr
    argv = proc.stdout.split("\0")[:-1]
    expected = plan(workspace, archive=str(archive), master="local-cluster[2,1,1024]")
    assert argv == expected.submit_args()
    assert "local-cluster[2,1,1024]" in argv and "\\" not in argv


def test_args_format_is_one_unquoted_line(cli, workspace: Path) -> None:
    result = run(
        cli, "spark-conf", "base", "--archive", REMOTE, "--master", "yarn", "-w", str(workspace)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert not set("'\"\\") & set(result.stdout)
    assert result.stdout.split() == plan(workspace, archive=REMOTE, master="yarn").submit_args()


def test_a_value_that_bash_would_split_is_refused_with_a_pointer(workspace: Path) -> None:
    spaced = workspace / "my envs"
    spaced.mkdir()
    archive = spaced / "base-linux-64.tar.gz"
    archive.write_bytes(b"x")
    proc = bash_words(workspace, f"base --archive '{archive}' --master yarn")
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert "my envs" in line and "--format defaults" in line and "--properties-file" in line


def test_defaults_format_keeps_spaces_and_escapes_backslashes(cli, workspace: Path) -> None:
    spaced = workspace / "my envs"
    spaced.mkdir()
    (spaced / "e.tar.gz").write_bytes(b"x")
    result = run(
        cli,
        "spark-conf",
        "base",
        "--archive",
        str(spaced / "e.tar.gz"),
        "--master",
        "spark://m:7077",
        "--driver-python",
        sys.executable,
        "--format",
        "defaults",
        "-w",
        str(workspace),
    )
    assert result.exit_code == 0, result.output
    assert f"spark.archives {spaced}/e.tar.gz#env\n" in result.stdout
    plan_ = plan(workspace, archive=REMOTE, master="yarn")
    odd = dataclasses.replace(plan_, conf=(("spark.x", "a\\b"), ("spark.y", " lead")))
    lines = odd.render(OutputFormat.DEFAULTS).splitlines()
    assert "spark.x a\\\\b" in lines and "spark.y \\ lead" in lines


# --- the client-mode driver's Python ---------------------------------------------------


def test_driver_is_python3_on_path_and_its_version_is_checked(
    workspace: Path, driver_on_path: Path
) -> None:
    fake = driver_on_path / "python3"
    fake.unlink()
    fake.write_text(f"#!/bin/sh\necho 3 {int(HERE.split('.')[1]) + 1}\n")
    fake.chmod(0o755)
    p = plan(workspace, archive=REMOTE, master="yarn")
    assert p.conf_dict()["spark.pyspark.driver.python"] == "python3"
    (warning,) = p.warnings
    assert "(python3) runs Python 3." in warning and f"Python {HERE}" in warning


def test_driver_follows_pyspark_driver_python(workspace: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    p = plan(workspace, archive=REMOTE, master="yarn")
    assert p.conf_dict()["spark.pyspark.driver.python"] == sys.executable
    assert p.warnings == ()


def test_driver_not_on_path_is_a_warning_not_a_guess(workspace: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(workspace))
    p = plan(workspace, archive=REMOTE, master="yarn")
    assert p.conf_dict()["spark.pyspark.driver.python"] == "python3"
    assert any("python3 not found on PATH" in w for w in p.warnings)


def test_defaults_format(cli, workspace: Path) -> None:
    result = run(
        cli,
        "spark-conf",
        "base",
        "--archive",
        REMOTE,
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--format",
        "defaults",
        "-w",
        str(workspace),
    )
    assert result.exit_code == 0, result.output
    pairs = [line.split(None, 1) for line in result.stdout.strip().splitlines()]
    assert all(len(p) == 2 and p[0].startswith("spark.") for p in pairs)
    props = dict((k, v) for k, v in pairs)
    assert props["spark.master"] == "yarn"
    assert props["spark.submit.deployMode"] == "cluster"
    assert props["spark.yarn.dist.archives"] == f"{REMOTE}#env"
    assert props["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == PY_ENV
    assert "spark.pyspark.driver.python" not in props


def test_json_format(cli, workspace: Path) -> None:
    result = run(
        cli,
        "spark-conf",
        "new",
        "--image",
        "reg/base:1",
        "--master",
        "k8s://https://k:6443",
        "--json",
        "-w",
        str(workspace),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cluster_manager"] == "kubernetes"
    assert data["conf"]["spark.kubernetes.container.image"] == "reg/base:1"
    assert "--archives" not in data["submit_args"]
    assert data["env"]["PYSPARK_PYTHON"] == f"{IMAGE_ENV_ROOT}/new/bin/python"
    assert any("not found" in w for w in data["warnings"])
    assert (
        json.loads(
            plan(
                workspace, variant="new", image="reg/base:1", master="k8s://https://k:6443"
            ).render(OutputFormat.JSON)
        )
        == data
    )


def test_cli_errors_are_one_line_with_exit_code_2(cli, workspace: Path) -> None:
    result = run(cli, "spark-conf", "nope", "--archive", REMOTE, "-w", str(workspace))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown variant 'nope'" in result.stderr
    assert "Traceback" not in result.output
    result = run(
        cli,
        "spark-conf",
        "base",
        "--archive",
        str(workspace / "dist" / "x.tar.gz"),
        "--master",
        "k8s://https://k:6443",
        "--deploy-mode",
        "cluster",
        "-w",
        str(workspace),
    )
    assert result.exit_code == 2
    assert "spark.kubernetes.file.upload.path" in result.stderr
    result = run(cli, "spark-conf", "base", "--archive", "s3a://b/env.tar",
                 "--master", "spark://m:7077", "-w", str(workspace))  # fmt: skip
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: --archive s3a://b/env.tar: Spark unpacks .tar with Java")
    assert "exec bit" in lines[0] and ".tar.gz" in result.stderr
