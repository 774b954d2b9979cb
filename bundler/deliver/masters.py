"""Which cluster manager a ``--master`` URL names (used by ``spark`` and ``sparkgpu``)."""

from __future__ import annotations

import enum

from bundler.errors import SparkConfError


class ClusterManager(enum.Enum):
    LOCAL_CLUSTER = "local-cluster"
    STANDALONE = "standalone"
    YARN = "yarn"
    KUBERNETES = "kubernetes"
    UNSPECIFIED = "unspecified"


def cluster_manager(master: str | None) -> ClusterManager:
    """Which cluster manager a ``--master`` value names."""
    if master is None:
        return ClusterManager.UNSPECIFIED
    m = master.strip()
    if m.startswith("local-cluster["):
        return ClusterManager.LOCAL_CLUSTER
    if m == "local" or m.startswith("local["):
        raise SparkConfError(
            f"--master {m}: local mode runs Python workers from the driver's PYSPARK_PYTHON "
            "and cannot resolve ./env",
            "use --master 'local-cluster[2,1,1024]', or bundler.spark.local_session() in tests",
        )
    if m.startswith("spark://"):
        return ClusterManager.STANDALONE
    if m == "yarn":
        return ClusterManager.YARN
    if m.startswith("k8s://"):
        return ClusterManager.KUBERNETES
    if m.startswith("mesos://"):
        raise SparkConfError(f"--master {m}: Spark 4 removed Mesos support")
    raise SparkConfError(
        f"--master {m}: unknown master URL",
        "use spark://HOST:PORT, yarn, k8s://https://HOST:PORT or local-cluster[N,C,M]",
    )
