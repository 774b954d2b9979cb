"""Stage 6, deliver: put an archive where Spark runs Python.

``spark`` (spark-submit arguments per cluster manager, with ``sparkgpu`` for GPU
scheduling, and ``local_session``), ``connect`` (Spark Connect sessions), ``image``
(a container image layer) and ``pyfiles`` (a ``--py-files`` zip).
"""
