"""GPU scheduling for CUDA variants: the settings per master, and real tasks that get a GPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from bundler.deliver.masters import YARN
from bundler.deliver.spark import SparkConfOptions, plan_spark_conf
from bundler.deliver.sparkgpu import SPARK_GPU_SCRIPT
from bundler.errors import SparkConfError
from tests.support.cli import run_cli

K8S = "k8s://https://k8s:6443"


def plan(cuda: str | None = "12.9", **kw: object):
    master = kw.pop("master", "yarn")
    options = SparkConfOptions(
        variant="gpu",
        archive="s3a://b/gpu.tar.gz",
        master=master,
        **kw,  # type: ignore[arg-type]
    )
    return plan_spark_conf(
        options, driver_python="python3", driver_version=(3, 11), locked_python=None, cuda=cuda
    )


def gpu_keys(conf: dict[str, str]) -> set[str]:
    return {k for k in conf if ".resource." in k or k == "spark.executor.cores"}


def test_cpu_variant_gets_no_gpu_settings() -> None:
    p = plan(cuda=None)
    assert gpu_keys(p.conf_dict()) == set()
    asked = plan(cuda=None, gpus_per_executor=2)
    assert gpu_keys(asked.conf_dict()) == set()
    assert any("is not CUDA (no cuda set, no CUDA packages" in w for w in asked.warnings)


def test_yarn_gets_executor_amount_task_share_and_script() -> None:
    p = plan(executor_cores=4)
    conf = p.conf_dict()
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "0.25"  # four tasks share one GPU
    assert conf["spark.executor.cores"] == "4"
    assert conf["spark.executor.resource.gpu.discoveryScript"] == SPARK_GPU_SCRIPT
    assert not any(k.startswith("spark.worker.") or k.endswith(".vendor") for k in conf)
    assert any("must exist on every executor host" in w for w in p.warnings)


def test_kubernetes_gets_the_vendor() -> None:
    p = plan(master=K8S, deploy_mode="cluster", gpus_per_executor=2, executor_cores=3)
    conf = p.conf_dict()
    assert conf["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert conf["spark.executor.resource.gpu.amount"] == "2"
    assert conf["spark.task.resource.gpu.amount"] == "0.666667"
    assert conf["spark.executor.resource.gpu.discoveryScript"] == SPARK_GPU_SCRIPT


def test_local_cluster_workers_announce_gpus_and_standalone_is_told() -> None:
    conf = plan(master="local-cluster[2,1,1024]", gpu_discovery_script="/x/gpus.sh").conf_dict()
    assert conf["spark.worker.resource.gpu.amount"] == "1"
    assert conf["spark.worker.resource.gpu.discoveryScript"] == "/x/gpus.sh"
    assert conf["spark.executor.resource.gpu.discoveryScript"] == "/x/gpus.sh"
    standalone = plan(master="spark://m:7077")
    assert "spark.worker.resource.gpu.amount" not in standalone.conf_dict()
    assert any("SPARK_WORKER_OPTS" in w for w in standalone.warnings)


def test_zero_gpus_turns_it_off_and_bad_numbers_are_refused() -> None:
    assert gpu_keys(plan(gpus_per_executor=0).conf_dict()) == set()
    with pytest.raises(SparkConfError, match="--executor-cores 0"):
        plan(executor_cores=0)
    with pytest.raises(SparkConfError, match="--gpus-per-executor -1"):
        plan(gpus_per_executor=-1)
    assert plan().manager is YARN
    assert YARN.name == "yarn"


# --- real tasks on local-cluster, each with a (fake) GPU -----------------------------------

DISCOVERY = """#!/bin/sh
echo '{"name": "gpu", "addresses": ["0"]}'
"""

JOB = """\
import json, os, sys
from pyspark import TaskContext
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("bundler-gpu").getOrCreate()

def probe(_):
    gpu = TaskContext.get().resources()["gpu"]
    return {"pid": os.getpid(), "cwd": os.getcwd(), "executable": sys.executable,
            "gpu": list(gpu.addresses)}

rows = spark.sparkContext.parallelize(range(4), 4).map(probe).collect()
print("BUNDLER-RESULT " + json.dumps(rows))
spark.stop()
"""


@pytest.mark.spark
@pytest.mark.integration
def test_tasks_of_a_cuda_variant_get_a_gpu_on_local_cluster(
    spark_env: SimpleNamespace, locked_workspace: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "gpuapp-linux-64.tar.gz"
    run_cli("pack", "gpuapp", "-o", str(archive), cwd=locked_workspace, check=True)
    script = tmp_path / "gpus.sh"
    script.write_text(DISCOVERY)
    script.chmod(0o755)
    (tmp_path / "job.py").write_text(JOB)
    command = (
        f"{spark_env.submit} $(bundler spark-conf gpuapp --archive {archive} "
        f"--master 'local-cluster[2,1,1024]' --gpu-discovery-script {script} "
        f"-w {locked_workspace}) --conf spark.local.dir={tmp_path} job.py"
    )
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=spark_env.env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    results = [ln for ln in proc.stdout.splitlines() if ln.startswith("BUNDLER-RESULT ")]
    assert proc.returncode == 0 and results, proc.stderr[-4000:]
    rows = json.loads(results[-1].split(" ", 1)[1])
    assert len(rows) == 4
    for row in rows:
        assert row["gpu"] == ["0"], row
        env = Path(row["cwd"]).resolve() / "env"
        assert Path(row["executable"]).resolve().is_relative_to(env), row
    assert len({r["pid"] for r in rows}) >= 2
