"""The cluster managers a ``--master`` URL names, as data (used by ``spark`` and ``sparkgpu``).

Each manager is one frozen ``ClusterManager`` row saying how it ships an archive, sets
the executors' Python and requests GPUs; ``plan_spark_conf`` and ``plan_gpu`` only read
these rows.  A new cluster manager is one more row in ``MANAGERS`` (and its tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from bundler.artifact.formats import spark_unpack_problem
from bundler.errors import SparkConfError

#: The image Kubernetes runs executors from, and where spark-submit uploads local files.
K8S_IMAGE_KEY = "spark.kubernetes.container.image"
K8S_UPLOAD_KEY = "spark.kubernetes.file.upload.path"


@dataclass(frozen=True)
class ClusterManager:
    """One cluster manager: which masters name it, and what Spark needs on it."""

    name: str  # as ``spark-conf --json`` says it ("cluster_manager")
    exact: tuple[str, ...] = ()  # master URLs that are this manager as they are
    prefixes: tuple[str, ...] = ()  # ... or that start so
    #: (message, hint) when bundler cannot serve this manager at all; ``{master}`` is
    #: replaced by the URL.
    refusal: tuple[str, str] | None = None

    # --- shipping the archive
    archives_key: str = "spark.archives"  # what spark-submit turns --archives into
    archive_note: str | None = None  # a warning for every archive on this manager
    #: In cluster mode spark-submit uploads a local archive to ``K8S_UPLOAD_KEY``.
    uploads_local_archive: bool = False
    takes_upload_path: bool = False  # honours ``K8S_UPLOAD_KEY``
    takes_image: bool = False  # runs executors from ``bundler image``'s images
    #: Unpacks ``.tar`` with the shell's ``tar -xf`` (modes and links kept), not Java's.
    unpacks_with_shell_tar: bool = False

    # --- setting Python
    #: (message, hint) when cluster mode does not run Python applications here.
    cluster_mode_refusal: tuple[str, str] | None = None
    #: Set to the archive's Python in cluster mode, beside ``spark.pyspark.python``.
    cluster_python_keys: tuple[str, ...] = ()

    # --- requesting GPUs
    gpu_vendor: str | None = None  # the device plugin's vendor (Kubernetes)
    #: The workers are started by spark-submit and read the same conf (local-cluster).
    workers_read_conf: bool = False
    #: Each worker must announce its GPUs in its own configuration (standalone).
    workers_configured_apart: bool = False
    #: The executors' image carries Spark's example discovery script.
    has_discovery_script: bool = False

    def names(self, master: str) -> bool:
        return master in self.exact or master.startswith(self.prefixes)

    def archive_problem(self, path: str) -> tuple[str, str] | None:
        """(problem, hint) when this manager would not unpack an archive of this name
        into a runnable environment; None when it would."""
        return spark_unpack_problem(path, yarn=self.unpacks_with_shell_tar)


_STANDALONE_CLUSTER = (
    "--master {master}: standalone cluster mode does not run Python applications",
    "use --deploy-mode client",
)

#: No ``--master``: whatever spark-defaults.conf names, assumed to honour --archives.
UNSPECIFIED = ClusterManager(
    name="unspecified",
    archive_note=(
        "no --master: assuming a cluster manager that honours --archives (standalone, "
        "YARN, local-cluster); on YARN the defaults key is spark.yarn.dist.archives"
    ),
    takes_upload_path=True,
    takes_image=True,
    cluster_mode_refusal=("--deploy-mode cluster needs --master", "name the cluster manager"),
)
LOCAL_CLUSTER = ClusterManager(
    name="local-cluster",
    prefixes=("local-cluster[",),
    cluster_mode_refusal=_STANDALONE_CLUSTER,
    workers_read_conf=True,
)
LOCAL = ClusterManager(
    name="local",
    exact=("local",),
    prefixes=("local[",),
    refusal=(
        "--master {master}: local mode runs Python workers from the driver's PYSPARK_PYTHON "
        "and cannot resolve ./env",
        "use --master 'local-cluster[2,1,1024]', or bundler.spark.local_session() in tests",
    ),
)
STANDALONE = ClusterManager(
    name="standalone",
    prefixes=("spark://",),
    cluster_mode_refusal=_STANDALONE_CLUSTER,
    workers_configured_apart=True,
)
YARN = ClusterManager(
    name="yarn",
    exact=("yarn",),
    archives_key="spark.yarn.dist.archives",
    unpacks_with_shell_tar=True,  # NodeManagers run FileUtil.unTar: the shell's tar on Linux
    # The driver runs in the application master's container, beside ./env.
    cluster_python_keys=(
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    ),
)
KUBERNETES = ClusterManager(
    name="kubernetes",
    prefixes=("k8s://",),
    archive_note=(
        "Kubernetes also needs spark.kubernetes.container.image (a Spark image with "
        "a glibc at least as new as the archive's); the archive only brings Python"
    ),
    uploads_local_archive=True,
    takes_upload_path=True,
    takes_image=True,
    gpu_vendor="nvidia.com",
    has_discovery_script=True,
)
MESOS = ClusterManager(
    name="mesos",
    prefixes=("mesos://",),
    refusal=("--master {master}: Spark 4 removed Mesos support", ""),
)

#: Every manager a master URL may name, in the order they are tried.
MANAGERS = (LOCAL_CLUSTER, LOCAL, STANDALONE, YARN, KUBERNETES, MESOS)


def cluster_manager(master: str | None) -> ClusterManager:
    """Which cluster manager a ``--master`` value names; refused ones raise."""
    if master is None:
        return UNSPECIFIED
    m = master.strip()
    for manager in MANAGERS:
        if manager.names(m):
            if manager.refusal is not None:
                message, hint = manager.refusal
                raise SparkConfError(message.format(master=m), hint)
            return manager
    raise SparkConfError(
        f"--master {m}: unknown master URL",
        "use spark://HOST:PORT, yarn, k8s://https://HOST:PORT or local-cluster[N,C,M]",
    )
