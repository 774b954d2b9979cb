"""Where an environment lives where Spark runs Python: the names every delivery shares.

An archive is unpacked under ``ENV_ALIAS`` in each container's working directory
(``--archives URI#env``; Spark Connect's session artifacts likewise), so Python is
``env/bin/python`` there.  ``bundler image`` puts a variant's environment at
``IMAGE_ENV_ROOT/<variant>`` (docker/Dockerfile says the same), where
``spark-conf --image`` points Python.  Nothing here imports anything.
"""

from __future__ import annotations

#: The ``#alias`` an archive is unpacked under, unless its URI names another.
ENV_ALIAS = "env"
#: Where an image keeps its variants' environments: ``IMAGE_ENV_ROOT/<variant>``.
IMAGE_ENV_ROOT = "/opt/bundler/envs"
