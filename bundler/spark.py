"""bundler's Python API for Spark sessions, the import path the README documents.

- ``attach(session, archive)``: one packed archive for one Spark Connect session.
- ``local_session(archive)``: a local Spark session whose Python workers run from the
  archive, for notebooks and tests.

The code lives in the delivery stage (``bundler.deliver.connect`` and
``bundler.deliver.spark``); importing this module loads neither the solver nor
conda-pack nor pyspark.
"""

from bundler.deliver.connect import attach
from bundler.deliver.spark import local_session

__all__ = ["attach", "local_session"]
