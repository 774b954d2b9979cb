"""Spark's GPU scheduling settings for a CUDA variant (pure: used by ``plan_spark_conf``).

An archive with cudf/cuml is only useful when every executor gets a GPU and the
executor's tasks share it.  Spark's resource scheduling (Spark 3.0+, "Custom Resource
Scheduling and Configuration" in Spark's configuration docs) does that with:

- ``spark.executor.resource.gpu.amount``: GPUs per executor;
- ``spark.task.resource.gpu.amount``: the share of a GPU each task needs.  GPUs per
  executor divided by the executor's cores lets all its concurrent tasks share them;
- a discovery script run on each executor (or worker) that prints the addresses as
  ``{"name": "gpu", "addresses": [...]}``.

Per cluster manager (the GPU fields of its ``masters.ClusterManager`` row): Kubernetes
also needs the device plugin's vendor (``nvidia.com``) to request ``nvidia.com/gpu``;
YARN maps ``gpu`` to ``yarn.io/gpu`` itself; a standalone worker must announce its GPUs
in its own configuration (for ``local-cluster`` the workers are started by spark-submit
and read the same conf).
"""

from __future__ import annotations

from dataclasses import dataclass

from bundler.deliver.masters import ClusterManager
from bundler.errors import SparkConfError

#: Where the Apache Spark images (and distributions, under $SPARK_HOME) keep the
#: example discovery script, which asks nvidia-smi for the GPUs' indices.
SPARK_GPU_SCRIPT = "/opt/spark/examples/src/main/scripts/getGpusResources.sh"


@dataclass(frozen=True)
class GpuRequest:
    """What ``spark-conf`` was asked for; None means "the default"."""

    gpus_per_executor: int | None = None
    executor_cores: int | None = None
    discovery_script: str | None = None

    def asked(self) -> bool:
        return any(v is not None for v in (self.gpus_per_executor, self.discovery_script))


def _amount(value: float) -> str:
    """A resource amount as Spark reads it: ``1``, ``0.25``, ``0.333333``."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def plan_gpu(
    manager: ClusterManager, variant: str, cuda: str | None, request: GpuRequest
) -> tuple[list[tuple[str, str]], list[str]]:
    """(conf pairs, warnings) that give each executor of ``variant`` its GPUs.

    ``cuda`` is the variant's ``cuda =`` or, without it, the CUDA its content carries
    (``deliver.spark.content_cuda``); None: not a CUDA variant.
    """
    if cuda is None:
        if request.asked():
            return [], [
                f"variant {variant} is not CUDA (no cuda set, no CUDA packages in its lock or "
                "manifest): the GPU options are ignored"
            ]
        return [], []
    gpus = 1 if request.gpus_per_executor is None else request.gpus_per_executor
    cores = 1 if request.executor_cores is None else request.executor_cores
    if gpus < 0:
        raise SparkConfError(f"--gpus-per-executor {gpus}: expected 0 or more")
    if cores < 1:
        raise SparkConfError(f"--executor-cores {cores}: expected 1 or more")
    if gpus == 0:
        return [], []
    script = request.discovery_script or SPARK_GPU_SCRIPT
    conf = [
        ("spark.executor.cores", str(cores)),
        ("spark.executor.resource.gpu.amount", str(gpus)),
        ("spark.task.resource.gpu.amount", _amount(gpus / cores)),
        ("spark.executor.resource.gpu.discoveryScript", script),
    ]
    warnings: list[str] = []
    if manager.gpu_vendor is not None:
        conf.append(("spark.executor.resource.gpu.vendor", manager.gpu_vendor))
    if manager.workers_read_conf:
        conf.append(("spark.worker.resource.gpu.amount", str(gpus)))
        conf.append(("spark.worker.resource.gpu.discoveryScript", script))
    if manager.workers_configured_apart:
        warnings.append(
            "each standalone worker must announce its GPUs in its own configuration, e.g. "
            "SPARK_WORKER_OPTS='-Dspark.worker.resource.gpu.amount=N "
            f"-Dspark.worker.resource.gpu.discoveryScript={script}' in spark-env.sh"
        )
    if request.discovery_script is None and not manager.has_discovery_script:
        warnings.append(
            f"the GPU discovery script {script} (from the Apache Spark images) must exist on "
            "every executor host: pass --gpu-discovery-script PATH where it lives elsewhere"
        )
    return conf, warnings
